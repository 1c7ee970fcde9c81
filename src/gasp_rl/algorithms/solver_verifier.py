"""Sol-Ver (Lin et al. 2025, "Learning to Solve and Verify", arXiv 2502.14948; SPEC 9).

One model plays two roles on problems it writes itself: the *solver* writes code, the *verifier*
writes unit tests.  Executing every solution against every test gives a pass matrix from which
the model's own data is checked by agreement, and the agreed data trains both roles.

One iteration, as :meth:`SolVer.iteration` runs it:

1. **Synthesise** new problems (signature + docstring) from seed problems; drop near-duplicates of
   the seeds, of the template's worked example and of every earlier synthetic problem.
2. **Sample** ``m`` solutions (solver) and ``m`` assert-based tests (verifier) per problem.
3. **Pass matrix**: every solution x every test, all problems in ONE batched executor call.
4. **Select** trusted solutions and tests by agreement (:mod:`gasp_rl.core.agreement`, where the
   exact rule is documented) and build SFT examples and DPO preference pairs for both roles.
5. **Train**: TRL's ``SFTTrainer`` on the trusted (problem -> solution) and (problem -> test)
   pairs, then TRL's ``DPOTrainer`` with chosen = trusted, rejected = failing solution / wrong
   test, the reference being the policy right after SFT.
6. **Metrics**: code-generation pass@1 (the evaluation runner) and test-generation accuracy on
   held-out problems; per-iteration data statistics.  Then a checkpoint.

Design notes
------------
- *De-duplication* embeds the problem text (signature + docstring) with the hashing embedder of
  character 3- to 5-grams (:class:`gasp_rl.backends.embedder.HashingEmbedder`); cosine similarity
  above ``dedup_threshold`` to a seed, to the template's worked example or to an earlier synthetic
  problem is a duplicate.  Problems that differ only in a name or a word are caught, no weights
  are needed, and it costs microseconds.  ``solver_verifier.dedup_embedder=policy`` uses the
  policy's own embedder instead.
- *A unit test* is a list of ``assert`` statements of the form ``assert f(<literals>) == <literal>``
  (or ``assert f(...)``, ``assert not f(...)``, ``... is None/True/False``).  Everything else the
  verifier writes (a re-definition of ``f``, prints, tautologies such as ``f(x) == f(x)``) is
  dropped before execution: a test that re-defines ``f`` would pass for every solution.
- *Test-generation accuracy* (SPEC 9 step 5): the fraction of generated tests that the known-
  correct solution passes, and the fraction that reject a known-wrong one.  The known-wrong
  solution is the reference with its result perturbed (``not r``, ``r + 1``, ``r + "?"``, one extra
  element...): wrong on every input, yet with the right signature, so only a test that checks the
  value rejects it.  A problem whose perturbed reference still passes the official tests is left
  out of the rejection rate.
- Training data are the model's own raw completions (on-policy text), so DPO's log-ratios are
  those of outputs the policy actually produces.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gasp_rl.algorithms.rlvr import derive_seed as _derive_seed
from gasp_rl.algorithms.selfplay import PhaseClock
from gasp_rl.config import Config, SolverVerifierConfig
from gasp_rl.core.agreement import Selection, matrix_stats, select_by_agreement, training_indices
from gasp_rl.core.jobs import Job, Limits, Verdict
from gasp_rl.core.novelty import VectorBuffer
from gasp_rl.core.parsing import (
    PYTHON_FENCE_TAGS,
    STOP_AFTER_CODE_BLOCK,
    extract_code,
    fenced_blocks,
    parses,
)
from gasp_rl.core.prompts import render_chat
from gasp_rl.core.tasks import Problem
from gasp_rl.runs import RunStore, atomic_write_text, read_records
from gasp_rl.seams import Chat, Completion, Embedder, Executor, Generator, SamplingParams, generate_prefilled

log = logging.getLogger(__name__)

COMMAND = "solver-verifier"
#: Characters of model text kept per record (run directories stay small).
RECORD_CHARS = 2000


def derive_seed(base: int, *parts: object) -> int:
    """A seed per (run seed, step, ...) that does not depend on Python's string hashing."""
    return _derive_seed(base, "sol-ver", *parts)


# ====================================================================== 1. problem synthesis


@dataclass(frozen=True)
class Rejected:
    """Why a piece of model text was not usable (recorded, never raised)."""

    reason: str
    detail: str = ""


def parse_problem(text: str) -> tuple[str, str, str] | Rejected:
    """A synthesised problem as ``(prompt, entry_point, description)``, or why not.

    The prompt is the HumanEval form: the top-level imports, then the first function's signature
    and docstring only (any body the model wrote is dropped: SPEC 9 problems are a description
    plus a signature).
    """
    code = extract_code(text)
    if code is None:
        return Rejected("no_code")
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        # the body is dropped anyway: a broken or cut body after a complete docstring is fine
        code = cut_after_docstring(code)
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return Rejected("syntax_error", str(e)[:200])
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if fn is None:
        return Rejected("no_function")
    doc = ast.get_docstring(fn)
    if not doc or len(doc.split()) < 4:
        return Rejected("no_docstring", "the function needs a docstring of at least 4 words")
    lines = code.split("\n")
    imports = [
        "\n".join(lines[n.lineno - 1 : n.end_lineno])
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno < fn.lineno
    ]
    header = "\n".join(lines[fn.lineno - 1 : fn.body[0].end_lineno])
    prompt = ("\n".join(imports) + "\n\n\n" if imports else "") + header + "\n"
    if not parses(prompt):
        return Rejected("syntax_error", "signature and docstring do not parse on their own")
    return prompt, fn.name, doc.strip()


def cut_after_docstring(code: str) -> str:
    """``code`` up to the line that closes the docstring of its first top-level ``def`` (the text
    is returned whole when there is no such docstring)."""
    lines = code.split("\n")
    start = next((k for k, line in enumerate(lines) if line.startswith("def ")), None)
    if start is None:
        return code
    rest = "\n".join(lines[start:])
    m = re.search(r'("""|\'\'\')', rest)
    if m is None:
        return code
    close = rest.find(m.group(1), m.end())
    if close < 0:
        return code
    return "\n".join(lines[:start]) + ("\n" if start else "") + rest[: close + 3]


def example_problem_texts() -> list[str]:
    """The problems shown in the synthesis template's worked example (copying them is a duplicate)."""
    chat = render_chat("solver_verifier_synthesize", seed="")
    return [c for m in chat[:-1] if (c := extract_code(m["content"])) and parses(c)]


class Deduplicator:
    """Near-duplicate filter over problem texts: cosine similarity of embeddings against a buffer."""

    def __init__(self, embedder: Embedder, threshold: float) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.buffer = VectorBuffer()

    def add(self, texts: Sequence[str]) -> None:
        if texts:
            self.buffer.add(self.embedder.embed(list(texts)))

    def similarity(self, text: str) -> float:
        """Largest cosine similarity of ``text`` to anything in the buffer (-1 when empty)."""
        return float(self.buffer.max_similarity(self.embedder.embed([text]))[0])

    def admit(self, text: str) -> tuple[bool, float]:
        """(is new, similarity); a new text joins the buffer at once (de-dup within a batch too)."""
        sim = self.similarity(text)
        if sim > self.threshold:
            return False, sim
        self.add([text])
        return True, sim


@dataclass
class ProblemProposal:
    """One synthesis attempt; becomes a ``proposals.jsonl`` record."""

    id: str
    iteration: int
    seed_id: str
    raw: str
    problem: Problem | None = None
    rejection_reason: str | None = None
    detail: str = ""
    similarity: float | None = None

    @property
    def accepted(self) -> bool:
        return self.problem is not None

    def record(self) -> dict[str, Any]:
        p = self.problem
        return {
            "id": self.id,
            "iteration": self.iteration,
            "phase": "synthesis",
            "parent_id": self.seed_id,
            "task_type": "sol-ver",
            "code": p.prompt if p else None,
            "entry_point": p.entry_point if p else None,
            "message": p.meta.get("description", "") if p else "",
            "raw": self.raw[:RECORD_CHARS],
            "valid": self.rejection_reason not in _PARSE_REASONS,
            "accepted": self.accepted,
            "rejection_reason": self.rejection_reason,
            "detail": self.detail,
            "similarity_question": self.similarity,
        }


_PARSE_REASONS = ("no_code", "syntax_error", "no_function", "no_docstring")


def synthesise(
    generator: Generator,
    seeds: Sequence[Problem],
    dedup: Deduplicator,
    *,
    iteration: int,
    wanted: int,
    oversample: int,
    rounds: int,
    max_new_tokens: int,
    temperature: float,
    seed: int,
) -> list[ProblemProposal]:
    """Up to ``rounds`` rounds of proposals, each shown one random seed problem, until ``wanted``
    new problems are accepted; a round samples ``oversample`` proposals per problem still missing.
    Returns every proposal (accepted or not)."""
    proposals: list[ProblemProposal] = []
    n_accepted = 0
    for r in range(rounds):
        if n_accepted >= wanted:
            break
        rng = random.Random(derive_seed(seed, "synth-seeds", iteration, r))
        shown = [rng.choice(seeds) for _ in range((wanted - n_accepted) * oversample)]
        chats = [render_chat("solver_verifier_synthesize", seed=s.prompt.strip("\n")) for s in shown]
        params = SamplingParams(
            n=1,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=derive_seed(seed, "synth", iteration, r),
            stop=list(STOP_AFTER_CODE_BLOCK),
            purpose="sv_synthesize",
        )
        for k, (s, comps) in enumerate(zip(shown, generator.generate(chats, params))):
            text = comps[0].text if comps else ""
            prop = ProblemProposal(
                id=f"sv{iteration}-{r}-{k}", iteration=iteration, seed_id=s.problem_id, raw=text
            )
            proposals.append(prop)
            if n_accepted >= wanted:
                prop.rejection_reason = "enough_problems"
                continue
            parsed = parse_problem(text)
            if isinstance(parsed, Rejected):
                prop.rejection_reason, prop.detail = parsed.reason, parsed.detail
                continue
            prompt, entry_point, description = parsed
            new, prop.similarity = dedup.admit(prompt)
            if not new:
                prop.rejection_reason = "duplicate"
                prop.detail = f"cosine similarity {prop.similarity:.3f} > {dedup.threshold}"
                continue
            prop.problem = Problem(
                problem_id=prop.id,
                prompt=prompt,
                kind="check",
                entry_point=entry_point,
                source="sol-ver",
                meta={"description": description, "seed_id": s.problem_id, "iteration": iteration},
            )
            n_accepted += 1
    return proposals


# ====================================================================== 2. sampling both roles


def solution_program(problem: Problem, text: str) -> str | Rejected:
    """The program a solver answer stands for, assembled exactly as evaluation does it
    (:func:`gasp_rl.eval.grading.solution_program`), or why there is none."""
    from gasp_rl.eval.grading import solution_program as assemble

    program = assemble(problem, text)
    if not program.code:
        return Rejected("no_code", program.reason)
    if not parses(program.code):
        return Rejected("syntax_error")
    return program.code


#: AST nodes a constant expression may contain: values, containers and arithmetic, but no name,
#: call, attribute or subscript, so it means the same in any program (``465 + 1``, ``[0] * 3``).
_CONSTANT_NODES = (
    ast.Constant, ast.List, ast.Tuple, ast.Set, ast.Dict, ast.UnaryOp, ast.BinOp, ast.Load,
    ast.operator, ast.unaryop,
)  # fmt: skip


def _literal(node: ast.expr) -> bool:
    """Whether ``node`` is a constant expression (see ``_CONSTANT_NODES``)."""
    return all(isinstance(n, _CONSTANT_NODES) for n in ast.walk(node))


def _unit_call(node: ast.expr, entry_point: str) -> bool:
    """``entry_point(<literal>, ...)``: one call of the function under test on concrete values."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == entry_point
        and all(_literal(a) for a in node.args)
        and all(kw.arg is not None and _literal(kw.value) for kw in node.keywords)
    )


def is_unit_assert(node: ast.stmt, entry_point: str) -> bool:
    """Whether ``node`` checks one call of ``entry_point`` on constants against a constant result:
    ``assert f(..) == v`` / ``v == f(..)``, ``assert f(..)``, ``assert not f(..)``,
    ``assert f(..) is None|True|False``."""
    if not isinstance(node, ast.Assert):
        return False
    t = node.test
    if isinstance(t, ast.UnaryOp) and isinstance(t.op, ast.Not):
        t = t.operand
    if _unit_call(t, entry_point):
        return True
    if isinstance(t, ast.Compare) and len(t.ops) == 1:
        left, right, op = t.left, t.comparators[0], t.ops[0]
        if isinstance(op, ast.Eq):
            return (_unit_call(left, entry_point) and _literal(right)) or (
                _unit_call(right, entry_point) and _literal(left)
            )
        if isinstance(op, ast.Is):
            return (
                _unit_call(left, entry_point)
                and isinstance(right, ast.Constant)
                and right.value in (None, True, False)
            )
    return False


def _statements(source: str) -> list[ast.stmt]:
    """Top-level statements of ``source``; if it does not parse as a whole, of each line that does."""
    try:
        return list(ast.parse(source).body)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        pass
    out: list[ast.stmt] = []
    for line in source.split("\n"):
        try:
            out.extend(ast.parse(line.strip()).body)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    return out


def parse_test(text: str, entry_point: str, max_asserts: int) -> str | Rejected:
    """The unit test in a verifier answer: its top-level unit asserts (module docstring), taken
    from every Python code block (or the whole text when there is no fence), at most
    ``max_asserts``, normalised with ``ast.unparse``."""
    blocks = [b.body for b in fenced_blocks(text) if b.tag in PYTHON_FENCE_TAGS]
    sources = blocks or [text]
    asserts = [
        ast.unparse(node) for src in sources for node in _statements(src) if is_unit_assert(node, entry_point)
    ]
    if not asserts:
        return Rejected("no_unit_assert", f"no `assert {entry_point}(<literals>) == <literal>` line")
    return "\n".join(dict.fromkeys(asserts[:max_asserts])) + "\n"


@dataclass
class Candidate:
    """One sampled solution or test: the raw completion, and the runnable code or why not."""

    text: str
    code: str | None
    reason: str = ""
    finish_reason: str = "stop"

    @property
    def valid(self) -> bool:
        return self.code is not None

    def key(self) -> str:
        """Identity for de-duplicating training examples: the code, else the raw text."""
        return self.code if self.code is not None else self.text

    def record(self) -> dict[str, Any]:
        return {
            "text": self.text[:RECORD_CHARS],
            "code": self.code[:RECORD_CHARS] if self.code else None,
            "reason": self.reason,
            "finish_reason": self.finish_reason,
        }


def close_fence(text: str) -> str:
    """``text`` with its last code block closed again when a stop string cut the closing fence
    off, so training examples show the model a complete answer."""
    text = text.rstrip()
    return text + "\n```" if text.count("```") % 2 == 1 else text


def _candidate(text: str, comp: Completion, parsed: str | Rejected) -> Candidate:
    if isinstance(parsed, Rejected):
        return Candidate(text, None, parsed.reason, comp.finish_reason)
    return Candidate(text, parsed, "", comp.finish_reason)


def solver_prompt(problem: Problem) -> Chat:
    return render_chat(
        "solver_verifier_solve", problem=problem.prompt.strip("\n"), entry_point=problem.entry_point
    )


def verifier_prompt(problem: Problem) -> Chat:
    return render_chat(
        "solver_verifier_test", problem=problem.prompt.strip("\n"), entry_point=problem.entry_point
    )


def verifier_prefill(problem: Problem) -> str:
    """The start of the verifier's answer, written for it (``verifier_prefill``): the opening of
    the asked-for line.  The answer's text (parsed, recorded and trained on) includes it."""
    return f"```python\nassert {problem.entry_point}("


def sample_solutions(
    generator: Generator, problems: Sequence[Problem], params: SamplingParams
) -> list[list[Candidate]]:
    """``params.n`` solver answers per problem, parsed into runnable programs."""
    if not problems:
        return []
    outs = generator.generate([solver_prompt(p) for p in problems], params)
    return [
        [_candidate(t := close_fence(c.text), c, solution_program(p, t)) for c in comps]
        for p, comps in zip(problems, outs)
    ]


def sample_tests(
    generator: Generator,
    problems: Sequence[Problem],
    params: SamplingParams,
    max_asserts: int,
    prefill: bool = False,
) -> list[list[Candidate]]:
    """``params.n`` verifier answers per problem, parsed into assert-based unit tests.  With
    ``prefill`` the answer starts with :func:`verifier_prefill` (the generator must continue a
    final assistant message, as the Hugging Face backend does)."""
    if not problems:
        return []
    starts = [verifier_prefill(p) if prefill else "" for p in problems]
    outs = generate_prefilled(generator, [verifier_prompt(p) for p in problems], params, starts)
    return [
        [_candidate(t := close_fence(c.text), c, parse_test(t, p.entry_point, max_asserts)) for c in comps]
        for p, comps in zip(problems, outs)
    ]


# ====================================================================== 3. the pass matrix


def pass_matrix_jobs(
    solutions: Sequence[Sequence[str | None]], tests: Sequence[Sequence[str | None]], limits: Limits | None
) -> tuple[list[Job], list[tuple[int, int, int]]]:
    """One ``check`` job per (valid solution, valid test) of every problem, and where each goes
    as (problem, solution row, test column).  Invalid candidates get no job (their row / column
    of the matrix stays False)."""
    jobs: list[Job] = []
    where: list[tuple[int, int, int]] = []
    for p, (sols, tsts) in enumerate(zip(solutions, tests)):
        for i, code in enumerate(sols):
            if code is None:
                continue
            for j, test in enumerate(tsts):
                if test is None:
                    continue
                jobs.append(
                    Job(
                        kind="check",
                        code=code,
                        test_code=test,
                        entry_point="",
                        limits=limits,
                        id=f"{p}:{i}:{j}",
                    )
                )
                where.append((p, i, j))
    return jobs, where


def run_pass_matrices(
    executor: Executor,
    solutions: Sequence[Sequence[str | None]],
    tests: Sequence[Sequence[str | None]],
    limits: Limits | None = None,
) -> tuple[list[np.ndarray], list[Verdict]]:
    """Every solution x every test of every problem, in ONE batched ``executor.run`` call (the
    executor spreads it over its workers).  Returns one boolean (solutions x tests) matrix per
    problem, and the verdicts in job order."""
    mats = [np.zeros((len(s), len(t)), dtype=bool) for s, t in zip(solutions, tests)]
    jobs, where = pass_matrix_jobs(solutions, tests, limits)
    verdicts = executor.run(jobs) if jobs else []
    for (p, i, j), v in zip(where, verdicts):
        mats[p][i, j] = v.passed
    return mats, verdicts


# ====================================================================== 4. selection -> training data


@dataclass
class ProblemData:
    """Everything one problem produced in one iteration."""

    problem: Problem
    solutions: list[Candidate]
    tests: list[Candidate]
    matrix: np.ndarray | None = None
    selection: Selection | None = None

    def record(self, iteration: int) -> dict[str, Any]:
        """A ``students.jsonl`` record: the candidates, the pass matrix and the decision."""
        sel = self.selection or Selection(reason="not_run")
        m = self.matrix if self.matrix is not None else np.zeros((0, 0), dtype=bool)
        return {
            "iteration": iteration,
            "phase": "solver",
            "source_id": self.problem.problem_id,
            "task_type": "sol-ver",
            "n": len(self.solutions),
            "mean_reward": float(m.mean()) if m.size else 0.0,
            "entry_point": self.problem.entry_point,
            "prompt": self.problem.prompt,
            "solutions": [c.record() for c in self.solutions],
            "tests": [c.record() for c in self.tests],
            "pass_matrix": m.astype(int).tolist(),
            "kept": sel.kept,
            "drop_reason": sel.reason,
            "trusted_solutions": list(sel.trusted_solutions),
            "trusted_tests": list(sel.trusted_tests),
            "solution_scores": list(sel.solution_scores),
            "test_weights": list(sel.test_weights),
        }


@dataclass
class TrainingData:
    """SFT rows and DPO rows in TRL's conversational prompt-completion / preference formats."""

    sft: list[dict[str, Any]] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text.strip()}]


def select_and_build(problems: Sequence[ProblemData], sv: SolverVerifierConfig) -> TrainingData:
    """Run the agreement selection on each pass matrix and turn the decisions into SFT examples
    and DPO pairs of both roles (``counts`` says how many of each)."""
    data = TrainingData()
    for pd in problems:
        if pd.matrix is None:
            continue
        pd.selection = select_by_agreement(
            pd.matrix,
            [c.valid for c in pd.solutions],
            [c.valid for c in pd.tests],
            min_trusted_solutions=sv.min_trusted_solutions,
            min_trusted_tests=sv.min_trusted_tests,
        )
        solver, verifier = training_indices(
            pd.selection,
            [c.key() for c in pd.solutions],
            [c.key() for c in pd.tests],
            max_sft=sv.max_sft_per_problem,
            max_pairs=sv.max_pairs_per_problem,
        )
        for role, prompt, cands, rd in (
            ("solver", solver_prompt(pd.problem), pd.solutions, solver),
            ("verifier", verifier_prompt(pd.problem), pd.tests, verifier),
        ):
            for i in rd.sft:
                data.sft.append({"prompt": prompt, "completion": _assistant(cands[i].text)})
            for c, r in rd.pairs:
                data.dpo.append(
                    {
                        "prompt": prompt,
                        "chosen": _assistant(cands[c].text),
                        "rejected": _assistant(cands[r].text),
                    }
                )
            data.counts[f"sft_{role}"] += len(rd.sft)
            data.counts[f"dpo_{role}"] += len(rd.pairs)
    return data


def selection_stats(problems: Sequence[ProblemData]) -> dict[str, Any]:
    """Per-iteration data statistics: problems kept, drop reasons, agreement rates."""
    sels = [pd.selection for pd in problems if pd.selection is not None]
    kept = [(pd, pd.selection) for pd in problems if pd.selection is not None and pd.selection.kept]
    mats = [pd.matrix for pd in problems if pd.matrix is not None and pd.matrix.size]

    def mean(xs: list[float]) -> float | None:
        return float(np.mean(xs)) if xs else None

    return {
        "problems": len(problems),
        "kept": len(kept),
        "drop_reasons": dict(Counter(s.reason for s in sels if not s.kept)),
        # agreement rate: the share of a kept problem's solutions (tests) that are trusted
        "solution_agreement": mean([len(s.trusted_solutions) / len(pd.solutions) for pd, s in kept]),
        "test_agreement": mean([len(s.trusted_tests) / len(pd.tests) for pd, s in kept]),
        "pass_rate": mean([matrix_stats(m)["pass_rate"] for m in mats]),
        "solutions_passing_any": mean([matrix_stats(m)["solutions_passing_any"] for m in mats]),
        "tests_passed_by_any": mean([matrix_stats(m)["tests_passed_by_any"] for m in mats]),
    }


# ====================================================================== 5. training with TRL


# ====================================================================== 6. metrics


#: Wraps a reference solution so that it is wrong on every input but keeps its signature:
#: ``{entry}`` is re-bound to a function returning a perturbed result.
_WRONG_WRAPPER = """

_gasp_reference = {entry}


def {entry}(*args, **kwargs):
    r = _gasp_reference(*args, **kwargs)
    if isinstance(r, bool):
        return not r
    if isinstance(r, (int, float)):
        return r + 1
    if isinstance(r, str):
        return r + "?"
    if isinstance(r, (list, tuple)):
        return type(r)(list(r) + [None])
    if r is None:
        return 0
    return None
"""


def reference_program(problem: Problem) -> str | None:
    """The known-correct program of a problem (HumanEval: prompt + canonical solution)."""
    canonical = problem.meta.get("canonical_solution") or ""
    if problem.kind != "check" or not canonical.strip():
        return None
    return problem.prompt + canonical


def wrong_program(problem: Problem) -> str | None:
    """A known-wrong program: the reference with every result perturbed."""
    ref = reference_program(problem)
    return None if ref is None else ref.rstrip("\n") + "\n" + _WRONG_WRAPPER.format(entry=problem.entry_point)


def verifier_accuracy(
    executor: Executor,
    problems: Sequence[Problem],
    tests: Sequence[Sequence[Candidate]],
    limits: Limits | None = None,
) -> dict[str, Any]:
    """SPEC 9.5: of the generated tests (unparseable ones count as failures), the fraction the
    known-correct solution passes, the fraction that reject the known-wrong one, and the fraction
    that do both (a test that separates right from wrong).  One executor batch."""
    jobs: list[Job] = []
    slots: list[tuple[str, int, int]] = []  # (what, problem, test)
    usable = []
    for p, prob in enumerate(problems):
        ref, bad = reference_program(prob), wrong_program(prob)
        if ref is None or bad is None:
            continue
        usable.append(p)
        jobs.append(
            Job("check", code=bad, test_code=prob.check_code, entry_point=prob.entry_point, limits=limits)
        )
        slots.append(("wrong_is_wrong", p, -1))
        for j, t in enumerate(tests[p]):
            if t.code is None:
                continue
            jobs.append(Job("check", code=ref, test_code=t.code, entry_point="", limits=limits))
            slots.append(("correct", p, j))
            jobs.append(Job("check", code=bad, test_code=t.code, entry_point="", limits=limits))
            slots.append(("wrong", p, j))
    verdicts = executor.run(jobs) if jobs else []
    passed = {(w, p, j): v.passed for (w, p, j), v in zip(slots, verdicts)}
    n_tests = accept = reject = both = 0
    n_reject_base = 0
    for p in usable:
        wrong_really_wrong = not passed.get(("wrong_is_wrong", p, -1), True)
        for j, t in enumerate(tests[p]):
            n_tests += 1
            ok = t.code is not None and passed.get(("correct", p, j), False)
            rej = t.code is not None and not passed.get(("wrong", p, j), True)
            accept += ok
            if wrong_really_wrong:
                n_reject_base += 1
                reject += rej
                both += ok and rej

    def frac(a: int, b: int) -> float | None:
        return a / b if b else None

    return {
        "problems": len(usable),
        "tests": n_tests,
        "valid": sum(1 for p in usable for t in tests[p] if t.code is not None),
        "correct_passes": frac(accept, n_tests),
        "rejects_wrong": frac(reject, n_reject_base),
        "discriminating": frac(both, n_reject_base),
    }


# ====================================================================== the algorithm


class Trainer(Protocol):
    """SFT then DPO on the policy in place (:class:`gasp_rl.backends.trl_finetune.TrlTrainer`):
    rows in TRL's conversational prompt-completion / preference formats; returns metrics."""

    def sft(self, rows: list[dict[str, Any]], seed: int) -> dict[str, Any]: ...

    def dpo(self, rows: list[dict[str, Any]], seed: int) -> dict[str, Any]: ...


@dataclass
class Seams:
    """What Sol-Ver runs on: a generator, the SFT + DPO trainer of the same policy, the sandbox
    and an embedder for de-duplication."""

    generator: Generator
    trainer: Trainer
    executor: Executor
    embedder: Embedder
    sync: Callable[[], None] | None = None  # push trained weights to a separate generator (vLLM)


#: The phases of an iteration (the progress display shows them).
PHASES = ("synthesis", "sampling", "pass_matrix", "sft", "dpo", "eval", "checkpoint")


class SolVer:
    """The Sol-Ver loop over a set of seams; :meth:`iteration` is SPEC 9's one iteration."""

    def __init__(
        self, cfg: Config, seams: Seams, seeds: Sequence[Problem], heldout: Sequence[Problem]
    ) -> None:
        self.cfg = cfg
        self.sv = cfg.solver_verifier
        self.seams = seams
        self.seeds = list(seeds)
        self.heldout = list(heldout)
        self.dedup = Deduplicator(seams.embedder, self.sv.dedup_threshold)
        self.dedup.add([s.prompt for s in self.seeds] + example_problem_texts())
        self.trainer = seams.trainer
        self.check_limits = Limits(
            cpu_time=self.sv.check_cpu_time,
            memory_mb=cfg.sandbox.memory_mb,
            output_bytes=cfg.sandbox.output_bytes,
            open_files=cfg.sandbox.open_files,
        )
        self.clock = PhaseClock(phases=PHASES)

    def remember(self, problems: Sequence[str]) -> None:
        """Earlier synthetic problems (on resume) join the de-duplication buffer."""
        self.dedup.add(list(problems))

    def _params(self, purpose: str, n: int, max_new_tokens: int, iteration: int) -> SamplingParams:
        g = self.cfg.generation
        return SamplingParams(
            n=n,
            temperature=g.temperature,
            top_p=g.top_p,
            max_new_tokens=max_new_tokens,
            seed=derive_seed(self.cfg.run.seed, purpose, iteration),
            stop=list(STOP_AFTER_CODE_BLOCK),
            purpose=purpose,
        )

    # ------------------------------------------------------------------ one iteration

    def iteration(self, it: int, store: RunStore | None = None) -> dict[str, Any]:
        sv, gen, ex = self.sv, self.seams.generator, self.seams.executor
        m: dict[str, Any] = {"iteration": it, "mode": COMMAND}

        # 1. synthesise problems from the seeds (de-duplicated)
        with self.clock.timed("synthesis"):
            proposals = synthesise(
                gen,
                self.seeds,
                self.dedup,
                iteration=it,
                wanted=sv.problems_per_iteration,
                oversample=sv.synthesis_oversample,
                rounds=sv.synthesis_rounds,
                max_new_tokens=sv.synthesis_max_new_tokens,
                temperature=self.cfg.generation.temperature,
                seed=self.cfg.run.seed,
            )
        problems = [p.problem for p in proposals if p.problem is not None]
        m["synthesis"] = {
            "attempted": len(proposals),
            "accepted": len(problems),
            "by_reason": dict(Counter(p.rejection_reason or "accepted" for p in proposals)),
        }
        m["proposals"] = {"attempted": len(proposals), "accepted": len(problems)}

        # 2. m solutions and m tests per problem
        with self.clock.timed("sampling"):
            sols = sample_solutions(
                gen, problems, self._params("sv_solve", sv.m, sv.solution_max_new_tokens, it)
            )
            tsts = sample_tests(
                gen,
                problems,
                self._params("sv_test", sv.m, sv.test_max_new_tokens, it),
                sv.max_asserts_per_test,
                prefill=sv.verifier_prefill,
            )
        data = [ProblemData(p, s, t) for p, s, t in zip(problems, sols, tsts)]
        m["sampling"] = {
            "solutions": _candidate_stats([c for d in data for c in d.solutions]),
            "tests": _candidate_stats([c for d in data for c in d.tests]),
        }

        # 3. the pass matrix: every solution x every test, one batched executor call
        with self.clock.timed("pass_matrix"):
            t0 = time.perf_counter()
            mats, verdicts = run_pass_matrices(
                ex,
                [[c.code for c in d.solutions] for d in data],
                [[c.code for c in d.tests] for d in data],
                self.check_limits,
            )
            dt = time.perf_counter() - t0
        for d, mat in zip(data, mats):
            d.matrix = mat
        m["pass_matrix"] = {
            "executions": len(verdicts),
            "seconds": round(dt, 3),
            "executions_per_s": round(len(verdicts) / dt, 1) if verdicts and dt > 0 else None,
            "statuses": dict(Counter(v.status.value for v in verdicts)),
        }

        # 4. selection by agreement -> SFT examples and DPO pairs for both roles
        training = select_and_build(data, sv)
        m["selection"] = selection_stats(data)
        m["data"] = dict(training.counts)
        if store is not None:
            for p in proposals:
                store.append("proposals", p.record())
            for d in data:
                store.append("students", d.record(it))

        # 5. SFT, then DPO from the SFT'd policy
        rng = random.Random(derive_seed(self.cfg.run.seed, "shuffle", it))
        rng.shuffle(training.sft)
        rng.shuffle(training.dpo)
        with self.clock.timed("sft"):
            m["sft"] = self.trainer.sft(training.sft, seed=derive_seed(self.cfg.run.seed, "sft", it) % 2**31)
        with self.clock.timed("dpo"):
            m["dpo"] = self.trainer.dpo(training.dpo, seed=derive_seed(self.cfg.run.seed, "dpo", it) % 2**31)
        if self.seams.sync is not None:
            self.seams.sync()

        # 6. metrics on held-out problems
        with self.clock.timed("eval"):
            m["eval"] = self.evaluate(it, store)
        return m

    # ------------------------------------------------------------------ for the run driver

    def start(self, store: RunStore, first: int) -> None:
        """Earlier synthetic problems of the run join the de-duplication buffer; a new run first
        evaluates the base model (``solver_verifier.eval_baseline``), recorded in ``run.json``."""
        self.remember([r["code"] for r in read_records(store.path / "proposals.jsonl") if r.get("accepted")])
        if first == 0 and self.sv.eval_baseline and self.heldout:
            t0 = time.perf_counter()
            base = self.evaluate("base", store)
            store.save_meta(base_eval={k: v for k, v in base.items() if k != "solved"})
            tg = base["test_generation"]
            print(
                f"base model: pass@1 {base['pass@1']:.3f}, tests ok {tg['correct_passes']}, "
                f"reject-wrong {tg['rejects_wrong']} ({time.perf_counter() - t0:.0f}s)",
                flush=True,
            )

    def intro(self, first: int, total: int, store: RunStore) -> str:
        sv = self.sv
        return (
            f"{COMMAND}: {len(self.seeds)} seed problems ({sv.seed_problems}), {sv.problems_per_iteration} problems x "
            f"m={sv.m} per iteration, iterations {first}..{total - 1}, held-out {len(self.heldout)} "
            f"({self.cfg.eval.benchmark}) -> {store.path}"
        )

    def summary(self, it: int, total: int, metrics: dict[str, Any], eta: float) -> str:
        return format_iteration(metrics, total)

    def state(self) -> dict[str, Any]:
        return {}  # the synthetic problems are read back from proposals.jsonl (start)

    def load_state(self, state: dict[str, Any], checkpoint: Path) -> None:
        pass

    def save_files(self, checkpoint: Path) -> None:
        pass

    def checkpoint_context(self) -> Any:
        """TRL's libraries stay quiet while the weights are written."""
        quiet = getattr(self.trainer, "quiet", None)
        return quiet() if callable(quiet) else contextlib.nullcontext()

    # ------------------------------------------------------------------ metrics

    def evaluate(self, tag: int | str, store: RunStore | None = None) -> dict[str, Any]:
        """Code-generation pass@1 (the evaluation runner) and test-generation accuracy on the
        held-out problems."""
        if not self.heldout:
            return {}
        from gasp_rl.eval.grading import grading_limits
        from gasp_rl.eval.runner import EvalRunner, EvalSettings

        sv, ev = self.sv, self.cfg.eval
        settings = EvalSettings(
            n=sv.eval_n,
            ks=(1,),
            temperature=ev.temperature if sv.eval_n > 1 else 0.0,
            top_p=ev.top_p,
            max_new_tokens=ev.max_new_tokens,
            greedy=False,
            seed=self.cfg.run.seed,
        )
        runner = EvalRunner(
            self.seams.generator,
            self.seams.executor,
            settings,
            limits_for=grading_limits(self.cfg),  # gasp eval's grading, budgets included
            chunk_problems=ev.chunk_problems,
        )
        outcome = runner.run(self.heldout)
        params = SamplingParams(
            n=sv.eval_test_samples,
            temperature=ev.temperature if sv.eval_test_samples > 1 else 0.0,
            top_p=ev.top_p,
            max_new_tokens=sv.test_max_new_tokens,
            seed=derive_seed(self.cfg.run.seed, "eval-tests"),
            stop=list(STOP_AFTER_CODE_BLOCK),
            purpose="sv_eval_test",
        )
        tests = sample_tests(
            self.seams.generator, self.heldout, params, sv.max_asserts_per_test, prefill=sv.verifier_prefill
        )
        result = {
            "benchmark": ev.benchmark,
            "n_problems": outcome.n_problems,
            "pass@1": outcome.pass_at_k[1],
            "solved": outcome.solved,
            "test_generation": verifier_accuracy(self.seams.executor, self.heldout, tests, self.check_limits),
        }
        if store is not None:
            _write_eval_summary(store, tag, result)
        return result


def format_iteration(m: dict[str, Any], total: int) -> str:
    """The one-line summary of an iteration."""
    s, sel, d, ev = m["synthesis"], m["selection"], m["data"], m.get("eval") or {}
    tg = ev.get("test_generation") or {}
    pm = m["pass_matrix"]

    def f(x: Any) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return (
        f"iteration {m['iteration'] + 1}/{total}: problems {s['accepted']}/{s['attempted']}, "
        f"pass matrix {pm['executions']} runs ({pm['executions_per_s']}/s), kept {sel['kept']}/{sel['problems']}, "
        f"SFT {d.get('sft_solver', 0)}+{d.get('sft_verifier', 0)} DPO {d.get('dpo_solver', 0)}+{d.get('dpo_verifier', 0)}, "
        f"pass@1 {f(ev.get('pass@1'))}, tests ok {f(tg.get('correct_passes'))} reject-wrong {f(tg.get('rejects_wrong'))}, "
        f"{m['time'].get('total', 0):.0f}s"
    )


def _candidate_stats(cands: Sequence[Candidate]) -> dict[str, Any]:
    return {
        "sampled": len(cands),
        "valid": sum(c.valid for c in cands),
        "by_reason": dict(Counter(c.reason for c in cands if not c.valid)),
        "truncated": sum(c.finish_reason == "length" for c in cands),
    }


def _write_eval_summary(store: RunStore, tag: int | str, result: dict[str, Any]) -> None:
    """``eval/<checkpoint>__<benchmark>.json`` in the shape ``gasp report`` reads."""
    name = f"iter_{tag:06d}" if isinstance(tag, int) else str(tag)
    out = {
        "benchmark": result["benchmark"],
        "checkpoint": name,
        "iteration": tag if isinstance(tag, int) else -1,
        "pass_at_k": {"1": result["pass@1"]},
        "n_problems": result["n_problems"],
        "test_generation": result["test_generation"],
    }
    (store.path / "eval").mkdir(exist_ok=True)
    atomic_write_text(
        store.path / "eval" / f"{name}__{result['benchmark']}.json", json.dumps(out, indent=2) + "\n"
    )


__all__ = [
    "Candidate",
    "Deduplicator",
    "ProblemData",
    "SolVer",
    "parse_problem",
    "parse_test",
    "run_pass_matrices",
    "select_and_build",
    "synthesise",
    "verifier_accuracy",
]
