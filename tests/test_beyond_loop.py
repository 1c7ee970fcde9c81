"""Dynamic goalposts, alignment and adherence in the self-play loop with the scripted fake model:
goalposts retire and are promoted as scripted, every lemma carries both scores, and resume after
SIGKILL keeps the active set."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gasp_rl.config import load_config
from gasp_rl.core.tasks import Problem, write_jsonl
from gasp_rl.driver import run_training
from gasp_rl.runs import read_records


def _goalpost(name: str, body: str, tests: list[tuple[str, str]], solvable: bool) -> Problem:
    """A tiny check-style goalpost; the fake model solves it iff its statement scripts the answer."""
    script = f"    fake answer: {body}\n" if solvable else ""
    prompt = f'def {name}(x):\n    """Return {body}.\n{script}    """\n'
    check = "def check(candidate):\n" + "".join(f"    assert candidate({a}) == {o}\n" for a, o in tests)
    return Problem(
        problem_id=f"toy/{name}",
        prompt=prompt,
        kind="check",
        entry_point=name,
        check_code=check,
        source="humaneval",
        meta={"canonical_solution": f"    return {body}\n"},
    )


GOALPOSTS = [
    _goalpost("inc", "x + 1", [("1", "2"), ("5", "6")], solvable=True),
    _goalpost("sq", "x * x + 3", [("2", "7"), ("3", "12")], solvable=False),
    _goalpost("dbl", "x * 2", [("1", "2"), ("4", "8")], solvable=True),
    _goalpost("neg", "-x - 7", [("1", "-8")], solvable=False),
    _goalpost("cube", "x * x * x - 1", [("2", "7")], solvable=False),
]


@pytest.fixture(scope="module")
def goalposts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gp") / "toy_goalposts.jsonl"
    write_jsonl(path, GOALPOSTS)
    return path


def _args(goalposts: Path, run_dir: Path, iterations: int = 6) -> list[str]:
    return [
        "model.backend=fake",
        "gasp.embedder=hash",
        f"gasp.goalposts={goalposts}",
        f"run.dir={run_dir}",
        f"gasp.iterations={iterations}",
        "gasp.lemmas_per_step=6",
        "gasp.goalposts_active=2",
        "gasp.goalposts_refresh_every=2",
        "gasp.refresh_k=2",
        "gasp.axis_weight=0.5",
        "gasp.alignment_weight=0.5",
        "sandbox.workers=2",
    ]


def test_goalposts_retire_and_are_promoted_as_scripted(goalposts, tmp_path) -> None:
    run = run_training(load_config(None, _args(goalposts, tmp_path / "run")))
    refreshes = list(read_records(run / "goalposts.jsonl"))
    assert [r["iteration"] for r in refreshes] == [1, 3, 5]
    first = refreshes[0]
    # active [inc, sq]: inc is solved; pool candidates dbl (solved too, so not promoted) and neg
    assert first["retired"] == ["toy/inc"] and first["promoted"] == ["toy/neg"]
    assert first["evaluated_pool"] == ["toy/dbl", "toy/neg"] and first["active"] == ["toy/neg", "toy/sq"]
    assert all(r["retired"] == [] and r["active"] == ["toy/neg", "toy/sq"] for r in refreshes[1:])
    # lemmas of later iterations are proposed for the active goalposts only
    late = [p for p in read_records(run / "proposals.jsonl") if p["iteration"] >= 2 and p["phase"] == "lemma"]
    assert late and {p["goalpost_id"] for p in late} <= {"toy/neg", "toy/sq"}
    metrics = list(read_records(run / "metrics.jsonl"))
    assert metrics[1]["goalposts"] == {"retired": 1, "promoted": 1}
    assert "refresh" in metrics[1]["time"]
    # the report shows the timeline and both score distributions; the explorer, each lemma's scores
    from gasp_rl.report.data import load_run
    from gasp_rl.report.html import explorer_data, write_report

    html = write_report([run], tmp_path / "report.html").read_text()
    for title in ("Goalpost timeline", "Goalpost alignment of the lemmas", "Axis adherence of the lemmas"):
        assert title in html
    shown = [p for p in explorer_data(load_run(run))["proposals"] if p["phase"] == "lemma" and p["valid"]]
    assert shown and all(p["adherence"] is not None and p["alignment_margin"] is not None for p in shown)


def test_every_valid_lemma_carries_alignment_and_adherence_and_they_enter_its_reward(
    goalposts, tmp_path
) -> None:
    from gasp_rl.core.rewards import proposal_reward

    cfg = load_config(None, _args(goalposts, tmp_path / "run", iterations=2))
    run = run_training(cfg)
    lemmas = [p for p in read_records(run / "proposals.jsonl") if p["phase"] == "lemma"]
    valid = [p for p in lemmas if p["valid"]]
    assert valid
    for p in valid:
        a, d = p["alignment"], p["adherence"]
        assert set(a) == {"cosine", "margin", "rank"} and 0.0 <= a["rank"] <= 1.0
        assert d["axis"] == p["axis"] and -0.5 <= d["score"] <= 1.0
        base = proposal_reward(p["pass_rate"], 1.0, 1.0, cfg.gasp.format_penalty)
        want = base + 0.5 * a["margin"] - 0.5 * (1.0 - d["score"])
        assert p["reward"] == pytest.approx(want, abs=2e-3)  # (scores are rounded in the record)
    assert all(p["alignment"] is None for p in lemmas if not p["valid"])
    m = list(read_records(run / "metrics.jsonl"))[0]
    assert set(m["adherence"]) <= {"io", "f"} and m["alignment"]


def test_sigkill_then_resume_keeps_the_active_goalposts(goalposts, tmp_path) -> None:
    ref = run_training(load_config(None, _args(goalposts, tmp_path / "ref")))
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gasp_rl.cli", "train", *_args(goalposts, run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:  # kill after the first refresh (iteration 1) is committed
        meta = run_dir / "run.json"
        if meta.exists() and json.loads(meta.read_text()).get("last_iteration", -1) >= 2:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert json.loads((run_dir / "run.json").read_text())["last_iteration"] < 5
    res = subprocess.run(
        [sys.executable, "-m", "gasp_rl.cli", "train", "--resume", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for stream in ("goalposts", "proposals"):
        assert list(read_records(run_dir / f"{stream}.jsonl")) == list(read_records(ref / f"{stream}.jsonl"))
