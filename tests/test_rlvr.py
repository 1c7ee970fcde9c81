"""Real-data RLVR (GRPO): advantages per group, zero-variance handling, grading in the sandbox,
the students / metrics records, checkpoints and resume -- all with a scripted fake model."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest

from gasp_rl import driver
from gasp_rl.algorithms import rlvr
from gasp_rl.config import Config, SandboxConfig, load_config
from gasp_rl.core.seeding import derive_seed
from gasp_rl.core.tasks import Problem, write_jsonl
from gasp_rl.core.tasks import TestCase as Case
from gasp_rl.errors import DataError, GaspError
from gasp_rl.eval.grading import Grade
from gasp_rl.runs import RunStore
from gasp_rl.sandbox import LocalExecutor
from gasp_rl.seams import Chat, Completion, PolicySample, SamplingParams
from gasp_rl.wiring import Wiring

# ------------------------------------------------------------------ fixtures: problems and a fake model

ADD = Problem(
    problem_id="t/add",
    prompt='def add(a, b):\n    """Return a + b."""\n',
    kind="check",
    entry_point="add",
    check_code="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-4, 4) == 0\n",
)
DOUBLE = Problem(
    problem_id="t/double",
    prompt="Read an integer n and print 2 * n.",
    kind="stdin",
    public_tests=[Case("2\n", "4\n")],
    private_tests=[Case("5\n", "10\n"), Case("0\n", "0\n")],
)
INC = Problem(
    problem_id="t/inc",
    prompt="Return x + 1.",
    kind="functional",
    entry_point="inc",
    public_tests=[Case("1", "2", "functional")],
    private_tests=[Case("-1", "0", "functional")],
)
PROBLEMS = [ADD, DOUBLE, INC]


def fenced(code: str) -> str:
    return f"Here you go:\n```python\n{code}\n```"


# per problem, the scripted answers of samples 0..n-1 (cycled)
SCRIPT = {
    # mixed group: rewards 1, 0, 1, 0 (a wrong answer and an answer with no code at all)
    "t/add": [
        fenced("def add(a, b):\n    return a + b"),
        fenced("def add(a, b):\n    return a - b"),
        fenced("def add(a, b):\n    return b + a"),
        "I do not know.",
    ],
    # passes the public test only (prints 4 whatever the input): all wrong -> zero variance
    "t/double": [fenced("print(4)")],
    # all correct -> zero variance (all pass)
    "t/inc": [fenced("def inc(x):\n    return x + 1")],
}


@dataclass
class ScriptedGenerator:
    """Answers each problem with its SCRIPT; records the sampling params it was called with."""

    calls: list[SamplingParams] = field(default_factory=list)
    prompts: list[Chat] = field(default_factory=list)

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append(params)
        out = []
        for chat in prompts:
            self.prompts.append(chat)
            text = "\n".join(m["content"] for m in chat)
            pid = next(p.problem_id for p in PROBLEMS if p.prompt.strip() in text)
            answers = SCRIPT[pid]
            group = []
            for i in range(params.n):
                body = answers[i % len(answers)]
                group.append(
                    Completion(
                        text=body, token_ids=list(range(1, 2 + len(body) % 5)), prompt_token_ids=[7, 8, 9]
                    )
                )
            out.append(group)
        return out


@dataclass
class RecordingLearner:
    """Keeps every batch it is asked to learn from; "weights" = number of updates (saved as JSON)."""

    batches: list[list[PolicySample]] = field(default_factory=list)

    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        self.batches.append(list(samples))
        return {"loss": -sum(float(s.advantage) for s in samples), "samples": float(len(samples))}

    def save(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "learner.json").write_text(json.dumps({"updates": len(self.batches)}))

    def load(self, path: str | Path) -> None:
        n = json.loads((Path(path) / "learner.json").read_text())["updates"]
        self.batches = [[] for _ in range(n)]


@pytest.fixture(scope="module")
def executor():
    with LocalExecutor(SandboxConfig(workers=2, cpu_time=2.0)) as ex:
        yield ex


def make_cfg(tmp_path: Path, *overrides: str) -> Config:
    return load_config(
        None,
        [
            f"run.dir={tmp_path}/run",
            "rlvr.batch_problems=3",
            "rlvr.n=4",
            "rlvr.max_new_tokens=64",
            *overrides,
        ],
    )


# ------------------------------------------------------------------ pure pieces


def test_grpo_group_advantages_by_hand():
    rewards = [[1, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]
    g = rlvr.grpo_group_advantages(rewards, scale_by_std=True, drop_zero_variance=True, eps=1e-12)
    # group 0: mean 0.25, sample std sqrt(0.25) = 0.5
    assert g.advantages[0] == pytest.approx([1.5, -0.5, -0.5, -0.5])
    # group 1: mean 0.5, sample std sqrt(1/3)
    s = (1 / 3) ** 0.5
    assert g.advantages[1] == pytest.approx([0.5 / s, 0.5 / s, -0.5 / s, -0.5 / s])
    assert g.advantages[2] == [0.0] * 4 and g.advantages[3] == [0.0] * 4
    assert g.zero_variance == [False, False, True, True]
    assert g.kept == [True, True, False, False]


def test_grpo_groups_are_independent_and_unscaled_option():
    # the same rewards in another group do not change a group's advantages (normalised per group)
    alone = rlvr.grpo_group_advantages([[1, 0, 0, 0]], scale_by_std=False)
    mixed = rlvr.grpo_group_advantages([[1, 1, 1, 0], [1, 0, 0, 0]], scale_by_std=False)
    assert alone.advantages[0] == pytest.approx([0.75, -0.25, -0.25, -0.25])
    assert mixed.advantages[1] == pytest.approx(alone.advantages[0])
    assert mixed.advantages[0] == pytest.approx([0.25, 0.25, 0.25, -0.75])


def test_zero_variance_groups_kept_when_configured():
    g = rlvr.grpo_group_advantages([[0, 0], [1, 0]], drop_zero_variance=False)
    assert g.zero_variance == [True, False]
    assert g.kept == [True, True]
    assert g.advantages[0] == [0.0, 0.0]


def test_problem_sampling_uniform_and_seeded():
    rng = random.Random(0)
    picks = rlvr.sample_problem_indices(10, 4, rng)
    assert len(set(picks)) == 4 and all(0 <= i < 10 for i in picks)
    assert rlvr.sample_problem_indices(10, 4, random.Random(0)) == picks
    assert len(rlvr.sample_problem_indices(2, 5, rng)) == 5  # with replacement when the set is small
    counts = [0] * 5
    r = random.Random(1)
    for _ in range(4000):
        for i in rlvr.sample_problem_indices(5, 2, r):
            counts[i] += 1
    assert max(counts) - min(counts) < 0.1 * 1600  # each index about 1600 times


def test_derive_seed_depends_on_every_part():
    s = derive_seed(0, "rlvr", 3, 0)
    assert s == derive_seed(0, "rlvr", 3, 0)
    assert (
        len(
            {
                s,
                derive_seed(0, "rlvr", 3, 1),
                derive_seed(0, "rlvr", 4, 0),
                derive_seed(1, "rlvr", 3, 0),
            }
        )
        == 4
    )
    assert 0 <= s < 2**62


# ------------------------------------------------------------------ one update, graded in the sandbox


def test_grading_rewards_all_public_and_private_tests(executor):
    gen = ScriptedGenerator()
    completions = gen.generate([rlvr.problem_prompt(p) for p in PROBLEMS], SamplingParams(n=4))
    graded = rlvr.grade_completions(executor, PROBLEMS, completions)
    assert [x.reward for x in graded[0]] == [1.0, 0.0, 1.0, 0.0]
    assert graded[0][1].status == "runtime_error" and graded[0][3].status == "no_code"  # failed assert
    # print(4) passes the public test of DOUBLE but not its private ones
    assert [x.reward for x in graded[1]] == [0.0] * 4 and graded[1][0].status == "wrong_answer"
    assert [x.reward for x in graded[2]] == [1.0] * 4


def _step(cfg: Config, executor, store=None, iteration: int = 0):
    gen, learner = ScriptedGenerator(), RecordingLearner()
    stepper = rlvr.RLVRStepper(cfg, gen, learner, executor, PROBLEMS)
    return stepper, gen, learner, stepper.step(iteration, store)


def test_step_drops_zero_variance_groups(tmp_path, executor):
    cfg = make_cfg(tmp_path, "rlvr.drop_zero_variance=true")  # the default keeps them (as verl)
    store = RunStore.create(cfg, "rlvr")
    _, gen, learner, m = _step(cfg, executor, store)
    assert gen.calls[0].n == 4 and gen.calls[0].temperature == 1.0 and gen.calls[0].max_new_tokens == 64
    assert len(learner.batches) == 1
    batch = learner.batches[0]
    # only the mixed ADD group reaches the learner, with its GRPO advantages in sample order
    assert {s.group for s in batch} == {"rlvr|t/add"}
    assert [s.advantage for s in batch] == pytest.approx([0.866, -0.866, 0.866, -0.866], abs=1e-3)
    assert all(s.prompt_token_ids == [7, 8, 9] and s.completion_token_ids for s in batch)
    assert m["reward_mean"] == pytest.approx(6 / 12)
    assert (
        m["groups_zero_variance"] == 2
        and m["groups_all_pass"] == 1
        and m["groups_trained"] == 1
        and m["groups_mixed"] == 1
    )
    assert m["problems_solved"] == 2 and m["samples_trained"] == 4
    assert m["statuses"] == {"passed": 6, "runtime_error": 1, "wrong_answer": 4, "no_code": 1}

    recs = {r["source_id"]: r for r in store.records("students")}
    assert set(recs) == {"t/add", "t/double", "t/inc"}
    add = recs["t/add"]
    assert add["phase"] == "rlvr" and add["iteration"] == 0 and add["task_type"] == "real"
    assert add["rewards"] == [1.0, 0.0, 1.0, 0.0] and add["mean_reward"] == 0.5 and add["trained"]
    assert "return a + b" in add["example"] and add["example_reward"] == 1.0
    assert recs["t/double"]["zero_variance"] and not recs["t/double"]["trained"]
    store.close()


def test_step_keeps_zero_variance_groups_with_zero_advantage(tmp_path, executor):
    cfg = make_cfg(tmp_path, "rlvr.scale_by_std=false")  # the default: zero-variance groups stay in
    _, _, learner, m = _step(cfg, executor)
    batch = learner.batches[0]
    assert len(batch) == 12 and m["samples_trained"] == 12
    by_group: dict[str, list[float]] = {}
    for s in batch:
        by_group.setdefault(s.group, []).append(float(s.advantage))
    assert by_group["rlvr|t/add"] == pytest.approx([0.5, -0.5, 0.5, -0.5])  # centred, not scaled
    assert by_group["rlvr|t/double"] == [0.0] * 4 and by_group["rlvr|t/inc"] == [0.0] * 4


def test_step_without_signal_skips_the_learner(tmp_path, executor):
    cfg = make_cfg(tmp_path, "rlvr.batch_problems=2", "rlvr.drop_zero_variance=true")
    gen, learner = ScriptedGenerator(), RecordingLearner()
    stepper = rlvr.RLVRStepper(cfg, gen, learner, executor, [DOUBLE, INC])
    m = stepper.step(0)
    assert learner.batches == [] and m["learner"]["skipped"] == 1.0 and m["samples_trained"] == 0


def test_updates_are_reproducible_and_distinct(tmp_path, executor):
    cfg = make_cfg(tmp_path, "rlvr.batch_problems=1")
    a, gen_a, _, _ = _step(cfg, executor, iteration=5)
    a.step(5)  # a second update in the same iteration (gasp_plus_rl's m > 1) gets other randomness
    b, gen_b, _, _ = _step(cfg, executor, iteration=5)
    assert gen_a.calls[0].seed == gen_b.calls[0].seed
    assert gen_a.prompts[0] == gen_b.prompts[0]
    assert gen_a.calls[1].seed != gen_a.calls[0].seed
    other = rlvr.RLVRStepper(
        cfg, ScriptedGenerator(), RecordingLearner(), executor, PROBLEMS, rng=random.Random(9)
    )
    assert other.base_seed != a.base_seed


def test_default_prompt_is_the_evaluation_prompt():
    from gasp_rl.eval.runner import eval_prompt

    for p in PROBLEMS:
        assert rlvr.problem_prompt(p) == eval_prompt(p)
    assert "def add(a, b):" in rlvr.problem_prompt(ADD)[-1]["content"]
    assert "Read an integer" in rlvr.problem_prompt(DOUBLE)[-1]["content"]


# ------------------------------------------------------------------ problems


def test_load_problems_from_benchmark_and_file(tmp_path):
    cfg = load_config(None, ["rlvr.limit=3"])
    probs = rlvr.load_rlvr_problems(cfg)
    assert [p.problem_id for p in probs] == ["HumanEval/0", "HumanEval/2", "HumanEval/4"]
    f = tmp_path / "p.jsonl"
    write_jsonl(f, PROBLEMS)
    cfg = load_config(None, [f"rlvr.problems={f}"])
    assert [p.problem_id for p in rlvr.load_rlvr_problems(cfg)] == ["t/add", "t/double", "t/inc"]
    (tmp_path / "bad.jsonl").write_text('{"problem_id": "x"}\n')
    with pytest.raises(DataError):
        rlvr.load_rlvr_problems(load_config(None, [f"rlvr.problems={tmp_path / 'bad.jsonl'}"]))
    with pytest.raises(DataError, match="neither a benchmark"):
        rlvr.load_rlvr_problems(load_config(None, ["rlvr.problems=nope"]))


# ------------------------------------------------------------------ the run: records, checkpoints, resume


class Crash(Exception):
    pass


@pytest.fixture
def fake_run(monkeypatch, executor):
    """Wire run_rlvr to the scripted model, the shared sandbox and the three test problems."""
    learners: list[RecordingLearner] = []
    state = {"crash_at": None}

    class ScriptedWiring(Wiring):
        def policy(self, cfg, name_or_path=None):
            learners.append(RecordingLearner())
            return SimpleNamespace(generator=ScriptedGenerator(), learner=learners[-1])

        def executor(self, cfg):
            return SimpleNamespace(run=executor.run, close=lambda: None)  # the shared sandbox stays up

        def embedder(self, cfg, policy):
            return None

    real_step = rlvr.RLVRStepper.step

    def step(self, iteration, store=None):
        if iteration == state["crash_at"]:
            raise Crash
        return real_step(self, iteration, store)

    monkeypatch.setattr(rlvr, "load_rlvr_problems", lambda cfg: PROBLEMS)
    monkeypatch.setattr(rlvr.RLVRStepper, "step", step)
    monkeypatch.setattr(driver, "DEFAULT", ScriptedWiring())
    return learners, state


def run_rlvr(cfg, resume=None):
    return driver.run_rlvr(cfg, resume=resume, wiring=driver.DEFAULT)


def _strip_time(records):
    return [
        {k: v for k, v in r.items() if k not in ("time", "rl")} | {"ids": r["rl"]["problem_ids"]}
        for r in records
    ]


def test_run_writes_records_and_checkpoints(tmp_path, fake_run, capsys):
    learners, _ = fake_run
    cfg = make_cfg(tmp_path, "rlvr.updates=3", "rlvr.checkpoint_every=2", "rlvr.batch_problems=2")
    path = run_rlvr(cfg)
    out = capsys.readouterr().out
    assert "update 3/3 reward" in out  # plain lines when not a TTY
    meta = json.loads((path / "run.json").read_text())
    assert meta["status"] == "completed" and meta["last_iteration"] == 2 and meta["mode"] == "rlvr"
    metrics = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    assert all(
        m["mode"] == "rlvr" and m["rl"]["n_problems"] == 2 and "reward_mean" in m["rl"] for m in metrics
    )
    students = [json.loads(line) for line in (path / "students.jsonl").read_text().splitlines()]
    assert len(students) == 6 and {s["phase"] for s in students} == {"rlvr"}
    ckpts = sorted(p.name for p in (path / "checkpoints").iterdir())
    assert ckpts == ["iter_000001", "iter_000002", "last"]
    state = json.loads((path / "checkpoints" / "last" / "state.json").read_text())
    assert state == {"mode": "rlvr", "iteration": 2, "algorithm": {}}
    # kept checkpoints hold the weights only, hard-linked (no second copy on disk)
    kept = path / "checkpoints" / "iter_000002"
    assert sorted(f.name for f in kept.iterdir()) == ["learner.json"]
    assert (kept / "learner.json").stat().st_ino == (
        path / "checkpoints" / "last" / "learner.json"
    ).stat().st_ino
    assert json.loads((path / "checkpoints" / "last" / "learner.json").read_text())["updates"] == len(
        learners[0].batches
    )


def test_resume_after_crash_reproduces_the_uninterrupted_run(tmp_path, fake_run):
    _, state = fake_run
    full = run_rlvr(make_cfg(tmp_path / "a", "rlvr.updates=4", "rlvr.batch_problems=1"))

    state["crash_at"] = 2
    cfg = make_cfg(tmp_path / "b", "rlvr.updates=4", "rlvr.batch_problems=1")
    with pytest.raises(Crash):
        run_rlvr(cfg)
    crashed = tmp_path / "b" / "run"
    assert json.loads((crashed / "run.json").read_text())["last_iteration"] == 1
    # a torn record of the update in flight must not survive the resume
    with open(crashed / "students.jsonl", "a") as fh:
        fh.write(json.dumps({"iteration": 2, "phase": "rlvr"}) + "\n")
    state["crash_at"] = None
    run_rlvr(cfg, resume=crashed)

    def load(p, stream):
        return [json.loads(line) for line in (p / f"{stream}.jsonl").read_text().splitlines()]

    assert _strip_time(load(crashed, "metrics")) == _strip_time(load(full, "metrics"))
    assert load(crashed, "students") == load(full, "students")
    assert json.loads((crashed / "run.json").read_text())["status"] == "completed"
    # resuming a finished run is a no-op
    assert run_rlvr(cfg, resume=crashed) == crashed
    assert len(load(crashed, "metrics")) == 4


def test_bad_problem_set_fails_before_making_a_run_directory(tmp_path):
    cfg = make_cfg(tmp_path, "rlvr.problems=nope")
    with pytest.raises(DataError, match="neither a benchmark"):
        run_rlvr(cfg)
    assert not (tmp_path / "run").exists()


def test_resume_refuses_other_run_kinds(tmp_path):
    cfg = make_cfg(tmp_path)
    store = RunStore.create(cfg, "train")
    store.close()
    with pytest.raises(GaspError, match="not an rlvr run"):
        run_rlvr(cfg, resume=store.path)


# ------------------------------------------------------------------ GASP + real-data RL: the alternation schedule


def test_gasp_plus_rl_alternates_iterations_and_rl_updates(tmp_path, monkeypatch):
    from gasp_rl.backends import fake
    from gasp_rl.driver import run_training
    from gasp_rl.eval.datasets import load_benchmark

    built = []
    real_build = fake.build_fake_policy

    def build(seed=0):
        policy = real_build(seed)
        trained: list[str] = []
        update = policy.learner.update

        def recording_update(samples):
            trained.append("rl" if samples[0].group.startswith("rlvr|") else "selfplay")
            return update(samples)

        policy.learner.update = recording_update
        built.append((policy, trained))
        return policy

    monkeypatch.setattr(fake, "build_fake_policy", build)
    goalposts = tmp_path / "goalposts.jsonl"
    write_jsonl(goalposts, load_benchmark("humaneval-train", limit=4))
    m, iters, batch = 2, 3, 2
    cfg = load_config(
        None,
        [
            "mode=gasp_plus_rl",
            "model.backend=fake",
            "gasp.embedder=hash",
            f"gasp.goalposts={goalposts}",
            f"gasp.iterations={iters}",
            f"gasp.rl_updates_per_iteration={m}",
            f"rlvr.batch_problems={batch}",
            "rlvr.n=4",
            "rlvr.drop_zero_variance=false",  # the fake never solves a real problem: keep its groups
            f"run.dir={tmp_path}/run",
        ],
    )
    path = run_training(cfg)
    policy, trained = built[0]

    # generation: each iteration's self-play calls, then exactly m x batch RLVR prompts
    purposes = [p for p, _n in policy.generator.calls]
    blocks: list[tuple[bool, int]] = []
    for p in purposes:
        is_rl = p == "rlvr"
        if blocks and blocks[-1][0] == is_rl:
            blocks[-1] = (is_rl, blocks[-1][1] + 1)
        else:
            blocks.append((is_rl, 1))
    assert [b[0] for b in blocks] == [False, True] * iters
    assert all(count == m * batch for is_rl, count in blocks if is_rl)
    # learning: the m RL updates come after the iteration's self-play updates (if it made any:
    # a step whose rewards are all equal carries no gradient), every iteration
    assert "selfplay" in trained
    assert re.fullmatch(f"((s)*(r){{{m}}}){{{iters}}}", "".join(k[0] for k in trained)), trained

    metrics = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [len(r["rl"]) for r in metrics] == [m] * iters  # logged separately, one entry per update
    assert all(u["update"] == k and u["n_problems"] == batch for r in metrics for k, u in enumerate(r["rl"]))
    students = [json.loads(line) for line in (path / "students.jsonl").read_text().splitlines()]
    rl_recs = [s for s in students if s["phase"] == "rlvr"]
    assert [(s["iteration"], s["update"]) for s in rl_recs] == [
        (it, k) for it in range(iters) for k in range(m) for _ in range(batch)
    ]


# ------------------------------------------------------------------ the real embedded model (slow)


@pytest.mark.slow
def test_one_update_on_the_embedded_model(tmp_path, monkeypatch):
    """HF completions -> GRPO samples -> one real clipped step.  The 135M model almost never solves
    a real problem, so the grader is scripted (first completion of each group passes) to force a
    mixed group; what is checked is the wiring from generation to the learner."""
    import math

    import torch

    from gasp_rl.backends.factory import build_policy

    cfg = make_cfg(tmp_path, "rlvr.batch_problems=1", "rlvr.n=2", "rlvr.max_new_tokens=16", "trainer.lr=1e-4")

    def scripted_grade(executor, problems, completions, cfg=None):
        return [[rlvr.Graded(c, Grade(i == 0, "scripted")) for i, c in enumerate(g)] for g in completions]

    monkeypatch.setattr(rlvr, "grade_completions", scripted_grade)
    with build_policy(cfg) as policy:
        weight = policy.learner.model.get_output_embeddings().weight
        before = weight.detach().clone()
        stepper = rlvr.RLVRStepper(cfg, policy.generator, policy.learner, None, [ADD])
        m = stepper.step(0)
        assert m["n_completions"] == 2 and m["groups_trained"] == 1 and m["samples_trained"] == 2
        assert 0 < m["completion_tokens"] <= 32
        assert math.isfinite(m["learner"]["loss"]) and m["learner"]["samples_trained"] == 2.0
        assert not torch.equal(before, weight.detach())  # the step changed the weights
