"""Autoregressive priors over VQ-VAE code grids, fitted after the VQ-VAE itself is trained.

A code grid is a row of P code indices in [0, K). The prior factorises it in a fixed order,

    p(c) = Π_i p(c_i | c_<i),

and a network maps a batch of grids (B, P) to logits (B, P, K) whose row i depends on c_<i
only, so one pass scores a whole grid (teacher forcing) and sampling takes P passes. The NLL
is -log p(c) summed over the P positions: nats per grid, comparable with the uniform prior's
P·log K.

- `CausalTransformer`: a small pre-norm GPT (a start token, learned position embeddings,
  causal self-attention).
- `MADE` (Germain et al. 2015): an MLP on the one-hot grid whose weight masks enforce the
  order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class CausalTransformer(nn.Module):
    """Logits for c_i from [start, c_1, ..., c_{i-1}] under causal self-attention."""

    def __init__(
        self, num_positions: int, num_codes: int, width: int, layers: int, heads: int
    ) -> None:
        super().__init__()
        self.num_positions, self.num_codes = num_positions, num_codes
        self.embed = nn.Embedding(num_codes + 1, width)  # the extra index is the start token
        self.position = nn.Parameter(torch.randn(num_positions, width) * 0.02)
        self.blocks = nn.Sequential(*(_Block(width, heads) for _ in range(layers)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (B, P, K) for code grids (B, P); row i depends on c_<i only."""
        start = torch.full_like(codes[:, :1], self.num_codes)
        tokens = torch.cat([start, codes[:, :-1]], dim=1)  # shift right: position i sees c_<i
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        return self.head(self.norm(self.blocks(h)))


class _Block(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        b, t, w = h.shape
        q, k, v = self.qkv(self.norm1(h)).view(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(attended.transpose(1, 2).reshape(b, t, w))
        return h + self.mlp(self.norm2(h))


class MADE(nn.Module):
    """A masked MLP on the one-hot grid; output block i only sees input blocks j < i."""

    def __init__(self, num_positions: int, num_codes: int, width: int, layers: int) -> None:
        super().__init__()
        self.num_positions, self.num_codes = num_positions, num_codes
        p, k = num_positions, num_codes
        in_degree = torch.arange(1, p + 1).repeat_interleave(k)
        # Hidden degrees cycle over 0..P-1: a unit of degree d sees input positions <= d and
        # feeds outputs of positions > d. Degree-0 units see no input; they give the first
        # position's marginal more than a bias to learn with (plain MADE uses 1..P-1).
        hidden_degree = torch.arange(width) % p
        degrees = [in_degree] + [hidden_degree] * layers
        self.hidden = nn.ModuleList(
            _MaskedLinear(d_in, d_out[:, None] >= d_in[None, :])
            for d_in, d_out in zip(degrees[:-1], degrees[1:], strict=True)
        )
        self.out = _MaskedLinear(degrees[-1], in_degree[:, None] > degrees[-1][None, :])

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        """Logits (B, P, K) for code grids (B, P); the masks make row i depend on c_<i only."""
        h = F.one_hot(codes, self.num_codes).flatten(1).float()
        for layer in self.hidden:
            h = F.relu(layer(h))
        return self.out(h).view(-1, self.num_positions, self.num_codes)


class _MaskedLinear(nn.Linear):
    def __init__(self, in_degree: torch.Tensor, mask: torch.Tensor) -> None:
        super().__init__(len(in_degree), mask.shape[0])
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def grid_nll(prior: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    """-log p(c) per grid (B,), in nats: the cross-entropy summed over the P positions."""
    logits = prior(codes)
    return F.cross_entropy(logits.transpose(1, 2), codes, reduction="none").sum(-1)


@torch.no_grad()
def sample_grids(
    prior: nn.Module, n: int, *, device: torch.device, generator: torch.Generator | None = None
) -> torch.Tensor:
    """n grids (n, P) drawn position by position from the prior's conditionals."""
    codes = torch.zeros(n, prior.num_positions, dtype=torch.long, device=device)
    for i in range(prior.num_positions):
        # Positions >= i hold placeholders; the prior's masking makes row i ignore them.
        probs = torch.softmax(prior(codes)[:, i], dim=-1)
        codes[:, i] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
    return codes


@dataclass
class PriorFit:
    """The outcome of `fit_prior`: the final NLL (nats per grid) and the fit's wall time (s)."""

    nll: float  # final mean -log p(c) over the fitted grids, nats per grid
    seconds: float


def fit_prior(
    prior: nn.Module,
    codes: torch.Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    eval_chunk: int = 4096,
) -> PriorFit:
    """Maximum likelihood with Adam on index-slice batches of `codes` (N, P), as in training.

    Batches are reshuffled each epoch by a generator seeded with `seed`; the reported NLL is
    one pass over all of `codes` after the last step (the prior is in eval mode on return).
    """
    t0 = time.perf_counter()
    n, batch = codes.shape[0], min(batch_size, codes.shape[0])
    optimizer = torch.optim.Adam(prior.parameters(), lr=lr)
    gen = torch.Generator(device=codes.device).manual_seed(seed)
    order, pos = torch.randperm(n, generator=gen, device=codes.device), 0
    prior.train()
    for _ in range(steps):
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=gen, device=codes.device), 0
        loss = grid_nll(prior, codes.index_select(0, order[pos : pos + batch])).mean()
        pos += batch
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    prior.eval()
    with torch.no_grad():
        total = sum(grid_nll(prior, chunk).sum().item() for chunk in codes.split(eval_chunk))
    return PriorFit(total / n, time.perf_counter() - t0)
