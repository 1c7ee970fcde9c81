"""One grading path (issue 15 item 9): the same answer gets the same verdict from RLVR's reward,
the verl reward adapter and ``gasp eval``, per-benchmark CPU budgets and input-size limit included."""

from __future__ import annotations

import pytest

from gasp_rl.algorithms import rlvr
from gasp_rl.config import Config, EvalConfig, SandboxConfig
from gasp_rl.core.tasks import Problem
from gasp_rl.core.tasks import TestCase as Case
from gasp_rl.eval import command
from gasp_rl.eval.grading import grade_answers, grading_limits
from gasp_rl.eval.runner import EvalRunner, EvalSettings
from gasp_rl.scale import verl_adapter
from gasp_rl.seams import Chat, Completion, SamplingParams
from gasp_rl.wiring import DEFAULT, make_executor

# A small sandbox budget and larger benchmark budgets, so the difference shows in a second of CPU.
CFG = Config(sandbox=SandboxConfig(cpu_time=0.5), eval=EvalConfig(plus_cpu_time=5.0, test_cpu_time=1.0))

BURN = "import time\n_t0 = time.process_time()\nwhile time.process_time() - _t0 < {s}:\n    pass\n"

# EvalPlus-style (source *-plus): correct, but needs 1 s of CPU (> sandbox.cpu_time, < plus_cpu_time)
SLOW_PLUS = Problem(
    problem_id="HumanEval/slow",
    prompt='def ident(n):\n    """Return n."""\n',
    kind="check",
    entry_point="ident",
    check_code="def check(candidate):\n    assert candidate(3) == 3\n",
    source="humaneval-plus",
)
SLOW_PLUS_ANSWER = (
    "```python\ndef ident(n):\n"
    + "".join("    " + line + "\n" for line in BURN.format(s=1.0).splitlines())
    + "    return n\n```"
)

# LiveCodeBench functional: 3 tests of 0.4 s each (> sandbox.cpu_time in all, < test_cpu_time each)
SLOW_FUNCTIONAL = Problem(
    problem_id="lcb/slow-functional",
    prompt="Return x.",
    kind="functional",
    entry_point="same",
    public_tests=[Case("1", "1", "functional")],
    private_tests=[Case("2", "2", "functional"), Case("3", "3", "functional")],
    source="livecodebench",
)
SLOW_FUNCTIONAL_ANSWER = (
    "```python\nimport time\nclass Solution:\n    def same(self, x):\n        t0 = time.process_time()\n"
    "        while time.process_time() - t0 < 0.4:\n            pass\n        return x\n```"
)

# LiveCodeBench functional with a 1.2 MB test input (the benchmark's own, trusted data)
BIG = "x" * 1_200_000
BIG_INPUT = Problem(
    problem_id="lcb/big-input",
    prompt="Return the length of s.",
    kind="functional",
    entry_point="size",
    public_tests=[Case(repr(BIG), str(len(BIG)), "functional")],
    source="livecodebench",
)
BIG_ANSWER = "```python\nclass Solution:\n    def size(self, s):\n        return len(s)\n```"

CASES = [(SLOW_PLUS, SLOW_PLUS_ANSWER), (SLOW_FUNCTIONAL, SLOW_FUNCTIONAL_ANSWER), (BIG_INPUT, BIG_ANSWER)]


class _Answers:
    """A generator that answers every prompt with the answer of its problem."""

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        out = []
        for chat in prompts:
            text = chat[-1]["content"]
            [answer] = [a for p, a in CASES if p.prompt in text]
            out.append([Completion(answer)] * params.n)
        return out


@pytest.fixture(scope="module")
def verdicts() -> dict[str, list[tuple[bool, str]]]:
    problems = [p for p, _ in CASES]
    out: dict[str, list[tuple[bool, str]]] = {}
    # training: the executor gasp rlvr / gasp train build (build_seams -> make_executor)
    with make_executor(CFG) as ex:
        graded = rlvr.grade_completions(ex, problems, [[Completion(a)] for _, a in CASES], CFG)
        out["rlvr"] = [(g.reward == 1.0, g.status) for [g] in graded]
        vg = verl_adapter.grade_responses(
            [a for _, a in CASES], [verl_adapter.problem_spec(p).to_json() for p in problems], ex, CFG
        )
        out["verl"] = [(g.score == 1.0, g.status) for g in vg]
        out["grade_answers"] = [(g.passed, g.status) for g in grade_answers(ex, CASES, CFG)]
    # gasp eval: its executor and its runner, as command.evaluate_with builds them
    ex2 = command.build_executor(CFG, problems, DEFAULT)
    try:
        runner = EvalRunner(
            _Answers(), ex2, EvalSettings(n=1, ks=(1,), greedy=False), limits_for=command.grading_limits(CFG)
        )
        outcome = runner.run(problems)
        out["eval"] = [(r.samples[0]["passed"], r.samples[0]["status"]) for r in outcome.records]
    finally:
        ex2.close()
    return out


def test_training_and_eval_give_the_same_verdicts(verdicts: dict[str, list[tuple[bool, str]]]) -> None:
    assert verdicts["eval"] == [(True, "passed")] * len(CASES), verdicts
    for path in ("rlvr", "verl", "grade_answers"):
        assert verdicts[path] == verdicts["eval"], (path, verdicts)


def test_grading_limits_carry_the_benchmark_budgets_and_input_room() -> None:
    lim = grading_limits(CFG)
    assert lim(SLOW_PLUS).cpu_time == 5.0
    assert lim(SLOW_FUNCTIONAL).cpu_time == 3.0  # test_cpu_time per test, all tests in one process
    assert lim(BIG_INPUT).max_input_bytes > 1_200_000 + CFG.sandbox.max_input_bytes - 1
    plain = Problem(problem_id="HumanEval/0", prompt="", kind="check", entry_point="f", check_code="")
    assert lim(plain).cpu_time == CFG.sandbox.cpu_time  # HumanEval keeps the sandbox's budget
