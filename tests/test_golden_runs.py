"""Every record a run writes stays what it was for the same seed: the three run drivers (self-play
in three modes, RLVR, Sol-Ver) against fixtures recorded at commit 27f4fbe
(``tests/golden_runs.py`` says how they are run and which volatile fields are normalised)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import golden_runs  # noqa: E402

#: Files renamed since the fixtures were recorded: old name -> new name (none yet).
RENAMED: dict[str, str] = {}


def _expected(name: str) -> dict:
    want = json.loads(golden_runs.fixture_path(name).read_text())
    out = {}
    for rel, content in want.items():
        if rel == "checkpoints/":
            content = [_rename(p) for p in content]
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
        if isinstance(want[rel], list) and rel.endswith(".jsonl"):
            assert len(got[rel]) == len(want[rel]), rel
            for i, (g, w) in enumerate(zip(got[rel], want[rel])):
                assert g == w, f"{rel} record {i}"
        else:
            assert got[rel] == want[rel], rel
