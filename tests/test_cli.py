"""The command line as a user meets it: help, variant list, and bad input (exit 2, one line)."""

import pytest

from benchmark.run import parse_args


def test_help_documents_every_flag(cli):
    out = cli("benchmark.run", "--help")
    assert out.returncode == 0
    for flag in ("--profile", "--override", "--device", "--address", "--tracking-uri",
                 "--results-dir", "--plugin", "--yes", "--strict", "--dry-run", "--num-cpus",
                 "--list-variants", "--fresh", "--checkpoint-every"):  # fmt: skip
        assert flag in out.stdout
    parser_flags = {a for a in vars(parse_args(["x.yaml"]))}
    assert {"profile", "override", "device", "address", "tracking_uri"} <= parser_flags


def test_list_variants_one_per_line(cli):
    out = cli("benchmark.run", "--list-variants")
    assert out.returncode == 0
    assert out.stdout.split() == ["beta_vae", "cvae", "hierarchical", "iwae", "vae", "vqvae"]


@pytest.mark.parametrize(
    "args,expected",
    [
        (["sweeps/nope.yaml"], "sweeps/nope.yaml: no such sweep file"),
        (["sweeps/smoke.yaml", "--profile", "paper"], "unknown profile 'paper'"),
        (["sweeps/smoke.yaml", "--override", "train.steps"], "expected key=value"),
        (["sweeps/smoke.yaml", "--override", "train.stepz=3"], "base.train.stepz: unknown key"),
        (["sweeps/smoke.yaml", "--override", "variant=vq_vae"], "unknown variant 'vq_vae'"),
        (["sweeps/smoke.yaml", "--device", "cuda:0"], "CUDA is not available"),
        (["sweeps/smoke.yaml", "--plugin", "no_such_module"], "--plugin no_such_module"),
        (["sweeps/smoke.yaml", "--num-cpus", "0"], "--num-cpus: 0 is not allowed"),
        (["sweeps/smoke.yaml", "--device", "tpu"], "--device tpu: not a torch device; allowed"),
        (["sweeps/smoke.yaml", "--checkpoint-every", "-1"], "--checkpoint-every: -1 is not"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(cli, tmp_path, args, expected):
    out = cli("benchmark.run", *args, "--results-dir", str(tmp_path / "results"))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()  # no MLflow store, no results: nothing started


def test_broken_yaml_names_file_and_line(cli, tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: x\nbase: {variant: vae\ngrid: {}\n")
    out = cli("benchmark.run", str(bad), "--results-dir", str(tmp_path / "results"))
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {bad}:")
    assert "invalid YAML" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_dry_run_lists_trials(cli):
    out = cli("benchmark.run", "sweeps/beta_tradeoff.yaml", "--dry-run")
    assert out.returncode == 0
    assert "12 trials over beta, seed" in out.stdout
    assert out.stdout.count("beta=") == 12


def test_unreadable_dataset_files_stop_the_sweep_before_it_starts(cli, tmp_path):
    # CIFAR-10 batches that are not pickles: one line naming the file, before Ray or MLflow.
    root = tmp_path / "data" / "cifar-10-batches-py"
    root.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (root / name).write_bytes(b"not a pickle")
    out = cli("benchmark.run", "sweeps/smoke.yaml", "--results-dir", str(tmp_path / "results"),
              "--override", "dataset={name: cifar10, n_train: 100, n_test: 50, data_root: "
              f"{tmp_path / 'data'}}}", "--override", "architecture=mlp2")  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "cifar" in lines[0].lower() and str(root) in lines[0], out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()
