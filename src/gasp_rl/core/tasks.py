"""The task data model (method.md §2): program tasks, their three student views, and real-data problems.

Everything here is plain data: values that came from model code are kept as *literal text*
(``repr`` of a plain Python value) and are only ever interpreted inside the sandbox.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

TaskType = Literal["induction", "deduction", "abduction"]
TASK_TYPES: tuple[TaskType, ...] = ("induction", "deduction", "abduction")


@dataclass
class IOPair:
    """One call of ``f``: ``args`` is the literal text of the arguments (``"[1, 2], 3"``) and
    ``output`` the literal text of ``f(*args)`` as computed in the sandbox."""

    args: str
    output: str


@dataclass
class ProgramTask:
    """A deterministic function ``f`` with inputs; reference outputs come from running ``f``."""

    code: str
    io: list[IOPair]
    message: str = ""
    entry_point: str = "f"
    task_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def induction(self, n_public: int = 2, n_private: int = 3) -> InductionView:
        if len(self.io) < n_public + n_private:
            raise ValueError(
                f"task {self.task_id!r} has {len(self.io)} I/O pairs, needs {n_public + n_private}"
            )
        return InductionView(
            task_id=self.task_id,
            message=self.message,
            public=self.io[:n_public],
            private=self.io[n_public : n_public + n_private],
            entry_point=self.entry_point,
        )

    def deduction(self, index: int = 0) -> DeductionView:
        pair = self.io[index]
        return DeductionView(
            task_id=self.task_id,
            code=self.code,
            args=pair.args,
            output=pair.output,
            entry_point=self.entry_point,
        )

    def abduction(self, index: int = 0) -> AbductionView:
        pair = self.io[index]
        return AbductionView(
            task_id=self.task_id,
            code=self.code,
            output=pair.output,
            args=pair.args,
            entry_point=self.entry_point,
        )

    def view(
        self, task_type: TaskType, rng: random.Random | None = None, n_public: int = 2, n_private: int = 3
    ):
        """The student question of the given type (the I/O pair of deduction/abduction drawn by ``rng``)."""
        if task_type == "induction":
            return self.induction(n_public, n_private)
        index = (rng or random.Random(0)).randrange(len(self.io))
        return self.deduction(index) if task_type == "deduction" else self.abduction(index)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgramTask:
        return cls(
            code=str(d["code"]),
            io=[IOPair(str(p["args"]), str(p["output"])) for p in d.get("io", [])],
            message=str(d.get("message", "")),
            entry_point=str(d.get("entry_point", "f")),
            task_id=str(d.get("task_id", "")),
            meta=dict(d.get("meta", {})),
        )


@dataclass
class InductionView:
    """Shown ``public`` I/O pairs (and the message), write ``f``; graded on ``private`` (and public)."""

    task_id: str
    message: str
    public: list[IOPair]
    private: list[IOPair]
    entry_point: str = "f"
    type: str = "induction"


@dataclass
class DeductionView:
    """Shown ``code`` and ``args``, predict ``output``."""

    task_id: str
    code: str
    args: str
    output: str
    entry_point: str = "f"
    type: str = "deduction"


@dataclass
class AbductionView:
    """Shown ``code`` and ``output``, give any ``args`` with ``f(args) == output``."""

    task_id: str
    code: str
    output: str
    args: str
    entry_point: str = "f"
    type: str = "abduction"


@dataclass
class TestCase:
    """One real-data test: stdin text -> expected stdout, or literal args -> literal expected value."""

    input: str
    output: str
    testtype: Literal["stdin", "functional"] = "stdin"


@dataclass
class Problem:
    """A real-data coding problem (LiveCodeBench / HumanEval / MBPP style).

    ``kind`` is ``stdin`` (program reads stdin, writes stdout), ``functional`` (a function named
    ``entry_point`` is called with literal arguments), or ``check`` (an assert-based ``check_code``
    that calls ``check(entry_point)``, the HumanEval/EvalPlus form).
    """

    problem_id: str
    prompt: str
    kind: Literal["stdin", "functional", "check"]
    public_tests: list[TestCase] = field(default_factory=list)
    private_tests: list[TestCase] = field(default_factory=list)
    entry_point: str = ""
    starter_code: str = ""
    check_code: str = ""
    source: str = ""
    contest_date: str = ""
    difficulty: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def all_tests(self) -> list[TestCase]:
        return [*self.public_tests, *self.private_tests]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Problem:
        def tests(key: str) -> list[TestCase]:
            return [TestCase(**t) for t in d.get(key, [])]

        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in d.items() if k in known and k not in ("public_tests", "private_tests")}
        return cls(public_tests=tests("public_tests"), private_tests=tests("private_tests"), **kwargs)


# ---------------------------------------------------------------- JSONL


def write_jsonl(path: str | Path, records: Iterable[Any]) -> None:
    """Write records (dataclasses or dicts) to ``path`` atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            d = (
                r.to_dict()
                if hasattr(r, "to_dict")
                else asdict(r)
                if hasattr(r, "__dataclass_fields__")
                else r
            )
            fh.write(json.dumps(d, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
