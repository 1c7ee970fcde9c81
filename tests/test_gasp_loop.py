"""The self-play loop with a scripted fake model: every mode and ablation, records, determinism,
and crash + resume (SIGKILL mid-iteration) without lost or duplicated records."""

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
from gasp_rl.core.tasks import write_jsonl
from gasp_rl.driver import run_training
from gasp_rl.eval.datasets import load_humaneval
from gasp_rl.runs import read_records

MODES = [
    "gasp",
    "azr",
    "no_io_axis",
    "no_rejection_sampling",
    "one_step_medium",
    "one_step_hard",
    "gasp_plus_rl",
]
PROPOSAL_KEYS = {
    "id",
    "iteration",
    "phase",
    "goalpost_id",
    "axis",
    "parent_id",
    "code",
    "inputs",
    "outputs",
    "message",
    "valid",
    "rejection_reason",
    "pass_rate",
    "reward",
    "accepted",
}


@pytest.fixture(scope="module")
def goalposts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gp") / "goalposts.jsonl"
    write_jsonl(path, load_humaneval(parity="even")[:6])
    return path


def fake_cfg(tmp: Path, goalposts: Path, mode: str, *extra: str):
    return load_config(
        None,
        [
            "model.backend=fake",
            "gasp.embedder=hash",
            f"gasp.goalposts={goalposts}",
            f"run.dir={tmp / mode}",
            f"mode={mode}",
            "gasp.iterations=2",
            "gasp.lemmas_per_step=6",
            "sandbox.workers=2",
            "rlvr.problems=humaneval-train",
            "rlvr.batch_problems=2",
            "rlvr.n=2",
            *extra,
        ],
    )


def records(run: Path, stream: str) -> list[dict]:
    return list(read_records(run / f"{stream}.jsonl"))


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_writes_complete_records(tmp_path, goalposts, mode):
    run = run_training(fake_cfg(tmp_path, goalposts, mode))
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "completed" and meta["last_iteration"] == 1
    props = records(run, "proposals")
    metrics = records(run, "metrics")
    assert [m["iteration"] for m in metrics] == [0, 1]
    assert props and all(set(p) >= PROPOSAL_KEYS for p in props)
    assert len({p["id"] for p in props}) == len(props)
    # every rejected proposal carries its reason; accepted ones are valid and have a pass rate
    for p in props:
        if p["accepted"]:
            assert p["valid"] and p["pass_rate"] is not None and p["rejection_reason"] is None
        else:
            assert p["rejection_reason"], p
        if not p["valid"]:
            assert p["reward"] == -1.0  # GASP format_penalty; AZR invalid_reward (both -1)
    phases = {p["phase"] for p in props}
    if mode == "azr":
        assert phases == {"azr"} and {p["task_type"] for p in props} == {
            "induction",
            "deduction",
            "abduction",
        }
    elif mode.startswith("one_step"):
        assert phases == {"one_step"}
    else:
        assert "lemma" in phases
        lemma_ids = {p["id"] for p in props if p["phase"] == "lemma" and p["accepted"]}
        for lift in (p for p in props if p["phase"] == "lift"):
            assert lift["parent_id"] in lemma_ids  # lifts are conditioned on accepted lemmas only
    if mode == "no_io_axis":
        assert {p["axis"] for p in props if p["phase"] == "lemma"} == {"f"}
    if mode == "gasp":
        assert {p["axis"] for p in props if p["phase"] == "lemma"} == {"io", "f"}
    if mode == "no_rejection_sampling":
        assert not any((p["rejection_reason"] or "").startswith("novelty") for p in props)
    if mode == "gasp_plus_rl":
        assert all(len(m["rl"]) == 1 for m in metrics)
        assert any(s["phase"] == "rlvr" for s in records(run, "students"))
    for m in metrics:
        assert {"time", "proposals", "acceptance_rate", "student_reward", "pass_rate_hist"} <= set(m)
        assert m["proposals"]["attempted"] == sum(m["proposals"]["by_reason"].values())
    assert (run / "checkpoints" / "last" / "fake_learner.json").exists()
    assert (run / "checkpoints" / "iter_000001").is_dir()


@pytest.mark.parametrize("mode", ["gasp", "azr"])
def test_proposals_continue_the_prefill(tmp_path, goalposts, monkeypatch, mode):
    from gasp_rl.backends import fake

    chats_seen: list[list[dict]] = []
    real_generate = fake.FakeGenerator.generate

    def recording(self, prompts, params):  # type: ignore[no-untyped-def]
        # an AZR induction proposer writes inputs for a given program: no code, no prefill
        if not params.purpose.startswith("student") and params.purpose != "azr_propose_induction":
            chats_seen.extend(prompts)
        return real_generate(self, prompts, params)

    monkeypatch.setattr(fake.FakeGenerator, "generate", recording)
    prefill = "```python\ndef f("
    run = run_training(fake_cfg(tmp_path, goalposts, mode, "gasp.iterations=1"))
    assert chats_seen and all(c[-1] == {"role": "assistant", "content": prefill} for c in chats_seen)
    props = records(run, "proposals")
    coded = [p for p in props if not (mode == "azr" and p["task_type"] == "induction")]
    assert all(p["raw"].startswith(prefill) for p in coded)  # the record shows the whole answer
    assert any(p["valid"] for p in props) and any(p["rejection_reason"] == "syntax_error" for p in props)
    chats_seen.clear()
    run_training(fake_cfg(tmp_path / "none", goalposts, mode, "gasp.iterations=1", "gasp.proposal_prefill="))
    assert chats_seen and all(c[-1]["role"] == "user" for c in chats_seen)


def test_azr_rewards_and_induction_proposals_follow_the_azr_code(tmp_path, goalposts):
    """AZR mode: proposer -1 / -0.5 / 1 - p, solver 1 / -0.5 / -1, and induction proposals that
    write 10 inputs + a message for a buffer program, 5 shown and 5 hidden."""
    run = run_training(fake_cfg(tmp_path, goalposts, "azr", "gasp.iterations=1"))
    props = records(run, "proposals")
    for p in props:
        if not p["valid"]:
            assert p["reward"] == -1.0
        elif p["pass_rate"] in (0.0, 1.0):
            assert p["reward"] == -0.5
        else:
            assert p["reward"] == pytest.approx(1 - p["pass_rate"])
    induction = [p for p in props if p["task_type"] == "induction" and p["valid"]]
    assert induction and all(len(p["inputs"]) == 10 and p["message"] for p in induction)
    assert all(p["parent_id"] for p in induction)  # the buffer program it was given
    students = [s for s in records(run, "students") if s["source_phase"] == "azr"]
    reward_of = {"correct": 1.0, "wrong": -0.5, "format_error": -1.0}
    assert students and all(s["rewards"] == [reward_of[o] for o in s["outcomes"]] for s in students)
    assert {o for s in students for o in s["outcomes"]} >= {"correct", "wrong"}


def test_azr_reference_count_is_a_config_field(tmp_path, goalposts, monkeypatch):
    from gasp_rl.core import prompts

    seen: dict[str, set[int]] = {}
    real = prompts.azr_proposer_prompt

    def recording(task_type, references, n_inputs=5):  # type: ignore[no-untyped-def]
        seen.setdefault(task_type, set()).add(len(references))
        return real(task_type, references, n_inputs)

    monkeypatch.setattr(prompts, "azr_proposer_prompt", recording)
    run_training(fake_cfg(tmp_path, goalposts, "azr", "gasp.iterations=1"))
    assert seen == {"induction": {1}, "deduction": {6}, "abduction": {6}}  # AZR io_n = 6
    seen.clear()
    run_training(fake_cfg(tmp_path / "b", goalposts, "azr", "gasp.iterations=1", "azr.n_references=2"))
    assert seen["deduction"] == {2} and seen["induction"] == {1}


def test_novelty_filter_rejects_duplicates(tmp_path, goalposts):
    run = run_training(
        fake_cfg(tmp_path, goalposts, "gasp", "gasp.novelty_threshold=0.5", "gasp.iterations=1")
    )
    reasons = {p["rejection_reason"] for p in records(run, "proposals")}
    assert reasons & {"novelty_question", "novelty_code"}


def test_same_seed_same_proposals(tmp_path, goalposts):
    a = run_training(fake_cfg(tmp_path / "a", goalposts, "gasp"))
    b = run_training(fake_cfg(tmp_path / "b", goalposts, "gasp"))
    strip = lambda rs: [{k: v for k, v in r.items()} for r in rs]  # noqa: E731
    assert strip(records(a, "proposals")) == strip(records(b, "proposals"))
    c = run_training(fake_cfg(tmp_path / "c", goalposts, "gasp", "run.seed=1"))
    assert [r["raw"] for r in records(c, "proposals")] != [r["raw"] for r in records(a, "proposals")]


def test_existing_run_dir_is_refused(tmp_path, goalposts):
    from gasp_rl.errors import GaspError

    cfg = fake_cfg(tmp_path, goalposts, "gasp", "gasp.iterations=1")
    run_training(cfg)
    with pytest.raises(GaspError, match="--resume"):
        run_training(cfg)


def test_sigkill_mid_iteration_then_resume(tmp_path, goalposts):
    """Kill -9 while an iteration is in flight; resume; records equal an uninterrupted run's."""
    ref = run_training(fake_cfg(tmp_path / "ref", goalposts, "gasp", "gasp.iterations=4"))
    run_dir = tmp_path / "killed" / "gasp"
    args = [
        "model.backend=fake",
        "gasp.embedder=hash",
        f"gasp.goalposts={goalposts}",
        f"run.dir={run_dir}",
        "gasp.iterations=4",
        "gasp.lemmas_per_step=6",
        "sandbox.workers=2",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gasp_rl.cli", "train", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # wait until iteration 1 is committed and iteration 2 has started writing records
    deadline = time.time() + 120
    while time.time() < deadline:
        meta = run_dir / "run.json"
        committed = meta.exists() and json.loads(meta.read_text()).get("last_iteration", -1) >= 1
        if committed and any(r.get("iteration") == 2 for r in read_records(run_dir / "proposals.jsonl")):
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = json.loads((run_dir / "run.json").read_text())["last_iteration"]
    assert killed_at < 3, "the run finished before it could be killed"
    res = subprocess.run(
        [sys.executable, "-m", "gasp_rl.cli", "train", "--resume", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for stream in ("proposals", "students"):
        got, want = records(run_dir, stream), records(ref, stream)
        assert [r["iteration"] for r in got] == [r["iteration"] for r in want]
        ids = [r.get("id") or (r["source_id"], r["phase"]) for r in got]
        assert ids == [r.get("id") or (r["source_id"], r["phase"]) for r in want]
        assert got == want
    assert [m["iteration"] for m in records(run_dir, "metrics")] == [0, 1, 2, 3]


def test_progress_line_says_why_proposals_were_rejected():
    from gasp_rl.algorithms.loop import _progress_line

    m = {
        "proposals": {
            "accepted": 1,
            "attempted": 4,
            "by_reason": {"accepted": 1, "syntax_error": 2, "no_inputs": 1},
        },
        "student_reward": {"all": 0.25},
    }
    assert _progress_line(0, 2, m, 10.04, 9.6) == (
        "iteration 1/2: accepted 1/4 proposals (rejected: syntax_error 2, no_inputs 1), "
        "student reward 0.25, 10.0s (ETA 10s)"
    )
    m["proposals"]["by_reason"] = {"accepted": 4}
    assert "rejected" not in _progress_line(0, 2, m, 1.0, 0.0)


def test_resume_can_extend_a_finished_run_but_not_change_what_defines_it(tmp_path, goalposts):
    from typer.testing import CliRunner

    from gasp_rl.cli import app

    ref = run_training(fake_cfg(tmp_path / "ref", goalposts, "gasp", "gasp.iterations=3"))
    run = run_training(fake_cfg(tmp_path / "short", goalposts, "gasp", "gasp.iterations=2"))
    cli = CliRunner()
    refused = cli.invoke(
        app, ["train", "--resume", str(run), "model.name_or_path=other", "gasp.iterations=3"]
    )
    assert refused.exit_code != 0 and "model.name_or_path cannot change" in refused.output
    refused = cli.invoke(app, ["train", "--resume", str(run), "configs/gasp_cpu.yaml"])
    assert refused.exit_code == 2 and "its own config.yaml" in refused.output
    assert [m["iteration"] for m in records(run, "metrics")] == [0, 1]  # refusals changed nothing

    done = cli.invoke(app, ["train", "--resume", str(run), "gasp.iterations=3"])
    assert done.exit_code == 0, done.output
    assert load_config(run / "config.yaml").gasp.iterations == 3
    assert json.loads((run / "run.json").read_text())["last_iteration"] == 2
    for stream in ("proposals", "students", "metrics"):
        strip = lambda rs: [{k: v for k, v in r.items() if k != "time"} for r in rs]  # noqa: E731
        assert strip(records(run, stream)) == strip(records(ref, stream)), stream


def test_teacher_references_show_accepted_proposals_and_survive_a_resume(tmp_path, goalposts, monkeypatch):
    """gasp.teacher_references (beyond the paper): off, lemma and lift prompts are the paper's; on,
    they show accepted proposals of earlier steps, and a resumed run shows the same ones."""
    from typer.testing import CliRunner

    from gasp_rl.cli import app
    from gasp_rl.core import prompts

    shown: list[tuple[str, tuple[str, ...]]] = []
    for name in ("lemma_prompt", "lift_prompt"):
        real = getattr(prompts, name)

        def recording(subject, axis, n_inputs=5, references=(), _real=real, _name=name):  # type: ignore[no-untyped-def]
            shown.append((_name, tuple(t.code for t in references)))
            chat = _real(subject, axis, n_inputs, references)
            question = [m["content"] for m in chat if m["role"] == "user"][-1]
            assert ("Tasks already written" in question) == bool(references)
            return chat

        monkeypatch.setattr(prompts, name, recording)
    run_training(fake_cfg(tmp_path / "off", goalposts, "gasp", "gasp.iterations=3"))
    assert shown and not any(refs for _, refs in shown)

    shown.clear()
    ref = run_training(
        fake_cfg(tmp_path / "ref", goalposts, "gasp", "gasp.iterations=3", "gasp.teacher_references=2")
    )
    accepted = {p["code"] for p in records(ref, "proposals") if p["accepted"]}
    with_refs = [refs for _, refs in shown if refs]
    assert with_refs and all(len(refs) <= 2 and set(refs) <= accepted for refs in with_refs)
    assert {name for name, refs in shown if refs} == {"lemma_prompt", "lift_prompt"}
    n_last = len([r for r in records(ref, "proposals") if r["iteration"] == 2])
    assert n_last > 0
    last_ref = shown[-n_last:]

    run = run_training(
        fake_cfg(tmp_path / "short", goalposts, "gasp", "gasp.iterations=2", "gasp.teacher_references=2")
    )
    shown.clear()
    res = CliRunner().invoke(app, ["train", "--resume", str(run), "gasp.iterations=3"])
    assert res.exit_code == 0, res.output
    assert shown == last_ref and any(refs for _, refs in shown)
    assert records(run, "proposals") == records(ref, "proposals")
