"""Machinery shared by the self-play algorithms (GASP, its ablations, AZR).

The algorithms themselves (``gasp.py``, ``azr.py``) read like their papers; this module holds the
steps they share: turning teacher text into a validated task (method.md §5), estimating a pass rate,
grading student answers in the sandbox, the novelty buffers, and turning rewards into one
policy update with Task-Relative REINFORCE++ (method.md §6).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gasp_rl.algorithms.ppo import ppo_update
from gasp_rl.config import Config
from gasp_rl.core import parsing, prompts
from gasp_rl.core.advantages import trr_plus_plus
from gasp_rl.core.jobs import Job, Status, Verdict
from gasp_rl.core.novelty import VectorBuffer, buffer_dissimilarity
from gasp_rl.core.rewards import CORRECT, FORMAT_ERROR, WRONG
from gasp_rl.core.seeding import derive_seed
from gasp_rl.core.tasks import TASK_TYPES, IOPair, ProgramTask
from gasp_rl.eval.grading import program_task_job
from gasp_rl.seams import (
    Completion,
    Embedder,
    Executor,
    Generator,
    Learner,
    PolicySample,
    SamplingParams,
    generate_prefilled,
)

# Sandbox verdict -> rejection reason of a proposal whose reference run failed.
_EXEC_REASON = {
    Status.RUNTIME_ERROR: "runtime_error",
    Status.TIMEOUT: "timeout",
    Status.MEMORY_LIMIT: "memory_limit",
    Status.OUTPUT_LIMIT: "output_limit",
    Status.FORBIDDEN: "forbidden",
    Status.INVALID_INPUT: "input_not_literal",
    Status.WRONG_ANSWER: "unserialisable_output",
    Status.SANDBOX_ERROR: "sandbox_error",
}


class UpdateItem(NamedTuple):
    """One completion in a policy update: its reward, and the TRR++ group (task type, role) it is
    normalised in (roles: ``teacher_lemma``, ``teacher_lift``, ``student``, ``proposer``, ``solver``)."""

    completion: Completion
    reward: float
    task_type: str
    role: str


class Attempt(NamedTuple):
    """A question's student attempts: ``n`` sampled answers and, per answer, whether it passed
    (or, with ``outcomes``, ``correct`` / ``wrong`` / ``format_error``)."""

    task: ProgramTask
    task_type: str
    completions: list[Completion]
    results: list[Any]


def student_record(
    it: int,
    phase: str,
    source_id: str,
    source_phase: str,
    task_type: str,
    rewards: list[float],
    mean: float | None,
    **extra: Any,
) -> dict[str, Any]:
    """One ``students.jsonl`` record: a question's ``n`` student rewards (``phase``: ``estimate``
    for the pass-rate estimate of a proposal, ``solver`` for the student's training attempts)."""
    return {
        "iteration": it,
        "phase": phase,
        "source_id": source_id,
        "source_phase": source_phase,
        "task_type": task_type,
        "n": len(rewards),
        "rewards": rewards,
        **extra,
        "mean_reward": mean,
    }


@dataclass
class Candidate:
    """One teacher proposal on its way through validation; becomes one ``proposals.jsonl`` record."""

    id: str
    iteration: int
    phase: str
    step: int
    #: The teacher's completion (None until it is sampled, and for AZR's proposals).
    completion: Completion | None = None
    task_type: str = "induction"
    goalpost_id: str | None = None
    goalpost_title: str | None = None
    axis: str | None = None
    parent_id: str | None = None
    task: ProgramTask | None = None
    valid: bool = False
    rejection_reason: str | None = None
    detail: str = ""
    pass_rate: float | None = None
    n_student: int = 0
    reward: float = 0.0
    accepted: bool = False
    similarity_question: float | None = None
    similarity_code: float | None = None
    q_vec: np.ndarray | None = None
    c_vec: np.ndarray | None = None
    given_code: str | None = None  # AZR induction: the buffer program the proposer writes inputs for
    alignment: dict[str, Any] | None = None  # to its goalpost (algorithms/beyond.py; lemmas only)
    adherence: dict[str, Any] | None = None  # to its axis (algorithms/beyond.py; lemmas only)

    def reject(self, reason: str, detail: str = "") -> None:
        self.valid, self.rejection_reason, self.detail = False, reason, detail[:500]

    def record(self) -> dict[str, Any]:
        t = self.task
        return {
            "id": self.id,
            "iteration": self.iteration,
            "phase": self.phase,
            "step": self.step,
            "goalpost_id": self.goalpost_id,
            "goalpost_title": self.goalpost_title,
            "axis": self.axis,
            "parent_id": self.parent_id,
            "task_type": self.task_type,
            "code": t.code if t else None,
            "inputs": [p.args for p in t.io] if t else [],
            "outputs": [p.output for p in t.io] if t else [],
            "message": t.message if t else "",
            "raw": self.completion.text[:4000],
            "valid": self.valid,
            "rejection_reason": self.rejection_reason,
            "detail": self.detail,
            "pass_rate": self.pass_rate,
            "n_student": self.n_student,
            "reward": self.reward,
            "accepted": self.accepted,
            "similarity_question": self.similarity_question,
            "similarity_code": self.similarity_code,
            "alignment": self.alignment,
            "adherence": self.adherence,
            "tokens": len(self.completion.token_ids),
        }


def question_text(task: ProgramTask, n_shown: int) -> str:
    """The text a student sees of an induction task: what novelty is measured on."""
    pairs = "\n".join(f"f({p.args}) == {p.output}" for p in task.io[:n_shown])
    return f"{task.message}\n{pairs}"


#: The top-level phases of a self-play iteration (the progress display shows them).
PHASES = ("lemma", "lift", "solver", "propose", "rl", "checkpoint")


@dataclass
class PhaseClock:
    """Seconds per phase within one iteration (for metrics and the iteration benchmark).

    ``on_phase`` (if set) is told each top-level phase (one of ``phases``) as it starts: the
    progress display."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    on_phase: Callable[[str], None] | None = None
    phases: tuple[str, ...] = PHASES

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] += dt

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        if self.on_phase is not None and name in self.phases:
            self.on_phase(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)


class SelfPlayKit:
    """The shared steps.  Holds the seams and the run's novelty buffers; stateless otherwise."""

    def __init__(
        self,
        cfg: Config,
        generator: Generator,
        learner: Learner | None,
        executor: Executor,
        embedder: Embedder,
        sync: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.sync = sync  # pushes learner weights to a separate generator (vLLM); None in-process
        self.generator = generator
        self.learner = learner
        self.executor = executor
        self.embedder = embedder
        self.question_buffer = VectorBuffer()
        self.code_buffer = VectorBuffer()
        self.clock = PhaseClock()

    # ------------------------------------------------------------------ generation

    def sample(
        self,
        prompts_: list,
        purpose: str,
        n: int,
        max_new_tokens: int,
        seed: int,
        prefill: str = "",
        stop: list[str] | None = None,
        stop_pattern: str = "",
    ) -> list[list[Completion]]:
        """``n`` completions per chat.  With a ``prefill`` the answer starts with it, written for
        the model (it conditions the policy like the prompt does); the returned text includes it,
        the token ids are only what the model wrote."""
        g = self.cfg.generation
        params = SamplingParams(
            n=n,
            temperature=g.temperature,
            top_p=g.top_p,
            max_new_tokens=max_new_tokens,
            stop=list(stop or []),
            stop_pattern=stop_pattern,
            seed=seed,
            logprobs=False,  # the learner recomputes them (see update)
            purpose=purpose,
        )
        with self.clock.timed("sample"):
            return generate_prefilled(self.generator, prompts_, params, [prefill] * len(prompts_))

    # ------------------------------------------------------------------ execution

    def execute(self, jobs: list[Job]) -> list[Verdict]:
        with self.clock.timed("exec"):
            return self.executor.run(jobs)

    def validate(self, cands: list[Candidate], n_inputs: int, novelty: bool) -> None:
        """method.md §5: parse, safety, execution + determinism in fresh states, then novelty."""
        n_shown = self.cfg.gasp.n_public_io
        runnable: list[Candidate] = []
        for c in cands:
            if c.given_code is not None:  # AZR induction: inputs + message for a given program
                parsed = parsing.parse_inputs_message(c.completion.text, c.given_code, n_inputs)
            else:
                parsed = parsing.parse_proposal(c.completion.text, n_inputs=n_inputs)  # safety included
            if isinstance(parsed, parsing.Rejection):
                c.reject(parsed.reason, parsed.detail)
                continue
            c.task = ProgramTask(
                code=parsed.code,
                io=[IOPair(a, "") for a in parsed.inputs],
                message=parsed.message,
                task_id=c.id,
            )
            runnable.append(c)
        jobs = [Job("call", code=c.task.code, cases=[p.args for p in c.task.io], id=c.id) for c in runnable]
        with self.clock.timed("exec"):
            results = self.executor.check_determinism(jobs) if jobs else []
        valid: list[Candidate] = []
        for c, (same, v) in zip(runnable, results):
            if v.status != Status.PASSED:
                c.reject(_EXEC_REASON.get(v.status, v.status.value), v.reason)
            elif not same:
                c.reject("nondeterministic", "two runs in fresh interpreters gave different outputs")
            elif max(len(o or "") for o in v.outputs) > self.cfg.sandbox.output_bytes // 10:
                c.reject("output_too_large", "an output's literal text is too long to show a student")
            else:
                for pair, out in zip(c.task.io, v.outputs):
                    pair.output = out or ""
                c.valid = True
                valid.append(c)
        if not valid:
            return
        with self.clock.timed("novelty"):
            q = self.embedder.embed([question_text(c.task, n_shown) for c in valid])
            k = self.embedder.embed([c.task.code for c in valid])
            # only the buffers of ACCEPTED proposals count (method.md §5); duplicates within this batch
            # are settled once acceptance is known (reject_batch_duplicates)
            sq, sk = self.question_buffer.max_similarity(q), self.code_buffer.max_similarity(k)
            for i, c in enumerate(valid):
                c.q_vec, c.c_vec = q[i], k[i]
                c.similarity_question, c.similarity_code = float(sq[i]), float(sk[i])
                if novelty:
                    self._novelty_check(c, "")

    def _novelty_check(self, c: Candidate, where: str) -> None:
        thr = self.cfg.gasp.novelty_threshold
        if c.similarity_question is not None and c.similarity_question > thr:
            c.reject(
                "novelty_question", f"question cosine similarity {c.similarity_question:.3f} > {thr}{where}"
            )
        elif c.similarity_code is not None and c.similarity_code > thr:
            c.reject("novelty_code", f"code cosine similarity {c.similarity_code:.3f} > {thr}{where}")

    def reject_batch_duplicates(
        self, cands: list[Candidate], acceptable: Callable[[Candidate], bool], novelty: bool
    ) -> None:
        """Novelty within one batch, compared with accepted proposals only.

        ``cands`` are taken in order; a valid candidate that ``acceptable`` would accept (its pass
        rate is in the band) is compared with the candidates of this batch accepted before it (the
        buffer was checked by :meth:`validate`).  The first of two near-identical in-band proposals
        is accepted, the later one is rejected as ``novelty_question`` / ``novelty_code`` -- as if
        the first had joined the buffer just before it.  A proposal that is never accepted (out of
        band, invalid) is compared with nothing and makes no later one a duplicate.  The recorded
        similarities become the larger of buffer and batch.  With ``novelty`` off (the
        ``no_rejection_sampling`` ablation) only the similarities are recorded.
        """
        kept: list[Candidate] = []
        for c in cands:
            if not (c.valid and c.q_vec is not None and acceptable(c)):
                continue
            if kept:
                sq = -1.0 if c.similarity_question is None else c.similarity_question
                sk = -1.0 if c.similarity_code is None else c.similarity_code
                c.similarity_question = max([sq] + [float(c.q_vec @ o.q_vec) for o in kept])
                c.similarity_code = max([sk] + [float(c.c_vec @ o.c_vec) for o in kept])
                if novelty:
                    self._novelty_check(c, " (an earlier accepted proposal of this step)")
            if c.valid:
                kept.append(c)

    def admit(self, cands: list[Candidate]) -> None:
        """Accepted proposals join the novelty buffers."""
        acc = [c for c in cands if c.accepted and c.q_vec is not None]
        if acc:
            self.question_buffer.add(np.stack([c.q_vec for c in acc]))
            self.code_buffer.add(np.stack([c.c_vec for c in acc]))

    def dissimilarity(
        self, cands: list[Candidate], q_before: np.ndarray, c_before: np.ndarray
    ) -> dict[str, float | None]:
        acc = [c for c in cands if c.accepted and c.q_vec is not None]
        if not acc:
            return {"question": None, "code": None}

        def val(x: float) -> float | None:
            return None if np.isnan(x) else x

        return {
            "question": val(buffer_dissimilarity(np.stack([c.q_vec for c in acc]), q_before)),
            "code": val(buffer_dissimilarity(np.stack([c.c_vec for c in acc]), c_before)),
        }

    # ------------------------------------------------------------------ students

    def grade(self, task: ProgramTask, task_type: str, view: Any, texts: list[str]) -> list[bool]:
        """Grade student answers to one question in the sandbox: passed or not (format errors are
        wrong answers, method.md §3.3)."""
        return [o == CORRECT for o in self.grade_outcomes(task, task_type, view, texts)]

    def grade_outcomes(self, task: ProgramTask, task_type: str, view: Any, texts: list[str]) -> list[str]:
        """Grade student answers to one question in the sandbox, telling a format error (the answer
        does not parse) from a wrong answer: ``correct`` / ``wrong`` / ``format_error`` per text."""
        jobs = [program_task_job(task, view, text) for text in texts]  # the job gasp eval grades with
        real = [j for j in jobs if j is not None]
        verdicts = iter(self.execute(real) if real else [])
        return [FORMAT_ERROR if j is None else (CORRECT if next(verdicts).passed else WRONG) for j in jobs]

    def attempt(
        self,
        questions: list[tuple[ProgramTask, str]],
        n: int,
        max_new_tokens: int,
        seed: int,
        rng: random.Random,
        outcomes: bool = False,
        induction_split: tuple[int, int] | None = None,
    ) -> list[Attempt]:
        """Student attempts: for each (task, task type) ``n`` sampled answers, graded.

        Returns one :class:`Attempt` per question: passed flags, or with ``outcomes`` the outcome
        of each answer (``correct`` / ``wrong`` / ``format_error``) in place of the flags.  An induction
        question shows the first ``n_public`` I/O pairs and grades on the next ``n_private``:
        ``induction_split`` (default ``gasp.n_public_io, gasp.n_private_io``)."""
        n_pub, n_priv = induction_split or (self.cfg.gasp.n_public_io, self.cfg.gasp.n_private_io)
        views = [t.view(tt, rng, n_pub, n_priv) for t, tt in questions]
        by_type: dict[str, list[int]] = defaultdict(list)
        for i, (_, tt) in enumerate(questions):
            by_type[tt].append(i)
        completions: list[list[Completion]] = [[] for _ in questions]
        for tt, idx in by_type.items():
            outs = self.sample(
                [prompts.student_prompt(views[i]) for i in idx],
                f"student_{tt}",
                n,
                max_new_tokens,
                seed,
                stop=parsing.STOP_AFTER_CODE_BLOCK if tt == "induction" else None,
            )
            for i, o in zip(idx, outs):
                completions[i] = o
        results = []
        for (task, tt), view, comps in zip(questions, views, completions):
            graded = self.grade_outcomes(task, tt, view, [c.text for c in comps])
            results.append(Attempt(task, tt, comps, graded if outcomes else [o == CORRECT for o in graded]))
        return results

    def random_task_type(self, rng: random.Random) -> str:
        return rng.choice(TASK_TYPES)

    # ------------------------------------------------------------------ update

    def update(self, items: list[UpdateItem]) -> dict[str, float]:
        """One policy update on ``items`` (completion, reward, task type, role).

        Advantages are TRR++: normalised within each (task type, role) group, per sequence or per
        token (``trainer.trr_normalisation``).  Every sample with completion tokens reaches the
        learner, also those of advantage zero (single-member or zero-variance groups): they add no
        gradient but count in the token-mean normaliser, as in verl.  The batch becomes
        ``trainer.ppo_mini_batch_size`` mini-batch steps against old log-probs computed once
        (:func:`gasp_rl.algorithms.ppo.ppo_update`); by default one step (ratio exactly 1).
        """
        if self.learner is None or not items:
            return {}
        tc = self.cfg.trainer
        items = [UpdateItem(*i) for i in items]  # plain 4-tuples are accepted too
        adv = trr_plus_plus(
            [i.reward for i in items],
            [i.task_type for i in items],
            [i.role for i in items],
            eps=tc.advantage_eps,
            normalisation=tc.trr_normalisation,
            lengths=[len(i.completion.token_ids) for i in items],
        )
        samples = [
            PolicySample(
                i.completion.prompt_token_ids,
                i.completion.token_ids,
                float(a),
                group=f"{i.task_type}|{i.role}",
            )
            for i, a in zip(items, adv)
            if i.completion.token_ids
        ]
        if not any(abs(s.advantage) > 0 for s in samples):  # type: ignore[arg-type]
            return {"skipped": 1.0}
        # the shuffle seed depends on trainer.seed and the batch itself, so a resumed run replays it
        batch = repr([(len(s.completion_token_ids), s.advantage) for s in samples])
        with self.clock.timed("update"):
            metrics = ppo_update(self.learner, samples, tc, random.Random(derive_seed(tc.seed, "ppo", batch)))
            if self.sync is not None:
                self.sync()
            return metrics


def reason_counts(cands: list[Candidate]) -> dict[str, int]:
    return dict(Counter("accepted" if c.accepted else (c.rejection_reason or "unknown") for c in cands))


def histogram(values: list[float], bins: int = 10) -> list[int]:
    counts, _ = (
        np.histogram(np.clip(values, 0, 1), bins=bins, range=(0.0, 1.0)) if values else (np.zeros(bins), None)
    )
    return [int(x) for x in counts]
