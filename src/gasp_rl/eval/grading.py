"""From a model answer to a sandbox verdict: THE grading path of training and evaluation.

:func:`solution_program` turns an answer into the program to test, :func:`grading_job` turns
(problem, program) into one sandbox :class:`~gasp_rl.core.jobs.Job` whose verdict decides
pass/fail, with the per-problem limits of :func:`grading_limits` (the benchmark's CPU budget and
an input-size limit that fits its own test data).  :func:`grade_answers` does all three and runs
the jobs; ``gasp eval`` / ``gasp goalposts`` (the evaluation runner), RLVR rewards, the verl reward
adapter and Sol-Ver's held-out evaluation all grade through it, so a training reward and an
evaluation verdict of the same answer cannot disagree.  A solution passes only if it passes *all*
public and private tests (method.md §2).

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
import dataclasses
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gasp_rl.core.jobs import Job, Limits, Verdict, limits_from_config
from gasp_rl.core.parsing import (
    Rejection,
    extract_code,
    parse_abduction_answer,
    parse_deduction_answer,
    parse_induction_answer,
    parses,
)
from gasp_rl.core.tasks import Problem, ProgramTask

if TYPE_CHECKING:
    from gasp_rl.config import Config
    from gasp_rl.seams import Executor

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

    @property
    def score(self) -> float:
        """The reward of an answer (RLVR, verl's reward function): 1 if it passed, else 0."""
        return 1.0 if self.passed else 0.0

    @classmethod
    def from_verdict(cls, v: Verdict) -> Grade:
        return cls(passed=v.passed, status=v.status.value, reason=v.reason[:300])

    def to_dict(self) -> dict[str, object]:
        return {"passed": self.passed, "status": self.status, "reason": self.reason}


LimitsFn = Callable[[Problem], Limits]


def grading_limits(cfg: Config | None = None) -> LimitsFn:
    """Per-problem sandbox limits of a grading job (``cfg`` defaults to the default config).

    CPU: a LiveCodeBench stdin test gets ``eval.test_cpu_time`` (each test runs in its own
    process), a functional job ``eval.test_cpu_time`` per test (all tests in one process), an
    EvalPlus job ``eval.plus_cpu_time``, each capped at ``eval.max_job_cpu_time``; HumanEval keeps
    ``sandbox.cpu_time``.  Input size: the problem's own test data (trusted benchmark files, unlike
    model output) plus ``sandbox.max_input_bytes`` for the candidate's code.  The other limits are
    ``sandbox.*``."""
    from gasp_rl.config import Config

    cfg = cfg or Config()
    base = limits_from_config(cfg.sandbox)
    e, allowance = cfg.eval, cfg.sandbox.max_input_bytes

    def limits_for(problem: Problem) -> Limits:
        lim = dataclasses.replace(base, max_input_bytes=job_size(problem) + allowance)
        if problem.kind == "stdin":
            cpu = e.test_cpu_time
        elif problem.kind == "functional":
            cpu = e.test_cpu_time * max(1, len(problem.all_tests))
        elif problem.source.endswith("-plus"):
            cpu = e.plus_cpu_time
        else:
            return lim
        return dataclasses.replace(lim, cpu_time=min(cpu, e.max_job_cpu_time), wall_time=0.0)

    return limits_for


def grade_answers(
    executor: Executor,
    items: Sequence[tuple[Problem, str]],
    cfg: Config | None = None,
    *,
    limits_for: LimitsFn | None = None,
) -> list[Grade]:
    """Grade (problem, answer) pairs in ONE executor batch: the grading path of every caller.
    Limits come from :func:`grading_limits` of ``cfg`` (or ``limits_for``); answers without code
    fail without a job."""
    limits_for = limits_for or grading_limits(cfg)
    grades: list[Grade | None] = [None] * len(items)
    jobs, where = [], []
    for k, (problem, text) in enumerate(items):
        program = solution_program(problem, text)
        if not program.code:
            grades[k] = Grade(False, "no_code", program.reason)
            continue
        jobs.append(grading_job(problem, program.code, limits_for(problem), job_id=str(k)))
        where.append(k)
    verdicts: list[Verdict] = executor.run(jobs) if jobs else []
    for k, v in zip(where, verdicts):
        grades[k] = Grade.from_verdict(v)
    return [g if g is not None else Grade(False, "sandbox_error", "missing verdict") for g in grades]


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
