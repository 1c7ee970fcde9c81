"""Every record a run writes stays what it was for the same seed: the three run drivers (self-play
in three modes, RLVR, Sol-Ver) against recorded fixtures (``tests/golden_runs.py`` says how they
are run and which volatile fields are normalised).

History of the fixtures: recorded at commit 27f4fbe; the self-play ones re-recorded when the
proposal format changed to numbered ``Input k:`` lines (the fake model's script is seeded by the
prompt text, so new prompts give new, equally deterministic records); all re-recorded when the
fake model's own proposals moved to numbered ``Input k:`` lines too (completion text and token
counts changed, no verdict, reward or acceptance did), which also took in the one-driver changes
(state.json with ``mode`` / ``algorithm``, Sol-Ver's ``completed`` status and weights-only
``iter_NNNNNN`` checkpoints) that this test used to translate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import golden_runs  # noqa: E402


@pytest.mark.parametrize(
    "name",
    [n if n != "solver_verifier" else pytest.param(n, marks=pytest.mark.slow) for n in golden_runs.RUNS],
)
def test_run_records_equal_the_golden_ones(name, tmp_path, monkeypatch):
    want = json.loads(golden_runs.fixture_path(name).read_text())
    got = golden_runs.snapshot(golden_runs.run(name, tmp_path, monkeypatch.setattr), tmp_path)
    got = golden_runs.within_float_noise(got, want)
    assert sorted(got) == sorted(want)
    for rel in want:
        if isinstance(want[rel], list) and rel.endswith(".jsonl"):
            assert len(got[rel]) == len(want[rel]), rel
            for i, (g, w) in enumerate(zip(got[rel], want[rel])):
                assert g == w, f"{rel} record {i}"
        else:
            assert got[rel] == want[rel], rel
