"""GASP: Guided Asymmetric Self-Play (Algorithm 1 of arXiv 2603.15957), and its ablations.

One global iteration::

    lemmas = PROPOSE(phase="lemma")   # teacher sees goalpost g + axis, proposes an EASIER task
    lifts  = PROPOSE(phase="lift")    # teacher sees only an accepted lemma, proposes a HARDER one
    SOLVE(lemmas + lifts)             # student: each as induction, deduction or abduction

    PROPOSE: up to max_attempts rejection-sampling steps, each: sample proposals, validate
             (method.md §5), estimate the pass rate p from n student attempts, reward r(p; a, b) or
             the format penalty, accept if valid and p in the band, one policy update (TRR++);
             stop once min_accepted proposals are accepted.

Ablations (``gasp.mode``): ``no_io_axis`` (always axis f), ``no_rejection_sampling`` (no novelty
filter), ``one_step_medium`` / ``one_step_hard`` (one proposal stage, shown the goalpost, with the
one-step rewards), ``gasp_plus_rl`` (RLVR updates after each iteration, driven by the loop).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from gasp_rl.algorithms.beyond import GoalpostCurriculum, LemmaScorer
from gasp_rl.algorithms.selfplay import (
    Candidate,
    SelfPlayKit,
    UpdateItem,
    histogram,
    reason_counts,
    student_record,
)
from gasp_rl.config import Config, RewardShape
from gasp_rl.core import parsing, prompts
from gasp_rl.core.rewards import in_band, pass_rate, proposal_reward
from gasp_rl.core.tasks import Problem, ProgramTask
from gasp_rl.seams import Generator, RecordStore

AXES = ("io", "f")


class GASP:
    """The GASP algorithm over the shared self-play kit."""

    def __init__(
        self,
        cfg: Config,
        kit: SelfPlayKit,
        goalposts: list[Problem],
        pool: Sequence[Problem] = (),
        judge: Generator | None = None,
    ) -> None:
        if not goalposts:
            raise ValueError("GASP needs at least one goalpost")
        self.cfg = cfg
        self.g = cfg.gasp
        self.kit = kit
        self.one_step = self.g.mode in ("one_step_medium", "one_step_hard")
        # beyond the paper: goalposts that move (off: all active, fixed) and scored lemmas
        self.curriculum = GoalpostCurriculum(cfg, goalposts, pool)
        self.scorer = LemmaScorer(cfg, [*goalposts, *pool], kit.embedder, judge)
        # beyond the paper: accepted proposals shown to the teacher (gasp.teacher_references > 0)
        self.references: list[ProgramTask] = []

    @property
    def goalposts(self) -> list[Problem]:
        """The active goalposts (all of them unless ``gasp.goalposts_refresh_every`` > 0)."""
        return self.curriculum.active

    # ------------------------------------------------------------------ Algorithm 1

    def iteration(self, it: int, store: RecordStore) -> dict[str, Any]:
        rng = random.Random(f"{self.cfg.run.seed}/{it}/gasp")
        self._seen: list[Candidate] = []  # every proposal of this iteration
        self._student_tokens = 0
        self._last_learner: dict[str, float] = {}
        q0, c0 = self.kit.question_buffer.matrix.copy(), self.kit.code_buffer.matrix.copy()
        if self.one_step:
            hard = self.g.mode == "one_step_hard"
            shape = self.g.one_step_hard_reward if hard else self.g.one_step_medium_reward
            with self.kit.clock.timed("lemma"):
                lemmas = self.propose(it, "one_step", self.g.one_step_band, shape, rng, store)
            lifts: list[Candidate] = []
        else:
            with self.kit.clock.timed("lemma"):
                lemmas = self.propose(it, "lemma", self.g.lemma_band, self.g.lemma_reward, rng, store)
            with self.kit.clock.timed("lift"):
                lifts = self.propose(
                    it, "lift", self.g.lift_band, self.g.lift_reward, rng, store, parents=lemmas
                )
        with self.kit.clock.timed("solver"):
            student = self.solve(it, lemmas + lifts, rng, store)
        refresh = None
        if self.curriculum.due(it):
            with self.kit.clock.timed("refresh"):
                refresh = self.curriculum.refresh(
                    it, self.kit.generator, self.kit.executor, rng.randrange(2**31)
                )
            store.append("goalposts", {**self.curriculum.history[-1]})
        all_c = self._seen
        out = {
            "proposals": {
                "attempted": len(all_c),
                "accepted": sum(c.accepted for c in all_c),
                "by_reason": reason_counts(all_c),
            },
            "acceptance_rate": sum(c.accepted for c in all_c) / max(1, len(all_c)),
            "teacher_reward": {
                ph: _mean([c.reward for c in all_c if c.phase == ph]) for ph in {c.phase for c in all_c}
            },
            "student_reward": student,
            "pass_rate_hist": {
                ph: histogram([c.pass_rate for c in all_c if c.phase == ph and c.pass_rate is not None])
                for ph in {c.phase for c in all_c}
            },
            "buffer_dissimilarity": self.kit.dissimilarity(all_c, q0, c0),
            "tokens": {
                "teacher": sum(len(c.completion.token_ids) for c in all_c),
                "student": self._student_tokens,
            },
            "learner": self._last_learner,
        }
        out.update(_lemma_scores(all_c))
        if refresh is not None:
            out["goalposts"] = {"retired": len(refresh.retired), "promoted": len(refresh.promoted)}
        return out

    def propose(
        self,
        it: int,
        phase: str,
        band: tuple[float, float],
        shape: RewardShape,
        rng: random.Random,
        store: RecordStore,
        parents: list[Candidate] | None = None,
    ) -> list[Candidate]:
        """One teacher phase with rejection sampling; returns the accepted proposals."""
        if phase == "lift" and not parents:
            return []
        accepted: list[Candidate] = []
        for step in range(self.g.max_attempts):
            cands, chats = self._contexts(it, phase, step, rng, parents)
            outs = self.kit.sample(
                chats,
                phase,
                1,
                self.cfg.generation.max_new_tokens,
                seed=rng.randrange(2**31),
                stop_pattern=parsing.STOP_AFTER_MESSAGE_LINE,
                prefill=self.g.proposal_prefill,
            )
            for c, o in zip(cands, outs):
                c.completion = o[0]
            novelty = self.g.mode != "no_rejection_sampling"
            self.kit.validate(cands, self.g.n_public_io + self.g.n_private_io, novelty=novelty)
            self._estimate(it, [c for c in cands if c.valid], rng, store)
            # of two near-identical in-band proposals of this step the first is accepted
            self.kit.reject_batch_duplicates(cands, lambda c: in_band(c.pass_rate, band), novelty)
            for c in cands:
                c.reward = proposal_reward(
                    c.pass_rate if c.valid else None, shape.a, shape.b, self.g.format_penalty
                )
                c.accepted = c.valid and in_band(c.pass_rate, band)
            if phase in ("lemma", "one_step"):
                self.scorer.score(cands)  # alignment + adherence, logged; reward terms when weighted
            for c in cands:
                if c.valid and not c.accepted:
                    c.rejection_reason = "out_of_band"
                    c.detail = f"pass rate {c.pass_rate:.2f} outside [{band[0]}, {band[1]}]"
                store.append("proposals", c.record())
            self.kit.admit(cands)
            if self.g.teacher_references:
                self.references += [c.task for c in cands if c.accepted]
            self._seen.extend(cands)
            accepted += [c for c in cands if c.accepted]
            # one policy update per rejection-sampling step (teacher samples, TRR++)
            self._last_learner = self.kit.update(
                [UpdateItem(c.completion, c.reward, "induction", f"teacher_{phase}") for c in cands]
            )
            if len(accepted) >= self.g.min_accepted:
                break
        return accepted

    def solve(
        self, it: int, accepted: list[Candidate], rng: random.Random, store: RecordStore
    ) -> dict[str, float | None]:
        """Solver phase: each accepted task as induction, deduction or abduction (uniformly)."""
        if not accepted:
            return {"all": None}
        questions = [(c.task, self.kit.random_task_type(rng)) for c in accepted]
        results = self.kit.attempt(
            questions,
            self.g.solver_samples,
            self.cfg.generation.max_new_tokens,
            seed=rng.randrange(2**31),
            rng=rng,
        )
        items: list[UpdateItem] = []
        by_type: dict[str, list[float]] = {}
        for c, (_task, tt, comps, passed) in zip(accepted, results):
            rewards = [float(p) for p in passed]
            by_type.setdefault(tt, []).extend(rewards)
            items += [UpdateItem(comp, r, tt, "student") for comp, r in zip(comps, rewards)]
            self._student_tokens += sum(len(comp.token_ids) for comp in comps)
            store.append("students", student_record(it, "solver", c.id, c.phase, tt, rewards, _mean(rewards)))
        self._last_learner = self.kit.update(items)
        out = {tt: _mean(v) for tt, v in by_type.items()}
        out["all"] = _mean([r for v in by_type.values() for r in v])
        return out

    # ------------------------------------------------------------------ helpers

    def _contexts(self, it: int, phase: str, step: int, rng: random.Random, parents: list[Candidate] | None):
        n_inputs = self.g.n_public_io + self.g.n_private_io
        cands, chats = [], []
        for j in range(self.g.lemmas_per_step):
            cid = f"it{it}-{phase}-s{step}-{j}"
            if phase == "lift":
                parent = parents[j % len(parents)]
                c = Candidate(
                    cid,
                    it,
                    phase,
                    step,
                    goalpost_id=parent.goalpost_id,
                    goalpost_title=parent.goalpost_title,
                    axis=parent.axis,
                    parent_id=parent.id,
                )
                chats.append(prompts.lift_prompt(parent.task, parent.axis, n_inputs, self._shown(rng)))
            else:
                g = rng.choice(self.goalposts)
                axis = "f" if self.g.mode == "no_io_axis" else rng.choice(AXES)
                c = Candidate(
                    cid,
                    it,
                    phase,
                    step,
                    goalpost_id=g.problem_id,
                    goalpost_title=g.problem_id,
                    axis=None if phase == "one_step" else axis,
                )
                if phase == "one_step":
                    level = "hard" if self.g.mode == "one_step_hard" else "medium"
                    chats.append(prompts.one_step_prompt(g.prompt, level, n_inputs))
                else:
                    chats.append(prompts.lemma_prompt(g.prompt, axis, n_inputs, self._shown(rng)))
            cands.append(c)
        return cands, chats

    def _shown(self, rng: random.Random) -> list[ProgramTask]:
        """``gasp.teacher_references`` accepted proposals drawn at random (none while off or empty)."""
        k = min(self.g.teacher_references, len(self.references))
        return rng.sample(self.references, k) if k else []

    def _estimate(self, it: int, valid: list[Candidate], rng: random.Random, store: RecordStore) -> None:
        """Pass rate p of each valid proposal from n student induction attempts."""
        if not valid:
            return
        results = self.kit.attempt(
            [(c.task, "induction") for c in valid],
            self.g.n_student,
            self.cfg.generation.max_new_tokens,
            seed=rng.randrange(2**31),
            rng=rng,
        )
        for c, (_, _, comps, passed) in zip(valid, results):
            c.pass_rate, c.n_student = pass_rate(passed), len(passed)
            self._student_tokens += sum(len(comp.token_ids) for comp in comps)
            rewards = [float(p) for p in passed]
            store.append(
                "students", student_record(it, "estimate", c.id, c.phase, "induction", rewards, c.pass_rate)
            )

    # ------------------------------------------------------------------ state for resume

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {"goalposts": self.curriculum.state()} if self.curriculum.every else {}
        if self.g.teacher_references:
            out["references"] = [t.to_dict() for t in self.references]
        return out

    def load_state(self, state: dict[str, Any]) -> None:
        self.curriculum.load_state(state.get("goalposts", {}))
        self.references = [ProgramTask.from_dict(d) for d in state.get("references", [])]


def _lemma_scores(cands: list[Candidate]) -> dict[str, Any]:
    """Mean alignment margin and axis adherence of this iteration's scored lemmas, per axis."""
    scored = [c for c in cands if c.alignment or c.adherence]
    if not scored:
        return {}
    out: dict[str, Any] = {"alignment": {}, "adherence": {}}
    for axis in sorted({c.axis or "none" for c in scored}):
        group = [c for c in scored if (c.axis or "none") == axis]
        out["alignment"][axis] = _mean([c.alignment["margin"] for c in group if c.alignment])
        out["adherence"][axis] = _mean([c.adherence["score"] for c in group if c.adherence])
    return out


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None
