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


def test_list_variants_describes_each_with_its_parameters_and_defaults(cli):
    out = cli("benchmark.run", "--list-variants")
    assert out.returncode == 0
    names = [line.split(":")[0] for line in out.stdout.splitlines() if not line.startswith(" ")]
    # Installed entry-point variants (e.g. the example plugin) may join the built-in ones.
    assert {"beta_vae", "cvae", "hierarchical", "iwae", "vae", "vqvae"} <= set(names)
    assert names == sorted(names)
    beta_vae = ("\n" + out.stdout).split("\nbeta_vae:")[1].split("\ncvae:")[0].splitlines()
    assert "Higgins" in beta_vae[0]
    assert "beta = 4.0" in beta_vae[1] and "weight of the KL term" in beta_vae[1]
    assert "k = 5" in out.stdout and "importance samples" in out.stdout  # iwae
    assert "lower_dims = [16]" in out.stdout  # a default from a default_factory
    assert "vae: the standard VAE" in out.stdout and "(no parameters)" in out.stdout


@pytest.mark.parametrize(
    "args,expected",
    [
        (["sweeps/nope.yaml"], "sweeps/nope.yaml: no such sweep file"),
        (["sweeps/smoke.yaml", "--profile", "paper"], "unknown profile 'paper'"),
        (["sweeps/smoke.yaml", "--override", "train.steps"], "expected key=value"),
        # An --override mistake names the --override, never a line of the sweep file.
        (
            ["sweeps/smoke.yaml", "--override", "train.stepz=3"],
            "error: --override train.stepz=3: train.stepz: unknown key; allowed: steps, ",
        ),
        (
            ["sweeps/smoke.yaml", "--override", "variant=vq_vae"],
            "error: --override variant=vq_vae: variant: unknown variant 'vq_vae'",
        ),
        (
            ["sweeps/smoke.yaml", "--override", "variant=betavae"],
            "beta_vae, cvae, hierarchical, iwae, vae, vqvae; did you mean 'beta_vae'?",
        ),
        (["sweeps/smoke.yaml", "--override", "foo=1"], "error: --override foo=1: foo: unknown key"),
        (
            ["sweeps/smoke.yaml", "--override", "beta=abc"],
            "error: --override beta=abc: beta: Input should be a valid number",
        ),
        (
            ["sweeps/smoke.yaml", "--override", "grid.bta=[1]"],
            "error: --override grid.bta=[1]: bta: unknown key; allowed: variant, ",
        ),
        (["sweeps/smoke.yaml", "--override", "train.stepz=3"], "did you mean 'steps'?"),
        (["sweeps/smoke.yaml", "--override", "architecture=conv5"], "did you mean 'conv4'?"),
        (["sweeps/smoke.yaml", "--override", "dataset.name=dsprite"], "did you mean 'dsprites'?"),
        (["sweeps/smoke.yaml", "--override", "eval.metrics=[mse,mgi]"], "did you mean 'mig'?"),
        (["sweeps/smoke.yaml", "--override", "params.bta=2"], "did you mean 'beta'?"),
        (["sweeps/smoke.yaml", "--device", "cuda:0"], "CUDA is not available"),
        (["sweeps/smoke.yaml", "--plugin", "no_such_module"], "--plugin no_such_module"),
        (["sweeps/smoke.yaml", "--num-cpus", "0"], "--num-cpus: 0 is not allowed"),
        (["sweeps/smoke.yaml", "--device", "tpu"], "--device tpu: not a torch device; allowed"),
        (["sweeps/smoke.yaml", "--checkpoint-every", "-1"], "--checkpoint-every: -1 is not"),
        # Ray retries an unreachable head for minutes: the driver answers at once.
        (
            ["sweeps/smoke.yaml", "--address", "127.0.0.1:1"],
            "--address 127.0.0.1:1: no Ray head answers there",
        ),
        # The FD minimum is named even though kid_subset_size is left at its default.
        (
            [
                "sweeps/smoke.yaml",
                "--override",
                "eval.metrics=[mse,fd]",
                "--override",
                "eval.fid_samples=10",
            ],
            "--override eval.fid_samples=10: eval.fid_samples: N=10 is "
            "too few for a Fréchet distance in the 128-d features of fd_dsprites",
        ),
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


def test_dry_run_shows_config_trials_steps_destination_and_estimate(cli, tmp_path):
    out = cli("benchmark.run", "sweeps/beta_tradeoff.yaml", "--dry-run",
              "--results-dir", str(tmp_path / "results"))  # fmt: skip
    assert out.returncode == 0
    assert "12 trials over beta, seed" in out.stdout
    assert out.stdout.count("beta=") == 12
    assert "variant: beta_vae" in out.stdout and "architecture: conv4" in out.stdout
    assert "beta: 'grid: [0.5, 1, 2, 4, 8, 10]'" in out.stdout
    assert "total: 12 trials, 36,000 training steps" in out.stdout
    assert f"results: {tmp_path / 'results' / 'beta_tradeoff'}/" in out.stdout
    # No measured numbers in an empty results dir: the estimate says it is a rough constant.
    assert "estimated time: ~" in out.stdout and "a rough constant" in out.stdout
    assert "warning" not in out.stdout
    assert not (tmp_path / "results").exists()


def test_dry_run_estimates_from_measured_throughput_and_warns_for_a_big_profile(cli, tmp_path):
    results = tmp_path / "results"
    (results / "old").mkdir(parents=True)
    # A previous sweep's runs.csv: conv4 on 32x32 images trained at 1000 images/s.
    (results / "old" / "runs.csv").write_text(
        "architecture,status,train_images_per_second,dataset\n"
        'conv4,finished,1000,"dSprites-like, 32x32, 20000 train / 2000 test"\n'
    )
    out = cli("benchmark.run", "sweeps/beta_tradeoff.yaml", "--dry-run", "--num-cpus", "1",
              "--results-dir", str(results))  # fmt: skip
    # 12 trials x 3000 steps x 64 images at 1000 images/s, one at a time: 2304 s = 38 min.
    assert "estimated time: ~38 min" in out.stdout, out.stdout
    assert "1,000 images/s per trial, measured: conv4 at 32px" in out.stdout
    out = cli("benchmark.run", "sweeps/beta_tradeoff.yaml", "--dry-run", "--profile", "paper",
              "--num-cpus", "1", "--results-dir", str(results))  # fmt: skip
    assert out.returncode == 0
    assert "warning: profile 'paper' is a big sweep: 60 trials x up to 300,000 steps" in out.stdout


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


@pytest.mark.parametrize("profile", ["default", "paper"])
def test_dry_run_of_a_grid_over_mappings(cli, profile):
    """sweeps/likelihood.yaml's grid holds mappings ({name: gaussian, sigma: 1.0})."""
    out = cli("benchmark.run", "sweeps/likelihood.yaml", "--profile", profile, "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "gaussian" in out.stdout and "estimated time" in out.stdout


COMMANDS = [
    "benchmark.run", "benchmark.report", "benchmark.verify", "benchmark.compare",
    "benchmark.numerics", "benchmark.feature_nets", "benchmark.data.__main__",
    "benchmark.perf.__main__", "benchmark.perf.precision", "benchmark.perf.gpu_hours",
    "benchmark.perf.profile_step", "benchmark.perf.pythae_compare",
]  # fmt: skip


@pytest.mark.parametrize("module", COMMANDS)
def test_every_command_refuses_a_bad_flag_in_one_line(module, capsys):
    import importlib

    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main(["--no-such-flag"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1, err
    prog = module.removesuffix(".__main__")
    assert err.startswith(f"error: python -m {prog}: ")
    assert "--no-such-flag" in err or "the following arguments are required" in err
