"""Sol-Ver pieces: problem synthesis parsing and de-duplication, unit-test extraction, the batched
pass matrix in the real sandbox, selection -> SFT / DPO rows, test-generation accuracy, and one
whole iteration (scripted generator, tiny random transformer, real TRL and real sandbox)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from gasp_rl.algorithms import solver_verifier as sv
from gasp_rl.backends.embedder import HashingEmbedder
from gasp_rl.backends.trl_finetune import TrlTrainer
from gasp_rl.config import Config, SandboxConfig
from gasp_rl.core.jobs import Job, Verdict
from gasp_rl.core.parsing import STOP_AFTER_CODE_BLOCK, Rejection
from gasp_rl.core.tasks import Problem
from gasp_rl.sandbox import LocalExecutor
from gasp_rl.seams import Chat, Completion, SamplingParams


@pytest.fixture(scope="module")
def executor():
    with LocalExecutor(SandboxConfig(), workers=2, quiet=True) as ex:
        yield ex


class CountingExecutor:
    """Delegates to a real executor and remembers the size of every ``run`` batch."""

    def __init__(self, inner: LocalExecutor) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def run(self, jobs: list[Job]) -> list[Verdict]:
        self.batches.append(len(jobs))
        return self.inner.run(jobs)

    def check_determinism(self, jobs: list[Job]):
        return self.inner.check_determinism(jobs)

    def close(self) -> None:
        pass


def problem(name: str, body_doc: str = "Return x plus one, for any integer x.") -> Problem:
    return Problem(
        problem_id=name,
        prompt=f'def {name}(x: int) -> int:\n    """{body_doc}"""\n',
        kind="check",
        entry_point=name,
    )


# ------------------------------------------------------------------ 1. synthesis


def test_parse_problem_keeps_signature_and_docstring_only() -> None:
    text = (
        "Sure!\n```python\nfrom typing import List\n\n"
        'def total(xs: List[int]) -> int:\n    """Return the sum of all numbers in xs.\n'
        '    >>> total([1, 2])\n    3\n    """\n    return sum(xs)\n```'
    )
    prompt, entry, desc = sv.parse_problem(text)
    assert entry == "total"
    assert prompt.startswith("from typing import List\n\n\ndef total(xs: List[int]) -> int:\n")
    assert "return sum" not in prompt
    assert desc.startswith("Return the sum")


def test_parse_problem_drops_a_broken_body_after_a_complete_docstring() -> None:
    text = '```python\nimport math\ndef area(r: float) -> float:\n    """Return the area of a circle of radius r."""\n    return math.pi * (r\n```'
    prompt, entry, _ = sv.parse_problem(text)
    assert entry == "area"
    assert (
        prompt
        == 'import math\n\n\ndef area(r: float) -> float:\n    """Return the area of a circle of radius r."""\n'
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("no code here at all", "no_code"),
        ('```python\ndef f(x):\n    """Unterminated docstring\n```', "syntax_error"),
        ("```python\nx = 1\n```", "no_function"),
        ("```python\ndef f(x):\n    return x\n```", "no_docstring"),
        ('```python\ndef f(x):\n    """Too short."""\n```', "no_docstring"),
    ],
)
def test_parse_problem_rejections(text: str, reason: str) -> None:
    out = sv.parse_problem(text)
    assert isinstance(out, Rejection) and out.reason == reason


class ScriptedGenerator:
    """Answers by ``params.purpose``: the texts of ``script[purpose]`` in turn (cycled)."""

    def __init__(self, script: dict[str, list[str]]) -> None:
        self.script = script
        self.calls: list[tuple[str, int, int]] = []
        self._next: dict[str, int] = {}

    def _text(self, purpose: str, chat: Chat, k: int) -> str:
        texts = self.script[purpose]
        i = self._next.get(purpose, 0)
        self._next[purpose] = i + 1
        return texts[i % len(texts)]

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        self.calls.append((params.purpose, len(prompts), params.n))
        return [[Completion(self._text(params.purpose, c, k)) for k in range(params.n)] for c in prompts]


def test_synthesis_deduplicates_against_seeds_examples_and_itself() -> None:
    seed = problem("inc")
    dedup = sv.Deduplicator(HashingEmbedder(), 0.9)
    dedup.add([seed.prompt] + sv.example_problem_texts())
    new = '```python\ndef square_all(xs: list) -> list:\n    """Return a list of the squares of the numbers in xs."""\n```'
    copied_example = "```python\n" + sv.example_problem_texts()[1] + "\n```"
    gen = ScriptedGenerator(
        {"sv_synthesize": [new, "no code", "```python\n" + seed.prompt + "```", copied_example, new]}
    )
    props = sv.synthesise(
        gen,
        [seed],
        dedup,
        iteration=0,
        wanted=5,
        oversample=1,
        rounds=1,
        max_new_tokens=64,
        temperature=1.0,
        seed=0,
    )
    reasons = [p.rejection_reason for p in props]
    assert reasons == [None, "no_code", "duplicate", "duplicate", "duplicate"]
    assert props[0].problem is not None and props[0].problem.entry_point == "square_all"
    rec = props[2].record()
    assert rec["accepted"] is False and rec["similarity_question"] > 0.9 and rec["phase"] == "synthesis"


def test_synthesis_stops_when_enough_problems() -> None:
    texts = [
        f'```python\ndef fn_{w}(x: int) -> int:\n    """Return {w} {w} {w} {w} {w}."""\n```'
        for w in ("alpha", "bravo", "charlie", "delta")
    ]
    dedup = sv.Deduplicator(HashingEmbedder(), 0.9)
    gen = ScriptedGenerator({"sv_synthesize": texts})
    props = sv.synthesise(
        gen,
        [problem("inc")],
        dedup,
        iteration=2,
        wanted=2,
        oversample=1,
        rounds=3,
        max_new_tokens=64,
        temperature=1.0,
        seed=0,
    )
    assert sum(p.accepted for p in props) == 2
    assert len(gen.calls) == 1  # the first round delivered both


# ------------------------------------------------------------------ 2. unit tests from verifier text


def test_parse_test_keeps_unit_asserts_only() -> None:
    text = (
        "```python\ndef inc(x):\n    return x + 1\n\n"  # re-definition: dropped
        "assert inc(1) == 2\n"
        "assert inc(x) == 3\n"  # not a literal input: dropped
        "assert inc(2) == inc(2)\n"  # tautology: dropped
        "print(inc(3))\n"
        "assert 5 == inc(4)\n"
        "assert not inc(-1)\n"
        "assert inc(None) is None\n```"
    )
    assert sv.parse_test(text, "inc", max_asserts=10) == (
        "assert inc(1) == 2\nassert 5 == inc(4)\nassert not inc(-1)\nassert inc(None) is None\n"
    )
    assert sv.parse_test(text, "inc", max_asserts=1) == "assert inc(1) == 2\n"


def test_parse_test_accepts_constant_expressions() -> None:
    text = (
        "```python\nassert f(100) == 465 + 1\nassert f([0] * 3, k=-2) == (1, 2)\nassert f(len([1])) == 1\n```"
    )
    assert sv.parse_test(text, "f", 5) == "assert f(100) == 465 + 1\nassert f([0] * 3, k=-2) == (1, 2)\n"


def test_close_fence_and_prefilled_verifier_answers() -> None:
    assert sv.close_fence("```python\nassert f(1) == 2") == "```python\nassert f(1) == 2\n```"
    assert sv.close_fence("```python\nx = 1\n```\n") == "```python\nx = 1\n```"

    class Continuer:
        def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
            assert prompts[0][-1] == {"role": "assistant", "content": "```python\nassert inc("}
            assert params.stop == STOP_AFTER_CODE_BLOCK
            return [[Completion("1) == 2"), Completion("x)")]]

    params = SamplingParams(n=2, stop=list(STOP_AFTER_CODE_BLOCK))
    (cands,) = sv.sample_tests(Continuer(), [problem("inc")], params, max_asserts=3, prefill=True)
    assert cands[0].text == "```python\nassert inc(1) == 2\n```" and cands[0].code == "assert inc(1) == 2\n"
    assert cands[1].code is None and cands[1].reason == "no_unit_assert"


def test_parse_test_line_by_line_and_unfenced() -> None:
    # the block does not parse as a whole (a cut last line), its good lines still count
    assert (
        sv.parse_test("```python\nassert f([1, 2]) == 3\nassert f(\n```", "f", 3) == "assert f([1, 2]) == 3\n"
    )
    assert sv.parse_test("The test: assert f(2) == 4", "f", 3) == Rejection(
        "no_unit_assert", "no `assert f(<literals>) == <literal>` line"
    )
    assert sv.parse_test("assert f(2) == 4", "f", 3) == "assert f(2) == 4\n"
    out = sv.parse_test("```python\nassert g(1) == 1\n```", "f", 3)
    assert isinstance(out, Rejection) and out.reason == "no_unit_assert"


def test_solution_program_assembles_like_evaluation() -> None:
    p = problem("inc")
    code = sv.solution_program(p, "```python\ndef inc(x: int) -> int:\n    return x + 1\n```")
    assert isinstance(code, str) and code.startswith(p.prompt.rstrip("\n")) and "return x + 1" in code
    assert sv.solution_program(p, "I cannot do this.") == Rejection("no_code", "no code in the answer")
    bad = sv.solution_program(p, "```python\ndef inc(x:\n    return\n```")
    assert isinstance(bad, Rejection) and bad.reason == "syntax_error"


# ------------------------------------------------------------------ 3. the pass matrix


def test_pass_matrix_is_one_batch_and_correct(executor) -> None:
    inc, dbl = problem("inc"), problem("dbl", "Return twice x, for any integer x.")
    sols = [
        [inc.prompt + "    return x + 1\n", inc.prompt + "    return x + 2\n", None],
        [dbl.prompt + "    return 2 * x\n", dbl.prompt + "    while True:\n        pass\n"],
    ]
    tests = [
        ["assert inc(1) == 2\n", "assert inc(1) == 3\n", "assert inc(0) == 1\nassert inc(5) == 6\n"],
        ["assert dbl(2) == 4\n", None],
    ]
    counting = CountingExecutor(executor)
    from gasp_rl.core.jobs import Limits

    mats, verdicts = sv.run_pass_matrices(counting, sols, tests, Limits(cpu_time=0.5))
    assert counting.batches == [2 * 3 + 2 * 1]  # invalid candidates get no job
    np.testing.assert_array_equal(mats[0], [[1, 0, 1], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(mats[1], [[1, 0], [0, 0]])
    assert {v.status.value for v in verdicts} >= {"passed", "runtime_error", "timeout"}


# ------------------------------------------------------------------ 4. selection -> rows


def _cand(text: str, code: str | None) -> sv.SampledCode:
    return sv.SampledCode(text=text, code=code, reason="" if code else "no_code")


def test_select_and_build_rows_for_both_roles() -> None:
    p = problem("inc")
    good = [_cand(f"```python\ndef inc(x):\n    return x + {1}\n```{'!' * k}", f"good{k}") for k in range(2)]
    bad = _cand("```python\ndef inc(x):\n    return x\n```", "bad")
    junk = _cand("no idea", None)
    tests = [_cand("assert inc(1) == 2", "t_ok"), _cand("assert inc(1) == 1", "t_wrong"), _cand("??", None)]
    pd = sv.ProblemData(p, [good[0], good[1], bad, junk], tests)
    pd.matrix = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    cfg = Config().solver_verifier.model_copy(update={"max_sft_per_problem": 4, "max_pairs_per_problem": 8})
    data = sv.select_and_build([pd], cfg)
    assert pd.selection.trusted_solutions == (0, 1) and pd.selection.trusted_tests == (0,)
    assert dict(data.counts) == {"sft_solver": 2, "dpo_solver": 2, "sft_verifier": 1, "dpo_verifier": 2}
    solver_prompt = sv.solver_prompt(p)
    verifier_prompt = sv.verifier_prompt(p)
    sft_solver = [r for r in data.sft if r["prompt"] == solver_prompt]
    assert [r["completion"][0]["content"] for r in sft_solver] == [good[0].text, good[1].text]
    dpo_solver = [r for r in data.dpo if r["prompt"] == solver_prompt]
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in dpo_solver] == [
        (good[0].text, bad.text),
        (good[1].text, junk.text),
    ]
    dpo_verifier = [r for r in data.dpo if r["prompt"] == verifier_prompt]
    assert {r["rejected"][0]["content"] for r in dpo_verifier} == {"assert inc(1) == 1", "??"}
    assert all(r["chosen"][0]["content"] == "assert inc(1) == 2" for r in dpo_verifier)
    stats = sv.selection_stats([pd])
    assert (
        stats["kept"] == 1
        and stats["solution_agreement"] == 0.5
        and stats["test_agreement"] == pytest.approx(1 / 3)
    )
    rec = pd.record(0)
    assert rec["pass_matrix"][2] == [0, 1, 0] and rec["kept"] and rec["phase"] == "solver"


# ------------------------------------------------------------------ 6. test-generation accuracy


@pytest.fixture(scope="module")
def heldout() -> list[Problem]:
    from gasp_rl.eval.datasets import load_benchmark

    return load_benchmark("humaneval-heldout")


def test_known_wrong_solutions_are_wrong_and_references_right(executor, heldout) -> None:
    jobs = []
    for p in heldout:
        jobs.append(
            Job("check", code=sv.reference_program(p), test_code=p.check_code, entry_point=p.entry_point)
        )
        jobs.append(Job("check", code=sv.wrong_program(p), test_code=p.check_code, entry_point=p.entry_point))
    v = executor.run(jobs)
    ref_ok = [x.passed for x in v[0::2]]
    wrong_ok = [x.passed for x in v[1::2]]
    assert all(ref_ok)
    assert sum(wrong_ok) <= 2, [p.problem_id for p, w in zip(heldout, wrong_ok) if w]


def test_verifier_accuracy_counts_right_and_wrong_tests(executor, heldout) -> None:
    p = next(q for q in heldout if q.entry_point == "greatest_common_divisor")
    tests = [
        _cand("", "assert greatest_common_divisor(12, 18) == 6\n"),  # right, rejects the wrong one
        _cand("", "assert greatest_common_divisor(12, 18) == 3\n"),  # wrong
        _cand("", "assert greatest_common_divisor(12, 18) is not None or True\n"),  # passes both (weak)
        _cand("", None),  # did not parse: counts as a failure
    ]
    out = sv.verifier_accuracy(executor, [p], [tests])
    assert out["problems"] == 1 and out["tests"] == 4 and out["valid"] == 3
    assert out["correct_passes"] == 0.5
    assert out["rejects_wrong"] == 0.5
    assert out["discriminating"] == 0.25


# ------------------------------------------------------------------ one whole iteration


SYNTH = [
    '```python\ndef add_seven(x: int) -> int:\n    """Return x plus 7, as an integer, for any x."""\n```',
    '```python\ndef add_three(x: int) -> int:\n    """Return x plus 3: a new number three more than x."""\n```',
]


def _script() -> dict[str, list[str]]:
    return {
        "sv_synthesize": SYNTH,
        # per problem 4 solutions: 2 right, 1 wrong, 1 junk
        "sv_solve": [
            "```python\ndef {ep}(x: int) -> int:\n    return x + {k}\n```",
            "```python\ndef {ep}(x):\n    return {k} + x\n```",
            "```python\ndef {ep}(x):\n    return x\n```",
            "I do not know.",
        ],
        # per problem 4 tests: 2 right, 1 wrong, 1 junk
        "sv_test": [
            "```python\nassert {ep}(1) == {k1}\n```",
            "```python\nassert {ep}(0) == {k}\n```",
            "```python\nassert {ep}(1) == 1\n```",
            "The function is fine.",
        ],
        "sv_eval_test": ["```python\nassert greatest_common_divisor(12, 18) == 6\n```", "no test"],
    }


class ProblemAwareGenerator(ScriptedGenerator):
    """Fills {ep}, {k}, {k1} from the problem in the prompt; evaluation prompts get canonical-ish code."""

    def _text(self, purpose: str, chat: Chat, k: int) -> str:
        if purpose == "":  # the evaluation runner
            return "```python\nimport math\n\n\ndef greatest_common_divisor(a: int, b: int) -> int:\n    return math.gcd(a, b)\n```"
        text = (
            self.script[purpose][k % len(self.script[purpose])]
            if purpose != "sv_synthesize"
            else super()._text(purpose, chat, k)
        )
        m = re.search(r"def (add_\w+)\(x: int\) -> int:\n\s+\"\"\"Return x plus (\d+)", chat[-1]["content"])
        if m:
            ep, kk = m.group(1), int(m.group(2))
            text = text.replace("{ep}", ep).replace("{k1}", str(kk + 1)).replace("{k}", str(kk))
        return text


@pytest.fixture(scope="module")
def tiny_model():
    """A 2-layer random Llama with the embedded model's tokenizer: real TRL training in seconds."""
    from _tiny_model import tiny_llama

    return tiny_llama()


@pytest.mark.slow
def test_one_iteration_end_to_end(executor, heldout, tiny_model, tmp_path: Path) -> None:
    import torch

    model, tok = tiny_model
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = Config().model_copy(deep=True)
    cfg.solver_verifier.problems_per_iteration = 2
    cfg.solver_verifier.m = 4
    cfg.solver_verifier.sft_max_steps = 2
    cfg.solver_verifier.dpo_max_steps = 2
    cfg.solver_verifier.verifier_prefill = False  # the script writes whole answers
    cfg.trainer.bf16_autocast = False
    gen = ProblemAwareGenerator(_script())
    counting = CountingExecutor(executor)
    seams = sv.Seams(gen, TrlTrainer(model, tok, cfg, tmp_path / "trl"), counting, HashingEmbedder())
    target = [p for p in heldout if p.entry_point == "greatest_common_divisor"]
    algo = sv.SolVer(cfg, seams, [problem("inc")], target)
    m = algo.iteration(0)

    assert m["synthesis"]["accepted"] == 2
    assert m["sampling"]["solutions"] == {
        "sampled": 8,
        "valid": 6,
        "by_reason": {"no_code": 2},
        "truncated": 0,
    }
    assert m["sampling"]["tests"]["valid"] == 6
    assert m["pass_matrix"]["executions"] == 2 * 3 * 3
    assert 18 in counting.batches  # the whole matrix in one executor call
    assert m["selection"]["kept"] == 2 and m["selection"]["solution_agreement"] == 0.5
    assert m["data"] == {"sft_solver": 4, "dpo_solver": 4, "sft_verifier": 4, "dpo_verifier": 4}
    assert m["sft"]["steps"] == 2 and m["sft"]["loss_first"] > 0
    assert m["dpo"]["steps"] == 2 and "rewards_margins" in m["dpo"]
    assert m["eval"]["pass@1"] == 1.0
    assert m["eval"]["test_generation"]["correct_passes"] == 0.5
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "SFT/DPO did not change the weights"
    assert not model.training and "forward" not in model.__dict__  # given back ready to generate


@pytest.mark.slow
def test_run_directory_checkpoints_and_resume(tiny_model, tmp_path: Path, monkeypatch) -> None:
    """``run_solver_verifier`` writes the run layout, checkpoints every iteration, and a run cut
    after its first iteration resumes at the second from ``checkpoints/last``."""
    import json

    import torch

    from gasp_rl.backends import factory
    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.config import load_config
    from gasp_rl.driver import run_solver_verifier

    model, tok = tiny_model
    policy = HFPolicy(model, tok, torch.device("cpu"))
    bundle = factory.PolicyBundle(
        generator=ProblemAwareGenerator(_script()), learner=policy, embedder=HashingEmbedder(), tokenizer=tok
    )
    monkeypatch.setattr(factory, "build_policy", lambda cfg: bundle)
    cfg = load_config(
        overrides=[
            f"run.dir={tmp_path / 'run'}",
            "solver_verifier.iterations=2",
            "solver_verifier.problems_per_iteration=1",
            "solver_verifier.m=4",
            "solver_verifier.sft_max_steps=1",
            "solver_verifier.dpo_max_steps=1",
            "solver_verifier.eval_limit=1",
            "solver_verifier.verifier_prefill=false",
            "trainer.bf16_autocast=false",
        ]
    )
    real_iteration = sv.SolVer.iteration
    calls: list[int] = []

    def cut_after_first(self, it, store=None):
        calls.append(it)
        if it == 1 and calls.count(1) == 1:
            raise KeyboardInterrupt
        return real_iteration(self, it, store)

    monkeypatch.setattr(sv.SolVer, "iteration", cut_after_first)
    with pytest.raises(KeyboardInterrupt):
        run_solver_verifier(cfg)
    run = tmp_path / "run"
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["last_iteration"] == 0 and "base_eval" in meta
    assert (run / "checkpoints" / "iter_000000" / "model.safetensors").is_file()
    assert json.loads((run / "checkpoints" / "last" / "state.json").read_text())["iteration"] == 0

    assert run_solver_verifier(cfg, resume=run) == run
    assert calls == [0, 1, 1]
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "completed" and meta["last_iteration"] == 1
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in metrics] == [0, 1]
    assert metrics[1]["sft"]["steps"] == 1 and metrics[1]["dpo"]["steps"] == 1
    # iteration 1 re-proposed iteration 0's problem: the resumed run still knew it
    assert metrics[1]["synthesis"]["by_reason"] == {"duplicate": 1, "accepted": 1}
    proposals = [json.loads(line) for line in (run / "proposals.jsonl").read_text().splitlines()]
    assert sorted({p["iteration"] for p in proposals}) == [0, 1]
    assert (run / "checkpoints" / "iter_000001" / "model.safetensors").is_file()
    assert (run / "eval" / "base__humaneval-heldout.json").is_file()
    assert (run / "eval" / "iter_000001__humaneval-heldout.json").is_file()


def test_unit_test_constants_follow_the_core_literal_rules() -> None:
    from gasp_rl.core.parsing import is_literal_node
    from gasp_rl.core.unit_tests import is_constant_expression

    for text in ("465 + 1", "[0] * 3", "-(2 ** 8)", "{'a': (1, 2)}", "set()"):
        node = ast.parse(text, mode="eval").body
        assert is_constant_expression(node), text
    for text in ("x", "len([1])", "[1][0]", "{**d}"):
        assert not is_constant_expression(ast.parse(text, mode="eval").body), text
    assert is_literal_node(ast.parse("(1, -2)", mode="eval").body)  # every literal is a constant
    assert (
        sv.parse_test("```python\nassert f(set()) == 0\nassert f(x) == 1\n```", "f", 3)
        == "assert f(set()) == 0\n"
    )
