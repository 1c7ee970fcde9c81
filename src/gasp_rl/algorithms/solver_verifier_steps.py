"""The data steps of one Sol-Ver iteration (method.md §9): problem synthesis with de-duplication,
sampling solutions and unit tests, the batched pass matrix, and agreement selection -> SFT rows
and DPO pairs for both roles.  :mod:`gasp_rl.algorithms.solver_verifier` runs them in order.

De-duplication embeds the problem text (signature + docstring) with the embedder it is given
(by default the hashing embedder of character 3- to 5-grams); cosine similarity above
``dedup_threshold`` to a seed, to the template's worked example or to an earlier synthetic
problem is a duplicate.  Training data are the model's own raw completions (on-policy text), so
DPO's log-ratios are those of outputs the policy actually produces.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gasp_rl.config import SolverVerifierConfig
from gasp_rl.core.agreement import Selection, matrix_stats, select_by_agreement, training_indices
from gasp_rl.core.jobs import Job, Limits, Verdict
from gasp_rl.core.novelty import VectorBuffer
from gasp_rl.core.parsing import STOP_AFTER_CODE_BLOCK, Rejection, extract_code, parses
from gasp_rl.core.prompts import render_chat
from gasp_rl.core.seeding import derive_seed as _derive_seed
from gasp_rl.core.tasks import Problem
from gasp_rl.core.unit_tests import close_fence, parse_problem, parse_test
from gasp_rl.seams import Chat, Completion, Embedder, Executor, Generator, SamplingParams, generate_prefilled

#: Characters of model text kept per record (run directories stay small).
RECORD_CHARS = 2000


def derive_seed(base: int, *parts: object) -> int:
    """A seed per (run seed, step, ...) that does not depend on Python's string hashing."""
    return _derive_seed(base, "sol-ver", *parts)


# ====================================================================== 1. problem synthesis


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
            if isinstance(parsed, Rejection):
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


def solution_program(problem: Problem, text: str) -> str | Rejection:
    """The program a solver answer stands for, assembled exactly as evaluation does it
    (:func:`gasp_rl.eval.grading.solution_program`), or why there is none."""
    from gasp_rl.eval.grading import solution_program as assemble

    program = assemble(problem, text)
    if not program.code:
        return Rejection("no_code", program.reason)
    if not parses(program.code):
        return Rejection("syntax_error")
    return program.code


@dataclass
class SampledCode:
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


def _candidate(text: str, comp: Completion, parsed: str | Rejection) -> SampledCode:
    if isinstance(parsed, Rejection):
        return SampledCode(text, None, parsed.reason, comp.finish_reason)
    return SampledCode(text, parsed, "", comp.finish_reason)


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
) -> list[list[SampledCode]]:
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
) -> list[list[SampledCode]]:
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
    solutions: list[SampledCode]
    tests: list[SampledCode]
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
