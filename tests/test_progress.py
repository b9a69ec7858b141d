"""The sweep's progress lines: the ETA comes from the rate of training, not of start-up."""

import io

from benchmark import progress
from benchmark.progress import Progress


def test_eta_ignores_start_up_and_steps_a_resumed_trial_had(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    out = io.StringIO()
    p = Progress([400, 400, 400], every=0, out=out)
    now[0] += 30  # Ray start, worker imports, data: no training yet
    p.start(0, "a")
    p.start(1, "b")
    p.step(0, "a", 20, 1.0)  # first report: the clock starts, nothing to divide yet
    p.step(1, "b", 220, 1.0)  # b resumed from its step-200 checkpoint: it ran 20, not 220
    assert out.getvalue().splitlines()[-1].endswith("ETA ?")
    now[0] += 2
    p.step(0, "a", 60, 1.0)
    p.step(1, "b", 260, 1.0)  # 80 steps in 2 s since the clock started: 40 steps/s
    p.start(2, "c")  # started on the clock: all its steps count
    now[0] += 1
    p.step(2, "c", 40, 1.0)  # 120 steps in 3 s: 40 steps/s; 1200 - 360 left: 21 s
    assert out.getvalue().splitlines()[-1].endswith("ETA 0m21s")
