"""Goalpost progress counts pass@k > 0 at checkpoints of the run only (issue 15 item 5)."""

from __future__ import annotations

import json
from pathlib import Path

from gasp_rl.eval.progress import goalpost_progress, run_progress
from gasp_rl.eval.runner import ProblemRecord, append_records
from gasp_rl.report.data import parse_progress


def _sample(passed: bool) -> dict:
    return {"passed": passed, "status": "passed" if passed else "wrong_answer", "reason": "", "answer": ""}


def _write(eval_dir: Path, name: str, iteration: int, rows: dict[str, tuple[int, int, bool]]) -> None:
    """rows: problem -> (n samples, c passing, greedy passed)."""
    recs = [
        ProblemRecord(pid, n, c, [_sample(i < c) for i in range(n)], _sample(g), {"n": n})
        for pid, (n, c, g) in rows.items()
    ]
    append_records(eval_dir / f"{name}__goalposts.samples.jsonl", recs)
    summary = {
        "checkpoint": name,
        "iteration": iteration,
        "pass_at_k": {},
        "per_problem_file": f"{name}__goalposts.samples.jsonl",
    }
    (eval_dir / f"{name}__goalposts.json").write_text(json.dumps(summary))


def _run(tmp_path: Path, name: str) -> tuple[Path, Path]:
    run = tmp_path / name
    (run / "eval").mkdir(parents=True)
    return run, run / "eval"


def test_solved_means_pass_at_k_of_a_checkpoint_of_the_run(tmp_path: Path) -> None:
    run, ev = _run(tmp_path, "r")
    k = 4
    _write(
        ev, "base", 0, {"g/a": (4, 2, True), "g/b": (4, 0, False), "g/c": (4, 0, False), "g/d": (4, 0, False)}
    )
    _write(
        ev,
        "iter_000001",
        1,
        {"g/a": (4, 0, False), "g/b": (4, 0, True), "g/c": (4, 1, False), "g/d": (4, 0, False)},
    )
    _write(
        ev,
        "iter_000002",
        2,
        {"g/a": (2, 2, True), "g/b": (2, 0, False), "g/c": (2, 0, False), "g/d": (2, 2, True)},
    )
    _write(
        ev,
        "iter_000003",
        3,
        {"g/a": (4, 1, True), "g/b": (4, 0, False), "g/c": (4, 0, False), "g/d": (4, 0, False)},
    )
    p = run_progress(run, ev, k=k)
    # g/a: solved by the base model (not counted) and at iteration 3 -> first solved at 3
    # g/b: only a greedy answer passed -> not solved
    # g/c: one of k samples at iteration 1 -> solved at 1
    # g/d: passed at iteration 2, but with 2 < k samples -> pass@k unknown, not counted
    assert p["first_solve"] == {"g/a": 3, "g/c": 1}
    assert p["base_solved"] == ["g/a"]
    assert [c["checkpoint"] for c in p["checkpoints"]] == ["iter_000001", "iter_000002", "iter_000003"]
    assert [c["counted"] for c in p["checkpoints"]] == [True, False, True]
    union = goalpost_progress([(run, ev)], k=k)["union"]
    assert union["n_solved"] == 2 and union["first_solve"] == {"g/a": 3, "g/c": 1}
    # the report reads the same facts (the uncounted checkpoint adds nothing)
    rep = parse_progress(p, run)
    assert rep is not None and rep.first_solved == {"g/a": 3, "g/c": 1}


def test_base_model_is_not_iteration_zero_of_every_run(tmp_path: Path) -> None:
    runs = []
    for name in ("seed0", "seed1"):
        run, ev = _run(tmp_path, name)
        _write(ev, "base", 0, {"g/a": (2, 2, True), "g/b": (2, 0, False)})
        _write(ev, "iter_000001", 1, {"g/a": (2, 0, False), "g/b": (2, 0, False)})
        runs.append((run, ev))
    prog = goalpost_progress(runs, k=2)
    assert prog["union"]["n_solved"] == 0
    assert all(r["n_solved"] == 0 and r["base_solved"] == ["g/a"] for r in prog["runs"])
