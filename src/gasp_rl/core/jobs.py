"""What the sandbox executor is asked to run and what it answers: plain, JSON-serialisable data.

Job kinds
---------
``call``     run ``code``, then call ``entry_point(*args)`` for each case (``args`` is literal text
             such as ``"[1, 2], 3"``).  With ``expected`` (literal text per case) each result is
             compared to it; without, the actual outputs are returned (as literal text).
``stdin``    run ``code`` as a script with each case as stdin; compare stdout with ``expected``.
``check``    run ``code`` then ``test_code`` (assert-based); if ``entry_point`` is set, call
             ``check(<entry_point>)`` as HumanEval / EvalPlus do.  Passes if nothing raises.
``compare``  no code: parse ``cases[0]`` (untrusted literal text, e.g. a predicted output) inside
             the sandbox and compare it to ``expected[0]``.

Value comparison semantics (shared by every caller, applied inside the sandbox)
------------------------------------------------------------------------------
Values are plain Python literals: None, bool, int, float, complex, str, bytes, list, tuple, dict,
set, frozenset.  Two values are equal when Python's ``==`` says so on plain values, except that
floats (also inside containers) are equal within ``float_rel_tol`` / ``float_abs_tol`` and NaN
equals NaN, and (if ``tuple_equals_list``) a tuple equals a list with equal items.  Objects of any
other type (including subclasses of the builtins) are never compared: a result that is not a
plain value is a wrong answer with reason ``unserialisable result``.
Stdout comparison: trailing whitespace of each line and trailing blank lines are ignored; lines
that both parse as numbers are compared as floats with the same tolerance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any, Literal

JobKind = Literal["call", "stdin", "check", "compare"]


class Status(str, Enum):
    PASSED = "passed"
    WRONG_ANSWER = "wrong_answer"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    FORBIDDEN = "forbidden"
    INVALID_INPUT = "invalid_input"
    SANDBOX_ERROR = "sandbox_error"


@dataclass
class Limits:
    cpu_time: float = 2.0
    wall_time: float = 0.0  # 0 -> 3 * cpu_time + 1
    memory_mb: int = 1024
    output_bytes: int = 1_000_000
    open_files: int = 64
    # Largest job (characters of code, tests, inputs and expected values) the executor accepts;
    # 0 = its sandbox.max_input_bytes.  Grading jobs set it to their benchmark's own (trusted) test
    # data plus sandbox.max_input_bytes for the candidate (gasp_rl.eval.grading.grading_limits).
    max_input_bytes: int = 0

    @property
    def effective_wall(self) -> float:
        return self.wall_time if self.wall_time > 0 else 3.0 * self.cpu_time + 1.0


@dataclass
class Job:
    kind: JobKind
    code: str = ""
    cases: list[str] = field(default_factory=list)
    expected: list[str] | None = None
    entry_point: str = "f"
    test_code: str = ""
    limits: Limits | None = None
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Verdict:
    status: Status
    reason: str = ""
    outputs: list[str | None] = field(default_factory=list)
    case: int | None = None
    expected: str | None = None
    actual: str | None = None
    error_type: str | None = None
    cpu_time: float = 0.0
    wall_time: float = 0.0
    job_id: str = ""

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED

    @property
    def ok(self) -> bool:
        """The code ran to completion (passed or, for jobs without expectations, produced outputs)."""
        return self.status in (Status.PASSED,)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Verdict:
        d = dict(d)
        d["status"] = Status(d["status"])
        return cls(**d)

    def summary(self) -> str:
        s = self.status.value
        if self.reason:
            s += f": {self.reason}"
        return s


def limits_from_config(cfg: Any) -> Limits:
    """The default :class:`Limits` of a job from the ``sandbox`` config section."""
    return Limits(
        cpu_time=cfg.cpu_time,
        wall_time=cfg.wall_time,
        memory_mb=cfg.memory_mb,
        output_bytes=cfg.output_bytes,
        open_files=cfg.open_files,
    )
