"""Sweep files: expansion, profiles, overrides and the one-line errors for bad input."""

from pathlib import Path

import pytest

from benchmark.config import ConfigError, load_sweep, parse_override
from benchmark.paths import REPO
from benchmark.run import main as run_main

SWEEPS = REPO / "sweeps"


def test_beta_tradeoff_expands_to_beta_times_seed():
    sweep = load_sweep(SWEEPS / "beta_tradeoff.yaml")
    assert len(sweep.trials) == 6 * 2
    assert sweep.axes == ["beta", "seed"]
    betas = sorted({t.config.beta for t in sweep.trials})
    assert betas == [0.5, 1, 2, 4, 8, 10]
    assert len({t.config.hash() for t in sweep.trials}) == 12  # every trial is distinct
    assert all(t.config.dataset.resolution == 32 for t in sweep.trials)


def test_paper_profile_is_the_full_protocol():
    sweep = load_sweep(SWEEPS / "beta_tradeoff.yaml", profile="paper")
    assert len(sweep.trials) == 6 * 10
    c = sweep.trials[0].config
    assert (c.dataset.resolution, c.train.steps, c.train.batch_size) == (64, 300_000, 64)
    assert c.dataset.n_train is None and sweep.results_name == "beta_tradeoff-paper"


def test_overrides_change_base_and_grid():
    sweep = load_sweep(
        SWEEPS / "beta_tradeoff.yaml",
        overrides=["train.steps=50", "grid.beta=[1, 2, 3]", "dataset.n_train=1000"],
    )
    assert len(sweep.trials) == 3 * 2
    assert {t.config.train.steps for t in sweep.trials} == {50}
    assert {t.config.dataset.n_train for t in sweep.trials} == {1000}
    # An override of a swept key pins it.
    assert len(load_sweep(SWEEPS / "beta_tradeoff.yaml", overrides=["seed=3"]).trials) == 6


def test_hash_is_stable_and_sensitive():
    a = load_sweep(SWEEPS / "smoke.yaml").trials[0].config
    b = load_sweep(SWEEPS / "smoke.yaml").trials[0].config
    c = load_sweep(SWEEPS / "smoke.yaml", overrides=["train.lr=0.01"]).trials[0].config
    assert a.hash() == b.hash() != c.hash()


def test_parse_override():
    assert parse_override("train.steps=500") == ("train.steps", 500)
    assert parse_override("grid.beta=[1, 4]") == ("grid.beta", [1, 4])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("train.steps")


GOOD = """\
name: t
base:
  variant: beta_vae
  architecture: mlp2
  latent_dim: 4
  dataset: {name: dsprites, resolution: 16, n_train: 100, n_test: 50}
  train: {steps: 10, batch_size: 8}
grid:
  beta: [1, 2]
  seed: [0, 1, 2]
"""

# (description, file text or a (search, replace) edit of GOOD, expected key, expected text)
BAD = [
    ("unknown top-level key", GOOD + "colour: red\n", "colour", "unknown key; allowed: name"),
    ("typo in nested key", ("steps: 10", "stepz: 10"), "base.train.stepz", "allowed: steps"),
    ("wrong type", ("latent_dim: 4", "latent_dim: four"), "base.latent_dim", "valid integer"),
    ("negative beta", ("beta: [1, 2]", "beta: [1, -2]"), "grid.beta", "greater than 0"),
    ("zero latent dim", ("latent_dim: 4", "latent_dim: 0"), "base.latent_dim", "greater than 0"),
    ("zero steps", ("steps: 10", "steps: 0"), "base.train.steps", "greater than 0"),
    (
        "batch too large",
        ("batch_size: 8", "batch_size: 512"),
        "base.train.batch_size",
        "larger than the train split",
    ),
    (
        "unknown variant",
        ("beta_vae", "gamma_vae"),
        "base.variant",
        "'gamma_vae'; allowed: ",
    ),
    ("unknown architecture", ("mlp2", "mlp9"), "base.architecture", "allowed: mlp2, conv4"),
    (
        "unknown dataset",
        ("name: dsprites", "name: svhn"),
        "base.dataset.name",
        "unknown dataset 'svhn'; allowed: dsprites, digits, fashion_mnist",
    ),
    (
        "cvae on an unlabelled dataset",
        None,
        "base.variant",
        "'cvae' needs labels; dataset 'celeba' has none",
    ),  # fmt: skip
    (
        "data_root on a generated dataset",
        ("n_test: 50}", "n_test: 50, data_root: /tmp}"),
        "base.dataset",
        "data_root is only for fashion_mnist, mnist, cifar10, celeba, not dsprites",
    ),
    ("empty grid axis", ("seed: [0, 1, 2]", "seed: []"), "grid.seed", "at least one value"),
    ("repeated grid value", ("seed: [0, 1, 2]", "seed: [0, 1, 1]"), "grid", "the same config"),
    (
        "missing Inception weights file",
        (
            "  train: {steps: 10, batch_size: 8}",
            "  train: {steps: 10, batch_size: 8}\n  eval: {metrics: [mse, fd], fid_samples: 50, "
            "kid_subset_size: 10, inception_weights: /no/inception.pth}",
        ),
        "base.eval.inception_weights",
        "'/no/inception.pth' does not exist",
    ),
    ("grid axis not a list", ("seed: [0, 1, 2]", "seed: 3"), "grid.seed", "valid list"),
    ("beta on vae", ("variant: beta_vae", "variant: vae"), "grid.beta", "use 'beta_vae'"),
    (
        "conv4 on 8x8 digits",
        ("architecture: mlp2\n", "architecture: conv4\n"),
        "base.architecture",
        "multiple of 16",
    ),
    ("duplicate key", ("latent_dim: 4", "latent_dim: 4\n  latent_dim: 5"), "", "duplicate key"),
    ("yaml syntax", GOOD + "grid: [\n", "", "invalid YAML"),
    ("empty file", "", "", "the file is empty"),
    ("not a mapping", "- a\n- b\n", "", "must be a mapping"),
    ("missing base", "name: t\n", "base", "required key is missing"),
    ("bad name", ("name: t", "name: 'my sweep'"), "name", "pattern"),
    (
        "bad resolution",
        ("resolution: 16", "resolution: 48"),
        "base.dataset.resolution",
        "48 is not allowed for dsprites; allowed: 16, 32, 64",
    ),
    ("split too large", ("n_train: 100", "n_train: 737250"), "base.dataset", "exceeds the 737280"),
    (
        "missing dataset file",
        ("n_test: 50}", "n_test: 50, path: /no/such.npz}"),
        "base.dataset",
        "'/no/such.npz' does not exist",
    ),
    (
        "negative lr",
        ("batch_size: 8}", "batch_size: 8, lr: -0.1}"),
        "base.train.lr",
        "greater than 0",
    ),
    (
        "unknown metric",
        (
            "  train: {steps: 10, batch_size: 8}",
            "  train: {steps: 10, batch_size: 8}\n  eval: {metrics: [mse, fidd]}",
        ),
        "base.eval.metrics",
        "Input should be 'mse'",
    ),
    ("negative resources", GOOD + "resources: {cpu: -1}\n", "resources.cpu", "greater than 0"),
    (
        "beta on vqvae",
        ("variant: beta_vae", "variant: vqvae"),
        "grid.beta",
        "not a parameter of variant 'vqvae'",
    ),
]


def _write(tmp_path: Path, text_or_edit) -> Path:
    text = text_or_edit
    if isinstance(text_or_edit, tuple):
        assert text_or_edit[0] in GOOD
        text = GOOD.replace(*text_or_edit, 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path


def test_good_file_expands(tmp_path):
    assert len(load_sweep(_write(tmp_path, GOOD)).trials) == 6


def _bad_file(tmp_path: Path, desc: str, text) -> Path:
    if desc == "conv4 on 8x8 digits":
        text = ("name: dsprites, resolution: 16, n_train: 100, n_test: 50",
                "name: digits, n_test: 297")  # fmt: skip
        path = _write(tmp_path, text)
        path.write_text(path.read_text().replace("architecture: mlp2", "architecture: conv4"))
        return path
    if desc == "cvae on an unlabelled dataset":  # CelebA: images only; its spec says unlabelled
        text = ("name: dsprites, resolution: 16, n_train: 100, n_test: 50",
                "name: celeba, n_train: 100, n_test: 50")  # fmt: skip
        path = _write(tmp_path, text)
        path.write_text(path.read_text().replace("variant: beta_vae", "variant: cvae"))
        return path
    return _write(tmp_path, text)


def test_the_corpus_is_large():
    assert len(BAD) >= 25


@pytest.mark.parametrize("desc,text,key,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_one_clear_error(tmp_path, desc, text, key, expected):
    path = _bad_file(tmp_path, desc, text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    err = info.value
    message = str(err)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert err.key == key
    assert expected in message


def test_error_names_the_yaml_line(tmp_path):
    path = _write(tmp_path, ("steps: 10", "stepz: 10"))
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert info.value.line == 7
    assert str(info.value).startswith(f"{path}:7: base.train.stepz")


def test_unknown_profile_and_huge_grid(tmp_path):
    path = _write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="unknown profile 'papr'; allowed: default"):
        load_sweep(path, profile="papr")
    with pytest.raises(ConfigError, match="sanity limit"):
        load_sweep(path, overrides=["grid.seed=" + str(list(range(400)))])
    assert len(load_sweep(path, overrides=["grid.seed=" + str(list(range(400)))],
                          allow_large=True).trials) == 800  # fmt: skip


def test_missing_file_lists_the_sweeps(tmp_path):
    with pytest.raises(ConfigError, match="no such sweep file; sweep files there: "):
        load_sweep(SWEEPS / "beta_tradeof.yaml")


@pytest.mark.parametrize(
    "overrides,key,expected",
    [
        (["variant=iwae", "beta=null", "train.free_bits=0.5"], "train.free_bits",
         "does not support free bits; allowed: 0"),
        (["variant=iwae"], "grid.beta", "not a parameter of variant 'iwae' (its parameters: k)"),
        (["variant=vqvae"], "grid.beta", "not a parameter of variant 'vqvae'"),
        (["variant=iwae", "beta=null", "params.kk=3"], "params.kk",
         "not a parameter of variant 'iwae'"),
        (["variant=iwae", "beta=null", "params.k=0"], "params.k",
         "greater than or equal to 1"),
    ],
)  # fmt: skip
def test_variant_specific_rejections(overrides, key, expected):
    with pytest.raises(ConfigError) as info:
        load_sweep(SWEEPS / "smoke.yaml", overrides=overrides)
    assert info.value.key == key
    assert expected in str(info.value)


@pytest.mark.parametrize("desc,text,key,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_file_through_the_cli_exits_2_and_writes_nothing(tmp_path, capsys, desc, text, key,
                                                             expected):  # fmt: skip
    path = _bad_file(tmp_path, desc, text)
    results = tmp_path / "results"
    assert run_main([str(path), "--results-dir", str(results)]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and expected in lines[0]
    assert "Traceback" not in out.err + out.out
    assert not results.exists()


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("variant=betavae", "variant", "did you mean 'beta_vae'?"),
        ("train.stepz=1", "train.stepz", "unknown key; allowed: steps, "),
        ("foo=1", "foo", "unknown key; allowed: variant, "),
        ("beta=abc", "beta", "Input should be a valid number"),
        ("grid.bta=[1, 2]", "bta", "did you mean 'beta'?"),
        ("grid.seed=[]", "grid.seed", "a grid axis needs at least one value"),
        ("dataset={name: dsprites, resolution: 7}", "dataset.resolution", "7 is not allowed"),
        ("train.free_bits=0.5", "train.free_bits", None),  # allowed for beta_vae: no error
        ("resources.cpu=0", "cpu", "greater than 0"),
    ],
)
def test_an_override_mistake_names_the_override_not_a_file_line(override, key, expected):
    if expected is None:
        load_sweep(SWEEPS / "smoke.yaml", overrides=[override])
        return
    with pytest.raises(ConfigError) as err:
        load_sweep(SWEEPS / "smoke.yaml", overrides=[override])
    e = err.value
    assert e.file == f"--override {override}" and e.line is None
    assert e.key == key and expected in e.problem
    assert str(e).startswith(f"--override {override}: {key}: ")
    assert "smoke.yaml" not in str(e)


def test_misspellings_get_the_closest_allowed_name_and_far_ones_none():
    from benchmark.config import did_you_mean

    assert did_you_mean("betavae", ["vae", "beta_vae", "iwae"]) == "; did you mean 'beta_vae'?"
    assert did_you_mean("stepz", ["steps", "lr"]) == "; did you mean 'steps'?"
    assert did_you_mean("zzzz", ["steps", "lr"]) == ""
    with pytest.raises(ConfigError, match="did you mean 'mig'"):
        load_sweep(SWEEPS / "smoke.yaml", overrides=["eval.metrics=[mse, mgi]"])
    with pytest.raises(ConfigError, match="unknown profile 'papr'; allowed: default$"):
        load_sweep(SWEEPS / "smoke.yaml", profile="papr")  # nothing close enough among 'default'


def _profile_typo_file(tmp_path: Path) -> Path:
    # The new user's copy of beta_tradeoff.yaml: `steps` misspelt inside the `paper` profile.
    lines = (SWEEPS / "beta_tradeoff.yaml").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if "steps: 300000" in line)
    lines[at] = lines[at].replace("steps: 300000", "stepz: 300000")
    path = tmp_path / "proftypo.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path, at + 1


@pytest.mark.parametrize("profile", ["default", "paper"])
def test_a_profile_typo_is_found_selected_or_not_at_the_profile_line(tmp_path, profile):
    path, line = _profile_typo_file(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_sweep(path, profile=profile)
    e = info.value
    assert (e.key, e.line) == ("profiles.paper.train.stepz", line)
    assert str(e).startswith(f"{path}:{line}: profiles.paper.train.stepz: unknown key")
    assert "did you mean 'steps'?" in str(e)


GRID_LINES = GOOD.replace("  beta: [1, 2]\n", "  beta:\n    - 1\n    - 2\n")  # one item a line


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        (GOOD.replace("beta: [1, 2]", "beta: [1, abc]"), "grid.beta", 9),  # the axis, not grid:
        (GRID_LINES.replace("    - 2\n", "    - -2\n"), "grid.beta", 11),  # the bad item's line
        (GRID_LINES.replace("    - 1\n", "    - x\n"), "grid.beta", 10),
        (GOOD + "profiles:\n  p:\n    grid:\n      seed:\n        - 0\n        - -1\n",
         "profiles.p.grid.seed", 16),  # an unselected profile's grid item
    ],
)  # fmt: skip
def test_a_bad_grid_value_is_placed_at_its_axis_and_item(tmp_path, text, key, line):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    assert (info.value.key, info.value.line) == (key, line)
    assert str(info.value).startswith(f"{path}:{line}: {key}: ")


@pytest.mark.parametrize(
    ("edit", "key", "expected"),
    [
        (("latent_dim: 4", "latent_dims: 4"), "base.latent_dims", "did you mean 'latent_dim'?"),
        (("variant: beta_vae", "variantt: beta_vae"), "base.variantt", "did you mean 'variant'?"),
        (("name: t", "nme: t"), "nme", "did you mean 'name'?"),
    ],
)
def test_an_unknown_key_is_reported_before_the_key_it_leaves_missing(tmp_path, edit, key,
                                                                     expected):  # fmt: skip
    path = _write(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    line = next(i + 1 for i, t in enumerate(path.read_text().splitlines()) if edit[1] in t)
    assert (info.value.key, info.value.line) == (key, line)
    assert "unknown key" in str(info.value) and expected in str(info.value)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: load_sweep(SWEEPS / "smoke.yaml", overrides=["likelihood=gausian"]),
         "unknown likelihood 'gausian'; allowed: bernoulli, gaussian, "),
        (lambda: load_sweep(SWEEPS / "smoke.yaml", overrides=["likelihood.sigmaa=0.1",
                                                               "likelihood.name=gaussian"]),
         "not a parameter of likelihood 'gaussian'"),
        (lambda: __import__("benchmark.data").data.load_dataset("fashon"),
         "allowed: dsprites, "),
        (lambda: __import__("variants.likelihoods").likelihoods.get("gausian"),
         "unknown likelihood 'gausian'"),
    ],
)  # fmt: skip
def test_unknown_names_get_a_did_you_mean(call, expected):
    with pytest.raises(Exception) as info:
        call()
    assert expected in str(info.value)
    assert "; did you mean '" in str(info.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("likelihood=gaussian", {"name": "gaussian", "sigma": 1.0}),
        ("likelihood.sigma=0.2", None),  # bernoulli has no sigma: an error, not a display
        ("likelihood=bernoulli", {"name": "bernoulli"}),
    ],
)
def test_dry_run_shows_the_resolved_likelihood_params(override, expected):
    from benchmark.plan import base_config

    if expected is None:
        with pytest.raises(ConfigError, match="sigma: not a parameter of likelihood 'bernoulli'"):
            load_sweep(SWEEPS / "smoke.yaml", overrides=[override])
        return
    sweep = load_sweep(SWEEPS / "smoke.yaml", overrides=[override])
    assert base_config(sweep)["likelihood"] == expected
    # Shown resolved, hashed as written: `gaussian` keeps the identity it always had.
    assert sweep.trials[0].config.model_dump()["likelihood"] == {"name": override.split("=")[1]}


def test_a_profile_typo_through_the_dry_run_cli_exits_2_with_one_line(tmp_path, capsys):
    path, line = _profile_typo_file(tmp_path)
    assert run_main([str(path), "--dry-run", "--results-dir", str(tmp_path / "r")]) == 2
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.err + out.out
    assert lines[0].startswith(f"error: {path}:{line}: profiles.paper.train.stepz: unknown key")
