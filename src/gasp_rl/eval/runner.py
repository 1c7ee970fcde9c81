"""The evaluation runner: prompts -> n samples (+ greedy) -> code -> sandbox -> pass@k (method.md §8).

Works with any :class:`~gasp_rl.seams.Generator` (in-process HF policy, OpenAI-compatible
endpoint, fake) and any :class:`~gasp_rl.seams.Executor`.  Problems are processed in chunks;
after each chunk one JSON line per problem is appended (and fsynced) to the per-problem file, so an
interrupted evaluation resumes where it stopped: problems already in the file are not generated
again.  A file written with other sampling settings is refused rather than silently mixed.

Per-problem record (one JSON object per line)::

    {"problem_id": "HumanEval/1", "n": 4, "c": 1,
     "samples": [{"passed": false, "status": "runtime_error", "reason": "...", "answer": "...",
                  "finish_reason": "stop"}, ...],
     "greedy": {"passed": true, ...} | null,
     "settings": {"n": 4, "temperature": 0.6, "top_p": 1.0, "max_new_tokens": 384, "greedy": true,
                  "seed": 0}}
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gasp_rl.core.passk import mean_pass_at_k
from gasp_rl.core.prompts import render_chat
from gasp_rl.core.tasks import Problem
from gasp_rl.errors import ContextLengthError, DataError, GaspError
from gasp_rl.eval.grading import Grade, LimitsFn, grading_limits
from gasp_rl.eval.grading import grade_answers as _grade_answers
from gasp_rl.seams import Chat, Completion, Executor, Generator, SamplingParams

# ------------------------------------------------------------------------------ prompts


def prompt_template(problem: Problem) -> str:
    """The eval template of a problem: by its source (MBPP+) or kind (LiveCodeBench)."""
    if problem.kind in ("stdin", "functional"):
        return "eval_livecodebench"
    if problem.source.startswith("mbpp"):
        return "eval_mbpp"
    return "eval_humaneval"


def eval_prompt(problem: Problem) -> Chat:
    """The zero-shot chat prompt of ``problem`` in its benchmark's customary style."""
    name = prompt_template(problem)
    if name == "eval_livecodebench":
        return render_chat(name, question=problem.prompt, starter_code=problem.starter_code)
    return render_chat(name, prompt=problem.prompt, entry_point=problem.entry_point)


# ------------------------------------------------------------------------------ settings & records


@dataclass(frozen=True)
class EvalSettings:
    """How answers are sampled.  Part of every record so a resume cannot mix settings."""

    n: int = 4
    ks: tuple[int, ...] = (1, 4)
    temperature: float = 0.6
    top_p: float = 1.0
    max_new_tokens: int = 384
    greedy: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [k for k in self.ks if not 1 <= k <= self.n]
        if bad:
            raise GaspError(f"pass@k needs 1 <= k <= n; got ks={list(self.ks)} with n={self.n}")

    def fingerprint(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("ks")  # any k can be computed from the same samples
        return d


@dataclass
class ProblemRecord:
    """The graded samples of one problem (one line of the per-problem file)."""

    problem_id: str
    n: int
    c: int
    samples: list[dict[str, Any]]
    greedy: dict[str, Any] | None
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProblemRecord:
        return cls(
            problem_id=str(d["problem_id"]),
            n=int(d["n"]),
            c=int(d["c"]),
            samples=list(d.get("samples", [])),
            greedy=d.get("greedy"),
            settings=dict(d.get("settings", {})),
        )


def read_records(path: Path) -> dict[str, ProblemRecord]:
    """Records of a per-problem file.  A torn last line (a crash mid-write: no final newline) is
    cut off so it is regenerated; any other bad line is a :class:`DataError` naming the line."""
    if not path.exists():
        return {}
    raw = path.read_bytes()
    records: dict[str, ProblemRecord] = {}
    offset = 0
    for lineno, line in enumerate(raw.splitlines(keepends=True), 1):
        if line.strip():
            try:
                rec = ProblemRecord.from_dict(json.loads(line))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
                if not line.endswith(b"\n"):
                    with open(path, "r+b") as fh:
                        fh.truncate(offset)
                    break
                raise DataError(f"{path}:{lineno}: bad per-problem record ({type(e).__name__})") from None
            records[rec.problem_id] = rec
        offset += len(line)
    return records


def append_records(path: Path, records: Sequence[ProblemRecord]) -> None:
    """Append records durably (one line each, flushed and fsynced before returning)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# ------------------------------------------------------------------------------ outcome


@dataclass
class EvalOutcome:
    """pass@k over a benchmark, computed from the per-problem records."""

    records: list[ProblemRecord]
    ks: tuple[int, ...]
    pass_at_k: dict[int, float] = field(default_factory=dict)
    greedy_pass_at_1: float | None = None

    @classmethod
    def from_records(cls, records: list[ProblemRecord], ks: Sequence[int]) -> EvalOutcome:
        ns = [r.n for r in records]
        cs = [r.c for r in records]
        scores = {k: mean_pass_at_k(ns, cs, k) for k in ks}
        greedy = [r.greedy["passed"] for r in records if r.greedy is not None]
        g = sum(greedy) / len(greedy) if greedy and len(greedy) == len(records) else None
        return cls(records=records, ks=tuple(ks), pass_at_k=scores, greedy_pass_at_1=g)

    @property
    def n_problems(self) -> int:
        return len(self.records)

    @property
    def solved(self) -> list[str]:
        """Problems with at least one passing sample (pass@k > 0 for every k)."""
        return [r.problem_id for r in self.records if r.c > 0 or (r.greedy or {}).get("passed")]


# ------------------------------------------------------------------------------ the runner

ProgressFn = Callable[[int, int, EvalOutcome], None]


class EvalRunner:
    """Evaluate one generator on a list of problems with resumable per-problem records."""

    def __init__(
        self,
        generator: Generator,
        executor: Executor,
        settings: EvalSettings,
        *,
        limits_for: LimitsFn | None = None,
        chunk_problems: int = 8,
    ) -> None:
        """``limits_for``: per-problem grading limits, :func:`gasp_rl.eval.grading.grading_limits`
        of the run's config (default: of the default config)."""
        self.generator = generator
        self.executor = executor
        self.settings = settings
        self.limits_for = limits_for or grading_limits()
        self.chunk_problems = max(1, chunk_problems)

    def run(
        self,
        problems: Sequence[Problem],
        records_path: Path | None = None,
        progress: ProgressFn | None = None,
    ) -> EvalOutcome:
        """Evaluate ``problems`` (resuming from ``records_path`` if it holds some of them)."""
        done = read_records(records_path) if records_path is not None else {}
        fp = self.settings.fingerprint()
        for rec in done.values():
            if rec.settings != fp:
                raise GaspError(
                    f"{records_path} holds results made with other settings ({rec.settings}, now {fp}); "
                    "delete it or write elsewhere (--out)"
                )
        wanted = {p.problem_id for p in problems}
        results = {pid: r for pid, r in done.items() if pid in wanted}
        todo = [p for p in problems if p.problem_id not in results]
        for start in range(0, len(todo), self.chunk_problems):
            chunk = todo[start : start + self.chunk_problems]
            new = self._evaluate_chunk(chunk)
            if records_path is not None:
                append_records(records_path, new)
            results.update((r.problem_id, r) for r in new)
            if progress is not None:
                ordered = [results[p.problem_id] for p in problems if p.problem_id in results]
                progress(len(ordered), len(problems), EvalOutcome.from_records(ordered, self.settings.ks))
        return EvalOutcome.from_records([results[p.problem_id] for p in problems], self.settings.ks)

    # -------------------------------------------------------------------------- internals

    def _params(self, chunk: Sequence[Problem], greedy: bool) -> SamplingParams:
        s = self.settings
        # a seed that depends on the problems, not on their position, so a resume draws the same
        seed = zlib.crc32(("\0".join(p.problem_id for p in chunk) + f"\0{s.seed}").encode()) & 0x7FFFFFFF
        if greedy:
            return SamplingParams(n=1, temperature=0.0, max_new_tokens=s.max_new_tokens, seed=seed)
        return SamplingParams(
            n=s.n, temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens, seed=seed
        )

    def _generate(self, chunk: Sequence[Problem], greedy: bool) -> list[list[Completion] | str]:
        """Completions per problem, or the reason a problem could not be prompted (too long)."""
        prompts = [eval_prompt(p) for p in chunk]
        params = self._params(chunk, greedy)
        try:
            return list(self.generator.generate(prompts, params))
        except ContextLengthError:
            if len(chunk) == 1:
                raise
        out: list[list[Completion] | str] = []
        for p in chunk:  # isolate the prompt(s) that do not fit
            try:
                out.extend(self._generate([p], greedy))
            except ContextLengthError as e:
                out.append(f"prompt does not fit the context window: {e}")
        return out

    def _evaluate_chunk(self, chunk: Sequence[Problem]) -> list[ProblemRecord]:
        sampled = self._generate(chunk, greedy=False)
        greedy = self._generate(chunk, greedy=True) if self.settings.greedy else [None] * len(chunk)
        answers: list[tuple[int, str, str]] = []  # (problem index, answer text, finish reason)
        for i in range(len(chunk)):
            for item, count in ((sampled[i], self.settings.n), (greedy[i], 1)):
                if item is None:
                    continue
                if isinstance(item, str):  # the prompt did not fit: every answer is a failure
                    answers.extend((i, "", f"error: {item}") for _ in range(count))
                else:
                    answers.extend((i, c.text, c.finish_reason) for c in item)
        grades = self._grade([(chunk[i], text) for i, text, _ in answers])
        per_problem: list[list[dict[str, Any]]] = [[] for _ in chunk]
        for (i, text, finish), grade in zip(answers, grades):
            per_problem[i].append({**grade.to_dict(), "answer": text, "finish_reason": finish})
        records = []
        for i, p in enumerate(chunk):
            entries = per_problem[i]
            samples = entries[: self.settings.n]
            g = entries[self.settings.n] if self.settings.greedy else None
            records.append(
                ProblemRecord(
                    problem_id=p.problem_id,
                    n=len(samples),
                    c=sum(1 for e in samples if e["passed"]),
                    samples=samples,
                    greedy=g,
                    settings=self.settings.fingerprint(),
                )
            )
        return records

    def _grade(self, items: Sequence[tuple[Problem, str]]) -> list[Grade]:
        """Grade answers in one executor batch (:func:`gasp_rl.eval.grading.grade_answers`)."""
        return _grade_answers(self.executor, items, limits_for=self.limits_for)


#: The one grading path, re-exported (it lives in :mod:`gasp_rl.eval.grading`).
grade_answers = _grade_answers
