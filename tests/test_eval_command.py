"""``gasp eval`` over runs and checkpoints, checkpoint selection, ``gasp goalposts`` and goalpost
progress -- with scripted generators standing in for models (no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gasp_rl.cli import app
from gasp_rl.config import dump_config, load_config
from gasp_rl.core.tasks import Problem, write_jsonl
from gasp_rl.errors import DataError
from gasp_rl.eval import command
from gasp_rl.eval.goalposts import load_goalposts, run_goalposts
from gasp_rl.eval.progress import cumulative_curve
from gasp_rl.seams import Chat, Completion, SamplingParams
from gasp_rl.wiring import DEFAULT


def _problems(n: int = 5) -> list[Problem]:
    return [
        Problem(
            problem_id=f"toy/{i}",
            prompt=f'def f{i}(x):\n    """Return x + {i}."""\n',
            kind="check",
            entry_point=f"f{i}",
            check_code=f"def check(candidate):\n    assert candidate(1) == {1 + i}\n",
            source="toy",
        )
        for i in range(n)
    ]


#: which toy problems each model solves
SKILLS = {
    "embedded": {0},
    "base-model": {0},
    "iter_000001": {0, 1},
    "iter_000002": {2},
    "iter_000003": set(),
    "ckpt-x": {1},
}


class SkillGenerator:
    """Answers problem i right iff the model 'knows' it (``SKILLS``)."""

    def __init__(self, model: str) -> None:
        self.skills = SKILLS[Path(model).name]
        self.calls = 0

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        self.calls += 1
        out = []
        for chat in prompts:
            i = int(chat[-1]["content"].split("def f")[1].split("(")[0])
            body = f"x + {i}" if i in self.skills else "x - 100"
            out.append([Completion(f"```python\ndef f{i}(x):\n    return {body}\n```")] * params.n)
        return out


@pytest.fixture
def skills(monkeypatch):
    built: list[str] = []

    def build(cfg, model, wiring):  # noqa: ANN001, ANN202
        built.append(Path(model).name)
        return SkillGenerator(model)

    monkeypatch.setattr(command, "build_generator", build)
    return built


def _make_run(root: Path, name: str, seed: int, iters: list[int]) -> Path:
    run = root / name
    cfg = load_config(None, ["model.name_or_path=base-model", f"run.seed={seed}"])
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(dump_config(cfg))
    (run / "run.json").write_text(json.dumps({"seed": seed, "mode": "gasp"}))
    for it in iters:
        (run / "checkpoints" / f"iter_{it:06d}").mkdir()
    (run / "checkpoints" / "last").mkdir()  # not an evaluation checkpoint
    return run


def test_eval_runs_selection_and_goalpost_progress(tmp_path: Path, monkeypatch, skills) -> None:
    monkeypatch.chdir(tmp_path)
    gp = tmp_path / "gp.jsonl"
    write_jsonl(gp, _problems())
    r1 = _make_run(tmp_path, "seed0", 0, [1, 2])
    r2 = _make_run(tmp_path, "seed1", 1, [3])
    cfg = load_config(
        None, ["eval.benchmark=goalposts", f"eval.path={gp}", "eval.n=2", "eval.ks=[1,2]", "goalposts.k=2"]
    )
    summaries = command.run_eval(cfg, run_dirs=[r1, r2], checkpoints=[], out=None, wiring=DEFAULT)
    assert [s["checkpoint"] for s in summaries] == [
        "base",
        "iter_000001",
        "iter_000002",
        "base",
        "iter_000003",
    ]
    assert skills == ["base-model", "iter_000001", "iter_000002", "base-model", "iter_000003"]

    s = json.loads((r1 / "eval" / "iter_000001__goalposts.json").read_text())
    assert s["iteration"] == 1 and s["n"] == 2 and s["ks"] == [1, 2] and s["n_problems"] == 5
    assert s["pass_at_k"] == {"1": pytest.approx(0.4), "2": pytest.approx(0.4)}
    assert s["greedy_pass_at_1"] == pytest.approx(0.4)
    assert (r1 / "eval" / s["per_problem_file"]).is_file()

    sel = json.loads((r1 / "eval" / "selection.json").read_text())["goalposts"]
    assert sel["best"] == {"checkpoint": "iter_000001", "iteration": 1, "value": pytest.approx(0.4)}
    assert [c["checkpoint"] for c in sel["candidates"]] == ["base", "iter_000001", "iter_000002"]

    # progress per run (seed) and the union across seeds
    p1 = json.loads((r1 / "goalposts" / "progress.json").read_text()) if (r1 / "goalposts").exists() else None
    assert p1 is None  # several runs: one combined progress in ./goalpost-progress
    prog = json.loads((tmp_path / "goalpost-progress" / "progress.json").read_text())
    run0, run1 = prog["runs"]
    # the base model is not iteration 0 of every run: what it solves (toy/0) is reported apart
    assert run0["seed"] == 0 and run0["first_solve"] == {"toy/0": 1, "toy/1": 1, "toy/2": 2}
    assert run1["seed"] == 1 and run1["first_solve"] == {} and run1["base_solved"] == ["toy/0"]
    assert [c["checkpoint"] for c in run0["checkpoints"]] == ["iter_000001", "iter_000002"]
    assert prog["union"]["n_solved"] == 3 and prog["n_goalposts"] == 5 and prog["k"] == 2
    assert (tmp_path / "goalpost-progress" / "progress.png").stat().st_size > 1000
    assert (tmp_path / "goalpost-progress" / "progress.svg").is_file()

    # rerun: every problem is already recorded, so no model is built at all
    skills.clear()
    again = command.run_eval(cfg, run_dirs=[r1], checkpoints=[], out=None, wiring=DEFAULT)
    assert skills == [] and [a["pass_at_k"] for a in again] == [b["pass_at_k"] for b in summaries[:3]]
    assert (r1 / "goalposts" / "progress.json").is_file()  # a single run: its own progress


def test_cumulative_curve() -> None:
    assert cumulative_curve({"a": 0, "b": 2, "c": 2, "d": 5}, [0, 1, 2, 5, 9]) == [1, 1, 3, 4, 4]


def test_cli_eval_prints_table(tmp_path: Path, monkeypatch, skills) -> None:
    gp = tmp_path / "gp.jsonl"
    write_jsonl(gp, _problems(3))
    result = CliRunner().invoke(
        app,
        ["eval", "eval.benchmark=goalposts", f"eval.path={gp}", "eval.n=2", "eval.ks=[1,2]",
         "--checkpoint", str(tmp_path / "ckpt-x"), "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "pass@1" in result.output and "ckpt-x" in result.output and "33.33%" in result.output
    assert (tmp_path / "out" / "ckpt-x__goalposts.json").is_file()
    bad = CliRunner().invoke(app, ["eval", "eval.benchmark=nope"])
    assert bad.exit_code == 1 and "unknown benchmark" in bad.output


def test_goalpost_pipeline_filters_stages_and_resumes(tmp_path: Path, monkeypatch, skills) -> None:
    gp_in = tmp_path / "train.jsonl"
    write_jsonl(gp_in, _problems())
    out = tmp_path / "goalposts.jsonl"
    cfg = load_config(None, ["goalposts.split=goalposts", f"goalposts.path={gp_in}", "goalposts.k=3"])
    kept = run_goalposts(cfg, checkpoints=[str(tmp_path / "ckpt-x")], out=out, wiring=DEFAULT)
    # base (embedded) solves toy/0, ckpt-x solves toy/1: three goalposts remain
    assert [p.problem_id for p in kept] == ["toy/2", "toy/3", "toy/4"]
    loaded = load_goalposts(str(out))
    assert [p.problem_id for p in loaded] == ["toy/2", "toy/3", "toy/4"]
    stages = loaded[0].meta["goalpost"]["stages"]
    assert [(s["stage"], s["n"], s["c"]) for s in stages] == [("stage0_base", 3, 0), ("stage1_ckpt-x", 3, 0)]
    summary = json.loads((tmp_path / "goalposts.summary.json").read_text())
    assert [(s["evaluated"], s["solved"], s["kept"]) for s in summary["stages"]] == [(5, 1, 4), (4, 1, 3)]
    assert summary["passes"]["toy/0"] == {"stage0_base": 3}
    assert summary["passes"]["toy/1"] == {"stage0_base": 0, "stage1_ckpt-x": 3}
    # the second stage only saw what the first left
    stage1 = (tmp_path / "goalposts.stages" / "stage1_ckpt-x.jsonl").read_text().splitlines()
    assert len(stage1) == 4
    # resumable per stage: nothing is regenerated
    skills.clear()
    assert [p.problem_id for p in run_goalposts(cfg, [str(tmp_path / "ckpt-x")], out, DEFAULT)] == [
        "toy/2",
        "toy/3",
        "toy/4",
    ]
    assert skills == []


def test_goalpost_files_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown builtin goalpost set"):
        load_goalposts("builtin:nope")
    bad = tmp_path / "g.jsonl"
    bad.write_text(json.dumps({"problem_id": "x", "prompt": "p", "kind": "essay"}) + "\n")
    with pytest.raises(DataError, match=r"g\.jsonl:1: unknown problem kind"):
        load_goalposts(str(bad))
    bad.write_text(json.dumps({"problem_id": "x", "kind": "check"}) + "\n")
    with pytest.raises(DataError, match=r"g\.jsonl:1: goalpost needs a string field 'prompt'"):
        load_goalposts(str(bad))
