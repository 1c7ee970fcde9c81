"""Every record a run writes stays what it was for the same seed: the three run drivers (self-play
in three modes, RLVR, Sol-Ver) against fixtures recorded at commit 27f4fbe
(``tests/golden_runs.py`` says how they are run and which volatile fields are normalised).

The self-play fixtures (``gasp``, ``azr``, ``gasp_plus_rl``) were re-recorded when the proposal
format changed to numbered ``Input k:`` lines: the fake model's script is seeded by the prompt
text, so new prompts give new (equally deterministic) records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import golden_runs  # noqa: E402

# What changed on purpose since the fixtures were recorded (issue 16, one run driver), and nothing
# else.  Checkpoints only; every JSONL record is unchanged.
#: Files renamed: old name -> new name.  Self-play's resume state is the driver's state.json.
RENAMED: dict[str, str] = {"loop_state.json": "state.json"}
#: The state files gained fields (``mode`` for self-play, ``algorithm`` for RLVR / Sol-Ver): the
#: new file must hold every old field with its old value.
STATE_FILES = ("checkpoints/last/state.json",)
#: Sol-Ver's kept checkpoints are the weights only, hard-linked from ``last`` as for the other
#: commands: the resume state no longer sits in ``iter_NNNNNN``.
DROPPED = {"solver_verifier": ("checkpoints/iter_000000/state.json", "checkpoints/iter_000001/state.json")}
#: ``run.json`` status of a finished run: Sol-Ver said ``finished``, every command now ``completed``.
STATUS = {"finished": "completed"}


def _expected(name: str) -> dict:
    want = json.loads(golden_runs.fixture_path(name).read_text())
    dropped = DROPPED.get(name, ())
    out = {}
    for rel, content in want.items():
        if rel in dropped:
            continue
        if rel == "checkpoints/":
            content = [_rename(p) for p in content if p not in dropped]
        if rel == "run.json":
            content = {**content, "status": STATUS.get(content["status"], content["status"])}
        out[_rename(rel)] = content
    return out


def _rename(rel: str) -> str:
    for old, new in RENAMED.items():
        if rel == old or rel.endswith("/" + old):
            return rel[: len(rel) - len(old)] + new
    return rel


@pytest.mark.parametrize(
    "name",
    [n if n != "solver_verifier" else pytest.param(n, marks=pytest.mark.slow) for n in golden_runs.RUNS],
)
def test_run_records_equal_the_golden_ones(name, tmp_path, monkeypatch):
    got = golden_runs.snapshot(golden_runs.run(name, tmp_path, monkeypatch.setattr), tmp_path)
    want = _expected(name)
    assert sorted(got) == sorted(want)
    for rel in want:
        if rel in STATE_FILES:
            assert {k: got[rel].get(k) for k in want[rel]} == want[rel], rel
        elif isinstance(want[rel], list) and rel.endswith(".jsonl"):
            assert len(got[rel]) == len(want[rel]), rel
            for i, (g, w) in enumerate(zip(got[rel], want[rel])):
                assert g == w, f"{rel} record {i}"
        else:
            assert got[rel] == want[rel], rel
