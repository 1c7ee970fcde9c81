"""What GASP does beyond the paper (the paper names each as future work; all off by default):

- :class:`GoalpostCurriculum`: dynamic goalposts (``gasp.goalposts_refresh_every``), the math in
  :mod:`gasp_rl.core.curriculum`;
- :class:`LemmaScorer`: goalpost alignment (:mod:`gasp_rl.core.alignment`) and axis adherence
  (:mod:`gasp_rl.core.adherence`) of every lemma, logged per proposal and optionally added to its
  reward (``gasp.alignment_weight``, ``gasp.axis_weight``).

Both receive their seams (generator, executor, embedder, optional judge) from the caller.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gasp_rl.config import Config
from gasp_rl.core import adherence, alignment, curriculum
from gasp_rl.core.tasks import Problem
from gasp_rl.seams import Embedder, Generator, SamplingParams


def goalpost_reference(problem: Problem) -> tuple[str | None, list[str], list[str]]:
    """(reference program, test inputs, expected outputs) of a goalpost, for axis adherence: the
    canonical solution appended to the prompt (HumanEval style) and the literal calls of its check
    function, or its functional tests.  The program is None when the problem ships no solution."""
    solution = problem.meta.get("canonical_solution")
    code = (problem.prompt + solution) if isinstance(solution, str) and solution.strip() else None
    if problem.check_code:
        pairs = adherence.check_pairs(problem.check_code)
        return code, [a for a, _ in pairs], [o for _, o in pairs if o is not None]
    tests = [t for t in problem.all_tests if t.testtype == "functional"]
    return code, [t.input for t in tests], [t.output for t in tests]


class LemmaScorer:
    """Alignment and adherence of lemmas to their goalposts, and the reward terms they add."""

    def __init__(
        self, cfg: Config, goalposts: Sequence[Problem], embedder: Embedder, judge: Generator | None = None
    ) -> None:
        self.g = cfg.gasp
        self.embedder = embedder
        self.judge = judge
        self.index = {p.problem_id: i for i, p in enumerate(goalposts)}
        self.goalposts = list(goalposts)
        self.references = {p.problem_id: goalpost_reference(p) for p in goalposts}
        self._goalpost_vecs: np.ndarray | None = None

    def _vectors(self) -> np.ndarray:
        if self._goalpost_vecs is None:
            self._goalpost_vecs = self.embedder.embed([p.prompt for p in self.goalposts])
        return self._goalpost_vecs

    def score(self, cands: Sequence[Any]) -> None:
        """Set ``alignment`` and ``adherence`` on every valid candidate with a goalpost, and add the
        weighted terms to its reward: ``r + w_align * alignment - w_axis * (1 - adherence)``."""
        todo = [c for c in cands if c.valid and c.task is not None and c.goalpost_id in self.index]
        if not todo:
            return
        if len(self.goalposts) >= 2:
            vecs = self.embedder.embed([alignment.lemma_text(c.task.code, c.task.message) for c in todo])
            scores = alignment.embedding_alignment(
                vecs, self._vectors(), [self.index[c.goalpost_id] for c in todo]
            )
            for c, s in zip(todo, scores):
                c.alignment = s.to_dict()
        if self.judge is not None:
            self._judge(todo)
        for c in todo:
            code, inputs, outputs = self.references[c.goalpost_id]
            if c.axis in ("io", "f") and code is not None:
                a = adherence.axis_adherence(
                    c.axis,
                    c.task.code,
                    [p.args for p in c.task.io],
                    [p.output for p in c.task.io],
                    code,
                    inputs,
                    outputs,
                )
                c.adherence = a.to_dict() if a is not None else None
            c.reward += self.reward_terms(c)

    def reward_terms(self, c: Any) -> float:
        terms = 0.0
        if self.g.alignment_weight and c.alignment:
            value = c.alignment.get("judge", c.alignment.get("margin"))
            terms += self.g.alignment_weight * float(value if value is not None else 0.0)
        if self.g.axis_weight and c.adherence:
            terms -= self.g.axis_weight * (1.0 - float(c.adherence["score"]))
        return terms

    def _judge(self, todo: Sequence[Any]) -> None:
        chats = [
            alignment.judge_prompt(
                self.goalposts[self.index[c.goalpost_id]].prompt, c.task.code, c.task.message
            )
            for c in todo
        ]
        outs = self.judge.generate(chats, SamplingParams(n=1, temperature=0.0, max_new_tokens=96))  # type: ignore[union-attr]
        for c, row in zip(todo, outs):
            score = alignment.parse_judge_score(row[0].text if row else "")
            c.alignment = {**(c.alignment or {}), "judge": score}


class GoalpostCurriculum:
    """The active goalposts of a run and the pool they are refreshed from.

    With ``gasp.goalposts_refresh_every = 0`` every goalpost is active for the whole run (the
    paper).  ``state`` / ``load_state`` carry the active set across a resume."""

    def __init__(self, cfg: Config, goalposts: Sequence[Problem], pool: Sequence[Problem] = ()) -> None:
        g = cfg.gasp
        self.cfg = cfg
        self.every = g.goalposts_refresh_every
        n = g.goalposts_active or len(goalposts)
        self.by_id = {p.problem_id: p for p in [*goalposts, *pool]}
        self.active_ids = [p.problem_id for p in goalposts[:n]]
        self.pool_ids = [p.problem_id for p in [*goalposts[n:], *pool] if p.problem_id not in self.active_ids]
        self.seen: set[str] = set(self.active_ids)
        self.history: list[dict[str, Any]] = []

    @property
    def active(self) -> list[Problem]:
        return [self.by_id[i] for i in self.active_ids]

    def due(self, iteration: int) -> bool:
        """After iteration ``iteration`` (0-based) is done."""
        return curriculum.is_refresh_iteration(iteration + 1, self.every)

    def refresh(self, iteration: int, generator: Generator, executor: Any, seed: int) -> curriculum.Refresh:
        """Evaluate the active goalposts at pass@k, then as many pool candidates as needed; retire
        the solved, promote the failed."""
        from gasp_rl.eval.grading import grade_answers
        from gasp_rl.eval.runner import eval_prompt

        k = self.cfg.gasp.refresh_k
        params = SamplingParams(
            n=k,
            temperature=self.cfg.generation.temperature,
            top_p=self.cfg.generation.top_p,
            max_new_tokens=self.cfg.gasp.refresh_max_new_tokens,
            seed=seed,
            purpose="goalpost_refresh",
        )

        def solved(ids: list[str]) -> dict[str, bool]:
            if not ids:
                return {}
            problems = [self.by_id[i] for i in ids]
            outs = generator.generate([eval_prompt(p) for p in problems], params)
            grades = iter(
                grade_answers(
                    executor, [(p, c.text) for p, row in zip(problems, outs) for c in row], self.cfg
                )
            )
            return {i: any([next(grades).passed for _ in row]) for i, row in zip(ids, outs)}

        active = solved(self.active_ids)
        solved_ids = [i for i in self.active_ids if active[i]]
        candidates = curriculum.next_candidates(self.pool_ids, self.seen, 2 * len(solved_ids))
        self.seen |= set(candidates)
        pool = solved(candidates)
        plan = curriculum.plan_refresh(
            iteration, self.active_ids, solved_ids, [i for i in candidates if not pool[i]]
        )
        self.active_ids = plan.active
        record = {**plan.to_dict(), "k": k, "evaluated_pool": candidates}
        self.history.append(record)
        return plan

    def state(self) -> dict[str, Any]:
        return {"active": list(self.active_ids), "seen": sorted(self.seen), "history": self.history}

    def load_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        unknown = [i for i in state.get("active", []) if i not in self.by_id]
        if unknown:
            raise ValueError(f"resumed goalposts not in the goalpost files: {unknown[:5]}")
        self.active_ids = list(state["active"])
        self.seen = set(state.get("seen", self.active_ids))
        self.history = list(state.get("history", []))
