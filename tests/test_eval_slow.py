"""``gasp eval`` end to end on the embedded model (tiny budget): generation, grading, records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gasp_rl.config import load_config
from gasp_rl.eval.command import run_eval
from gasp_rl.wiring import DEFAULT


@pytest.mark.slow
def test_eval_embedded_model_on_two_heldout_problems(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        ["eval.limit=2", "eval.n=2", "eval.ks=[1,2]", "eval.max_new_tokens=48", "generation.batch_size=8"],
    )
    [summary] = run_eval(cfg, run_dirs=[], checkpoints=[], out=tmp_path, wiring=DEFAULT)
    assert summary["checkpoint"] == "embedded" and summary["benchmark"] == "humaneval-heldout"
    assert summary["n_problems"] == 2 and set(summary["pass_at_k"]) == {"1", "2"}
    assert 0.0 <= summary["pass_at_k"]["1"] <= summary["pass_at_k"]["2"] <= 1.0
    lines = (tmp_path / summary["per_problem_file"]).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["problem_id"] for r in records] == ["HumanEval/1", "HumanEval/3"]
    for r in records:
        assert len(r["samples"]) == 2 and r["greedy"] is not None
        assert all(s["answer"] and s["status"] for s in r["samples"])
