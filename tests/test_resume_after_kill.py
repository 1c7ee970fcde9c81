"""``kill -9`` in the middle of an iteration, then ``--resume``: the run's records equal those of
the uninterrupted run (the golden fixtures of ``tests/golden_runs.py``), for each run driver
command: self-play (GASP), RLVR and Sol-Ver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import golden_runs  # noqa: E402
from gasp_rl.runs import read_records  # noqa: E402

#: Runs the golden run ``argv[1]`` under ``argv[2]`` (resuming it when ``argv[3]`` is "resume"),
#: each record of iteration 1 written slowly so that the kill lands inside that iteration.
CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
import golden_runs
from gasp_rl.runs import RunStore

name, tmp, what = sys.argv[1], sys.argv[2], sys.argv[3]
if what == "first":
    append = RunStore.append

    def slow_append(self, stream, record):
        append(self, stream, record)
        if record.get("iteration") == 1:
            time.sleep(0.2)

    RunStore.append = slow_append
golden_runs.run(name, __import__("pathlib").Path(tmp), setattr, resume=what == "resume")
"""


def _child(name: str, tmp: Path, what: str) -> list[str]:
    return [sys.executable, "-c", CHILD.format(tests=str(Path(__file__).parent)), name, str(tmp), what]


@pytest.mark.parametrize(
    "name",
    ["gasp", "rlvr", pytest.param("solver_verifier", marks=pytest.mark.slow)],
)
def test_sigkill_mid_iteration_then_resume_gives_the_uninterrupted_records(name, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(golden_runs.SRC), os.environ.get("PYTHONPATH", "")]),
    }
    run_dir = tmp_path / name
    proc = subprocess.Popen(
        _child(name, tmp_path, "first"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    deadline = time.time() + 300
    stream = "proposals" if name != "rlvr" else "students"
    while time.time() < deadline and proc.poll() is None:
        meta = run_dir / "run.json"
        committed = meta.exists() and json.loads(meta.read_text()).get("last_iteration", -1) >= 0
        if committed and any(r.get("iteration") == 1 for r in read_records(run_dir / f"{stream}.jsonl")):
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["last_iteration"] == 0 and meta["status"] == "running", "not killed in iteration 1"
    res = subprocess.run(
        _child(name, tmp_path, "resume"), capture_output=True, text=True, timeout=600, env=env
    )
    assert res.returncode == 0, res.stderr[-3000:]
    want = json.loads(golden_runs.fixture_path(name).read_text())
    got = golden_runs.within_float_noise(golden_runs.snapshot(run_dir, tmp_path), want)
    for rel in ("proposals.jsonl", "students.jsonl", "metrics.jsonl"):
        if rel in want:
            assert got[rel] == want[rel], rel
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
