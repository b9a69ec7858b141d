"""Progress lines while a sweep runs: trial i/N, step, loss and an ETA for the whole sweep."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """Prints at most one step line per trial every `every` seconds, plus start and end lines.

    The ETA is the remaining training steps of the sweep over the steps-per-second rate seen
    since the first step was reported (evaluation time is included in that rate once a trial has
    finished). Start-up (Ray, worker imports, data) is not in the rate: counted in, it made the
    first ETA of a short sweep minutes long.
    """

    def __init__(
        self,
        steps_per_trial: list[int],
        every: float = 10.0,
        out: TextIO = sys.stdout,
        already_done: frozenset[int] | set[int] = frozenset(),
    ):
        # Trials finished by an earlier, interrupted attempt count as done but not in the rate.
        self.steps = dict(enumerate(steps_per_trial))
        self.total = sum(n for i, n in self.steps.items() if i not in already_done)
        self.done: dict[int, int] = {}
        self.n = len(steps_per_trial)
        self.every, self.out = every, out
        self.t0 = time.monotonic()
        self.last_print: dict[int, float] = {}
        self.finished = len(already_done)
        self.t_first: float | None = None  # when the first step was reported
        # Steps a trial had before the rate's clock started: for a trial started before the
        # first report (with the sweep, perhaps resumed at step 1500), its first reported step;
        # for a later one, 0 (all its steps ran on the clock).
        self.base: dict[int, int] = {}

    def _eta(self) -> str:
        done = sum(self.done.values())
        ran = done - sum(self.base.values())
        if self.t_first is None or ran <= 0:
            return "ETA ?"
        rate = ran / max(time.monotonic() - self.t_first, 1e-9)
        return f"ETA {_duration((self.total - done) / rate)}"

    def _print(self, text: str) -> None:
        print(f"[{_duration(time.monotonic() - self.t0)}] {text}", file=self.out, flush=True)

    def start(self, index: int, name: str) -> None:
        """Print that trial `index` (0-based) started."""
        self._print(f"trial {index + 1}/{self.n} {name}: started")
        if self.t_first is not None:  # started on the rate's clock: every step it runs counts
            self.base.setdefault(index, 0)

    def step(self, index: int, name: str, step: int, loss: float) -> None:
        """Record trial `index` at `step`; print at most every `every` s, and at the end."""
        now = time.monotonic()
        if self.t_first is None:
            self.t_first = now
        self.base.setdefault(index, step)  # started before the clock (see `start`)
        self.done[index] = step
        if now - self.last_print.get(index, 0.0) < self.every and step < self.steps[index]:
            return
        self.last_print[index] = now
        self._print(
            f"trial {index + 1}/{self.n} {name}: step {step}/{self.steps[index]} "
            f"loss {loss:.2f} | {self._eta()}"
        )

    def note(self, index: int, name: str, text: str) -> None:
        """Print a line about trial `index` (e.g. a retry)."""
        self._print(f"trial {index + 1}/{self.n} {name}: {text}")

    def end(self, index: int, name: str, status: str, summary: str = "") -> None:
        """Record trial `index` as ended with `status`; print it with the overall ETA."""
        self.done[index] = self.steps[index]
        self.finished += 1
        tail = f" {summary}" if summary else ""
        self._print(
            f"trial {index + 1}/{self.n} {name}: {status}{tail} "
            f"({self.finished}/{self.n} done) | {self._eta()}"
        )
