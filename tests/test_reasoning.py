"""Held-out code reasoning benchmarks: items are built from real code, answers graded in the sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from gasp_rl.algorithms.warmup import student_answer
from gasp_rl.config import load_config
from gasp_rl.core.families import families
from gasp_rl.core.stats import paired_difference, wilson_interval
from gasp_rl.errors import DataError
from gasp_rl.eval.grading import program_task_job
from gasp_rl.eval.reasoning import (
    ReasoningItem,
    evaluate_reasoning,
    literal_calls,
    load_reasoning_items,
)
from gasp_rl.seams import Completion
from gasp_rl.wiring import make_executor

FIXTURE = Path(__file__).parent / "fixtures" / "cruxeval_sample.jsonl"


@pytest.fixture(scope="module")
def executor():
    ex = make_executor(load_config(None, ["sandbox.workers=2"]))
    yield ex
    ex.close()


def _wrong(item: ReasoningItem) -> str | None:
    """A known-wrong answer: a value no item outputs, a program returning it, or (abduction) the
    arguments of another I/O pair whose output differs (None when every output is the same)."""
    if item.task_type == "induction":
        return "```python\ndef f(*args):\n    return ('not', 'it', 12345)\n```"
    if item.task_type == "deduction":
        return "Answer: ('not', 'it', 12345)"
    target = item.task.io[item.index].output
    other = next((p.args for p in item.task.io if p.output != target), None)
    return None if other is None else f"Answer: {other}"


@pytest.mark.parametrize("name", ["humaneval-reasoning", "families-heldout"])
def test_known_right_answers_pass_and_wrong_ones_fail(executor, name):
    items = load_reasoning_items(name, executor)
    assert len(items) >= 100
    right = executor.run(
        [program_task_job(i.task, i.view(), student_answer(i.task, i.view())) for i in items]
    )
    assert all(v.passed for v in right)
    wrong = [program_task_job(i.task, i.view(), w) for i in items if (w := _wrong(i)) is not None]
    assert len(wrong) >= 0.9 * len(items)
    assert not any(v.passed for v in executor.run(wrong))


def test_reasoning_sets_hold_at_least_200_items(executor):
    items = load_reasoning_items("reasoning", executor)
    assert len(items) >= 200
    assert {i.task_type for i in items} == {"induction", "deduction", "abduction"}
    assert len({i.item_id for i in items}) == len(items)


def test_humaneval_reasoning_uses_only_the_heldout_half(executor):
    items = load_reasoning_items("humaneval-reasoning", executor)
    numbers = {int(i.task.task_id.split("/")[1]) for i in items}
    assert numbers and all(n % 2 == 1 for n in numbers)  # goalposts / RLVR use the even half


def test_families_heldout_never_uses_a_warmup_family(executor):
    held = {f.name for f in families("heldout")}
    items = load_reasoning_items("families-heldout", executor)
    assert {i.task.meta["family"] for i in items} <= held
    assert not held & {f.name for f in families("warmup")}


def test_cruxeval_format_is_read_and_graded(executor):
    items = load_reasoning_items("cruxeval", executor, path=FIXTURE)
    assert [i.task_type for i in items[:2]] == ["deduction", "abduction"]
    assert len(items) == 8
    right = {
        "fixture_0/output": "Answer: [6, 18]",
        "fixture_0/input": "Answer: [3, 1, 9]",  # any input giving [6, 18]
        "fixture_1/output": "Answer: 'CD'",
        "fixture_1/input": "Answer: 'cd', '+'",
        "fixture_2/output": "Answer: 'y'",
        "fixture_2/input": "Answer: {'y': 0}",
        "fixture_3/output": "Answer: 3",
        "fixture_3/input": "Answer: 'xxyyyq'",
    }
    verdicts = executor.run([program_task_job(i.task, i.view(), right[i.item_id]) for i in items])
    assert [v.passed for v in verdicts] == [True] * 8
    wrong = executor.run([program_task_job(i.task, i.view(), "Answer: 'nope'") for i in items])
    assert not any(v.passed for v in wrong)


def test_cruxeval_bad_rows_are_clear_errors(tmp_path, executor):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"code": "def f(x):\\n    return x", "input": "1", "output": "__import__(1)"}\n')
    with pytest.raises(DataError, match="bad.jsonl:1"):
        load_reasoning_items("cruxeval", executor, path=bad)
    with pytest.raises(DataError, match="eval.path"):
        load_reasoning_items("cruxeval", executor)


def test_literal_calls_reads_only_literal_test_arguments():
    check = (
        "def check(candidate):\n"
        "    assert candidate([1, 2], 3) == 4\n"
        "    assert candidate(x) == 1\n"
        "    assert abs(candidate('ab', 2) - 1) < 1e-6\n"
        "    assert candidate([1, 2], 3) == 4\n"
    )
    assert literal_calls(check) == ["[1, 2], 3", "'ab', 2"]


class _Scripted:
    """A generator answering each prompt with a fixed text (right for even items)."""

    def __init__(self, answers):
        self.answers = answers

    def generate(self, prompts, params):
        assert params.temperature == 0.0
        return [[Completion(self.answers.pop(0))] for _ in prompts]


def test_evaluate_reasoning_scores_and_intervals(executor):
    items = [i for i in load_reasoning_items("families-heldout", executor) if i.task_type == "deduction"][:10]
    answers = [student_answer(i.task, i.view()) if k % 2 == 0 else "no answer" for k, i in enumerate(items)]
    out = evaluate_reasoning(_Scripted(answers), executor, items)
    acc = out.summary()["all"]
    assert (acc["correct"], acc["n"], acc["accuracy"]) == (5, 10, 0.5)
    lo, hi = acc["ci95"]
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)


def test_wilson_and_paired_difference():
    assert wilson_interval(0, 0) == (None, None)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and 0.15 < hi < 0.17
    d = paired_difference([1, 1, 1, 0], [0, 1, 1, 0])
    assert d["diff"] == 0.25 and d["lo"] < 0 < d["hi"]
    d = paired_difference([1] * 50, [0] * 50)
    assert d["lo"] == d["hi"] == 1.0
