"""Machinery shared by the self-play algorithms (GASP, its ablations, AZR).

The algorithms themselves (``gasp.py``, ``azr.py``) read like their papers; this module holds the
steps they share: turning teacher text into a validated task (SPEC 5), estimating a pass rate,
grading student answers in the sandbox, the novelty buffers, and turning rewards into one
policy update with Task-Relative REINFORCE++ (SPEC 6).
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gasp_rl.config import Config
from gasp_rl.core import parsing, prompts
from gasp_rl.core.advantages import trr_plus_plus
from gasp_rl.core.jobs import Job, Status, Verdict
from gasp_rl.core.novelty import VectorBuffer, buffer_dissimilarity
from gasp_rl.core.tasks import TASK_TYPES, IOPair, ProgramTask
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


@dataclass
class Candidate:
    """One teacher proposal on its way through validation; becomes one ``proposals.jsonl`` record."""

    id: str
    iteration: int
    phase: str
    step: int
    completion: Completion
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
            "tokens": len(self.completion.token_ids),
        }


def question_text(task: ProgramTask, n_shown: int) -> str:
    """The text a student sees of an induction task: what novelty is measured on."""
    pairs = "\n".join(f"f({p.args}) == {p.output}" for p in task.io[:n_shown])
    return f"{task.message}\n{pairs}"


@dataclass
class PhaseClock:
    """Seconds per phase within one iteration (for metrics and the iteration benchmark).

    ``on_phase`` (if set) is told each top-level phase as it starts: the progress display."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    on_phase: Callable[[str], None] | None = None

    def add(self, name: str, dt: float) -> None:
        self.seconds[name] += dt

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        if self.on_phase is not None and name in PHASES:
            self.on_phase(name)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0)


PHASES = ("lemma", "lift", "solver", "propose", "rl", "checkpoint")


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
        return generate_prefilled(self.generator, prompts_, params, [prefill] * len(prompts_))

    # ------------------------------------------------------------------ execution

    def execute(self, jobs: list[Job]) -> list[Verdict]:
        with self.clock.timed("exec"):
            return self.executor.run(jobs)

    def validate(self, cands: list[Candidate], n_inputs: int, novelty: bool) -> None:
        """SPEC 5: parse, safety, execution + determinism in fresh states, then novelty."""
        n_shown = self.cfg.gasp.n_public_io
        runnable: list[Candidate] = []
        for c in cands:
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
            thr = self.cfg.gasp.novelty_threshold
            sq, sk = self.question_buffer.max_similarity(q), self.code_buffer.max_similarity(k)
            for i, c in enumerate(valid):
                c.q_vec, c.c_vec = q[i], k[i]
                # compare also with earlier valid proposals of this same batch
                prev_q = [valid[j].q_vec for j in range(i) if valid[j].valid]
                prev_k = [valid[j].c_vec for j in range(i) if valid[j].valid]
                simq = max([float(sq[i])] + [float(q[i] @ v) for v in prev_q])
                simk = max([float(sk[i])] + [float(k[i] @ v) for v in prev_k])
                c.similarity_question, c.similarity_code = simq, simk
                if novelty and simq > thr:
                    c.reject("novelty_question", f"question cosine similarity {simq:.3f} > {thr}")
                elif novelty and simk > thr:
                    c.reject("novelty_code", f"code cosine similarity {simk:.3f} > {thr}")

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
        """Grade student answers to one question in the sandbox (format errors are wrong)."""
        jobs: list[Job | None] = []
        for text in texts:
            if task_type == "induction":
                ans = parsing.parse_induction_answer(text)
                jobs.append(
                    None
                    if isinstance(ans, parsing.Rejection)
                    else Job(
                        "call",
                        code=ans,
                        cases=[p.args for p in view.private],
                        expected=[p.output for p in view.private],
                        entry_point=view.entry_point,
                    )
                )
            elif task_type == "deduction":
                ans = parsing.parse_deduction_answer(text)
                jobs.append(
                    None
                    if isinstance(ans, parsing.Rejection)
                    else Job("compare", cases=[ans], expected=[view.output])
                )
            else:
                ans = parsing.parse_abduction_answer(text)
                jobs.append(
                    None
                    if isinstance(ans, parsing.Rejection)
                    else Job(
                        "call",
                        code=task.code,
                        cases=[ans],
                        expected=[view.output],
                        entry_point=task.entry_point,
                    )
                )
        real = [j for j in jobs if j is not None]
        verdicts = iter(self.execute(real) if real else [])
        return [False if j is None else next(verdicts).passed for j in jobs]

    def attempt(
        self,
        questions: list[tuple[ProgramTask, str]],
        n: int,
        max_new_tokens: int,
        seed: int,
        rng: random.Random,
    ):
        """Student attempts: for each (task, task type) ``n`` sampled answers, graded.

        Returns [(task, type, completions, passed flags)]."""
        views = [
            t.view(tt, rng, self.cfg.gasp.n_public_io, self.cfg.gasp.n_private_io) for t, tt in questions
        ]
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
            results.append((task, tt, comps, self.grade(task, tt, view, [c.text for c in comps])))
        return results

    def random_task_type(self, rng: random.Random) -> str:
        return rng.choice(TASK_TYPES)

    # ------------------------------------------------------------------ update

    def update(self, items: list[tuple[Completion, float, str, str]]) -> dict[str, float]:
        """One clipped policy-gradient step; ``items`` are (completion, reward, task type, role).

        Advantages are TRR++: normalised within each (task type, role) group.  Samples whose
        advantage is zero (single-member or zero-variance groups) carry no gradient and are dropped.
        No ``old_logprobs``, as in RLVR: the update is on-policy (one step per batch), so the ratio
        is taken against the learner's own detached log-probs (exactly 1), not against sampling-time
        log-probs computed in another precision (bf16 autocast, vLLM).
        """
        if self.learner is None or not items:
            return {}
        adv = trr_plus_plus(
            [r for _, r, _, _ in items],
            [t for _, _, t, _ in items],
            [ro for _, _, _, ro in items],
            eps=self.cfg.trainer.advantage_eps,
        )
        samples = [
            PolicySample(c.prompt_token_ids, c.token_ids, float(a), group=f"{t}|{ro}")
            for (c, _, t, ro), a in zip(items, adv)
            if abs(a) > 0 and c.token_ids
        ]
        if not samples:
            return {"skipped": 1.0}
        with self.clock.timed("update"):
            metrics = self.learner.update(samples)
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
