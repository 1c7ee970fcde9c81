"""Real-data RL with verifiable rewards (method.md §1, §6): GRPO on a static set of real problems.

One update reads like the method:

1. sample ``rlvr.batch_problems`` training problems uniformly (without replacement inside a batch);
2. sample ``rlvr.n`` completions of each at ``rlvr.temperature`` (at most ``rlvr.max_new_tokens``);
3. grade every completion in the sandbox: reward 1 iff it passes *all* public and private tests
   (HumanEval: the ``check`` function), else 0 -- a completion without code is a wrong answer;
4. GRPO advantages: the group is the ``n`` completions of one prompt (:func:`gasp_rl.core.advantages.grpo`),
   centred on the group mean and divided by its std when ``rlvr.scale_by_std``;
5. groups whose ``n`` rewards are all equal carry no signal: by default they stay in the batch
   with advantage 0 and count in the learner's token-mean normaliser, as in verl's GRPO; with
   ``rlvr.drop_zero_variance`` they are left out (a larger step: the two are not the same update);
6. the clipped policy-gradient steps of :func:`gasp_rl.algorithms.ppo.ppo_update`: one step by
   default, ``trainer.ppo_mini_batch_size`` mini-batches against old log-probs computed once.

:class:`RLVRStepper` does exactly one such update and is shared by ``gasp rlvr`` (:class:`RLVR`, run
by :mod:`gasp_rl.driver`) and by the GASP loop in ``mode=gasp_plus_rl``, which calls :meth:`RLVRStepper.step`
``gasp.rl_updates_per_iteration`` times after each global iteration.  Same learner, same sandbox,
same grading (:mod:`gasp_rl.eval.grading`) as evaluation, so comparisons are apples to apples.

Reproducibility: all randomness of one update (which problems, the generation seed) comes from a
``random.Random`` derived from ``(base seed, iteration, k)`` where ``k`` counts the updates made in
that iteration.  A resumed run therefore replays exactly the updates a crash lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gasp_rl.algorithms.ppo import ppo_update
from gasp_rl.algorithms.selfplay import PhaseClock
from gasp_rl.config import Config
from gasp_rl.core.advantages import grpo, zero_variance_groups
from gasp_rl.core.seeding import derive_seed
from gasp_rl.core.tasks import Problem
from gasp_rl.errors import DataError, GaspError
from gasp_rl.eval.grading import Grade
from gasp_rl.runs import RunStore
from gasp_rl.seams import (
    Chat,
    Completion,
    Executor,
    Generator,
    Learner,
    PolicySample,
    RecordStore,
    SamplingParams,
)

log = logging.getLogger(__name__)

#: ``task_type`` of the students records written by RLVR (real problems are not program tasks).
REAL_TASK_TYPE = "real"
#: ``phase`` of those records (records.md).
PHASE = "rlvr"
#: File of ``checkpoints/last`` holding where the run is.
STATE_FILE = "state.json"

#: Characters of a completion kept in a students record as an example (one per problem).
EXAMPLE_CHARS = 1500


# ---------------------------------------------------------------------------------- pure pieces


def sample_problem_indices(n_problems: int, k: int, rng: random.Random) -> list[int]:
    """``k`` indices drawn uniformly: without replacement when the set is large enough, else with."""
    if n_problems <= 0:
        raise ValueError("no problems to sample from")
    if k <= n_problems:
        return rng.sample(range(n_problems), k)
    return [rng.randrange(n_problems) for _ in range(k)]


@dataclass(frozen=True)
class GroupAdvantages:
    """GRPO advantages of a batch of groups, and which groups reach the learner."""

    advantages: list[list[float]]
    zero_variance: list[bool]
    kept: list[bool]


def grpo_group_advantages(
    rewards: Sequence[Sequence[float]],
    *,
    scale_by_std: bool = True,
    drop_zero_variance: bool = False,
    eps: float = 1e-6,
) -> GroupAdvantages:
    """Per-group GRPO advantages of ``rewards[g][i]`` (completion ``i`` of prompt ``g``).

    The group key is the position ``g`` in the batch, not the problem id, so a problem drawn twice
    (batch larger than the problem set) forms two groups, as two prompts would in GRPO.
    """
    flat = [float(r) for group in rewards for r in group]
    keys = [g for g, group in enumerate(rewards) for _ in group]
    adv = grpo(flat, keys, eps=eps, scale_by_std=scale_by_std) if flat else []
    flat_zero = zero_variance_groups(flat, keys)
    zero = [g in flat_zero for g in range(len(rewards))]
    out: list[list[float]] = []
    pos = 0
    for g, group in enumerate(rewards):
        # exactly 0 for a zero-variance group, whatever eps (0 / (0 + eps) would be NaN at eps = 0)
        out.append([0.0 if zero[g] else float(a) for a in adv[pos : pos + len(group)]])
        pos += len(group)
    kept = [bool(group) and not (drop_zero_variance and z) for group, z in zip(rewards, zero)]
    return GroupAdvantages(advantages=out, zero_variance=zero, kept=kept)


# ---------------------------------------------------------------------------------- problems


def load_rlvr_problems(cfg: Config) -> list[Problem]:
    """The RLVR training set named by ``rlvr.problems`` (and ``rlvr.problems_path``).

    - ``builtin:NAME`` or ``NAME``: a benchmark of :mod:`gasp_rl.eval.datasets` (e.g.
      ``humaneval-train``, the demo training half; ``livecodebench-train`` with
      ``rlvr.problems_path`` pointing at the local ``test*.jsonl`` file or directory);
    - a path to a ``.jsonl`` of :class:`~gasp_rl.core.tasks.Problem` records (gasp-rl's own format).
    """
    from gasp_rl.eval.datasets import load_problems

    try:
        return load_problems(cfg.rlvr.problems, cfg.rlvr.problems_path, limit=cfg.rlvr.limit)
    except DataError as e:
        raise DataError(f"rlvr.problems: {e}") from None


# ---------------------------------------------------------------------------------- prompt + grading


def problem_prompt(problem: Problem) -> Chat:
    """The chat that asks the policy to solve ``problem``: the evaluation runner's prompt
    (:func:`gasp_rl.eval.runner.eval_prompt`), so training and evaluation ask the same question."""
    from gasp_rl.eval.runner import eval_prompt

    return eval_prompt(problem)


@dataclass
class Graded:
    """One completion with its grade (passed, sandbox status or ``no_code``, reason)."""

    completion: Completion
    grade: Grade

    @property
    def reward(self) -> float:
        return self.grade.score

    @property
    def status(self) -> str:
        return self.grade.status


def grade_completions(
    executor: Executor,
    problems: Sequence[Problem],
    completions: Sequence[Sequence[Completion]],
    cfg: Config | None = None,
) -> list[list[Graded]]:
    """Reward 1 iff a completion passes all (public and private) tests of its problem.

    Grading is ``gasp eval``'s (:func:`gasp_rl.eval.grading.grade_answers`: same program assembly,
    same sandbox job, same per-benchmark CPU budgets and input-size limit from ``cfg``), so a
    training reward and an evaluation verdict never disagree.  All answers go to the executor in
    one batch so its pool stays busy.
    """
    from gasp_rl.eval.grading import grade_answers

    items = [(problem, c.text) for problem, group in zip(problems, completions) for c in group]
    grades = iter(grade_answers(executor, items, cfg))
    return [[Graded(c, next(grades)) for c in group] for group in completions]


# ---------------------------------------------------------------------------------- one update


class RLVRStepper:
    """One GRPO update on real problems per :meth:`step` (used by ``gasp rlvr`` and ``gasp_plus_rl``).

    ``rng`` (optional) only supplies the base seed, drawn once here; without it the base seed is
    ``run.seed``.  Every update then derives its own randomness from ``(base, iteration, k)``.
    ``prompt_fn`` lets a caller change how a problem is asked (default :func:`problem_prompt`).
    ``sync`` is called after each update that changed the weights, when the generator samples
    from a copy of them (``PolicyBundle.sync``: vLLM); in-process backends need nothing.
    """

    def __init__(
        self,
        cfg: Config,
        generator: Generator,
        learner: Learner,
        executor: Executor,
        problems: Sequence[Problem],
        rng: random.Random | None = None,
        prompt_fn: Callable[[Problem], Chat] = problem_prompt,
        sync: Callable[[], None] | None = None,
    ) -> None:
        if not problems:
            raise DataError("RLVR needs at least one training problem")
        if learner is None:
            raise GaspError(f"RLVR trains the policy, but model.backend={cfg.model.backend} has no learner")
        self.cfg = cfg
        self.generator = generator
        self.learner = learner
        self.executor = executor
        self.problems = list(problems)
        self.prompt_fn = prompt_fn
        self.sync = sync
        self.base_seed = rng.getrandbits(62) if rng is not None else cfg.run.seed
        self._prompts: dict[int, Chat] = {}
        self._calls: Counter[int] = Counter()

    def _prompt(self, index: int) -> Chat:
        if index not in self._prompts:
            self._prompts[index] = self.prompt_fn(self.problems[index])
        return self._prompts[index]

    def step(self, iteration: int, store: RunStore | None = None) -> dict[str, Any]:
        """One GRPO update; writes one students record per sampled problem; returns metrics.

        Several calls with the same ``iteration`` (gasp_plus_rl's ``m`` updates) are told apart by a
        per-iteration counter, which also enters the seed.
        """
        rc = self.cfg.rlvr
        k = self._calls[iteration]
        self._calls[iteration] += 1
        rng = random.Random(derive_seed(self.base_seed, "rlvr", iteration, k))
        t0 = time.perf_counter()

        picked = sample_problem_indices(len(self.problems), rc.batch_problems, rng)
        problems = [self.problems[i] for i in picked]
        params = SamplingParams(
            n=rc.n,
            temperature=rc.temperature,
            max_new_tokens=rc.max_new_tokens,
            seed=rng.getrandbits(62),
            purpose=PHASE,
        )
        completions = self.generator.generate([self._prompt(i) for i in picked], params)
        t_gen = time.perf_counter()

        graded = grade_completions(self.executor, problems, completions, self.cfg)
        t_exec = time.perf_counter()

        rewards = [[x.reward for x in group] for group in graded]
        groups = grpo_group_advantages(
            rewards,
            scale_by_std=rc.scale_by_std,
            drop_zero_variance=rc.drop_zero_variance,
            eps=self.cfg.trainer.advantage_eps,
        )
        samples = build_samples(problems, graded, groups)
        if samples:
            shuffle = random.Random(derive_seed(self.cfg.trainer.seed, "ppo", iteration, k))
            learner_metrics = ppo_update(self.learner, samples, self.cfg.trainer, shuffle)
            if self.sync is not None:
                self.sync()
        else:
            learner_metrics = {"skipped": 1.0, "samples": 0.0}
        t_upd = time.perf_counter()

        if store is not None:
            for problem, group, zero, kept in zip(problems, graded, groups.zero_variance, groups.kept):
                store.append("students", group_record(iteration, k, problem, group, zero, kept))
        return rl_metrics(
            problems,
            graded,
            groups,
            samples,
            learner_metrics,
            update=k,
            seconds={
                "generate": t_gen - t0,
                "exec": t_exec - t_gen,
                "update": t_upd - t_exec,
                "total": t_upd - t0,
            },
        )


def make_rl_stepper(
    cfg: Config, policy: Any, executor: Executor, problems: Sequence[Problem] | None = None
) -> RLVRStepper:
    """The RLVR half of ``gasp_plus_rl``: a stepper over the run's policy bundle (generator,
    learner, ``sync``) and sandbox, on ``problems`` (default: those of the ``rlvr`` config section)."""
    return RLVRStepper(
        cfg,
        policy.generator,
        policy.learner,
        executor,
        load_rlvr_problems(cfg) if problems is None else problems,
        sync=getattr(policy, "sync", None),
    )


def build_samples(
    problems: Sequence[Problem], graded: Sequence[Sequence[Graded]], groups: GroupAdvantages
) -> list[PolicySample]:
    """Learner samples of the kept groups.  No ``old_logprobs`` from sampling time (they may have
    been computed in another precision, bf16 autocast or vLLM): :func:`~gasp_rl.algorithms.ppo.ppo_update`
    recomputes them with the learner when it takes several mini-batch steps; with one step the
    ratio is taken against the learner's own detached log-probs (exactly 1)."""
    samples = []
    for problem, group, adv, kept in zip(problems, graded, groups.advantages, groups.kept):
        if not kept:
            continue
        for x, a in zip(group, adv):
            samples.append(
                PolicySample(
                    prompt_token_ids=list(x.completion.prompt_token_ids),
                    completion_token_ids=list(x.completion.token_ids),
                    advantage=a,
                    group=f"{PHASE}|{problem.problem_id}",
                )
            )
    return samples


def group_record(
    iteration: int, k: int, problem: Problem, group: Sequence[Graded], zero_variance: bool, kept: bool
) -> dict[str, Any]:
    """The students.jsonl record of one problem of one update (records.md, phase ``rlvr``)."""
    rewards = [x.reward for x in group]
    example = next((x for x in group if x.reward > 0), group[0] if group else None)
    return {
        "iteration": iteration,
        "phase": PHASE,
        "update": k,
        "source_id": problem.problem_id,
        "source_phase": PHASE,
        "task_type": REAL_TASK_TYPE,
        "kind": problem.kind,
        "n": len(rewards),
        "rewards": rewards,
        "mean_reward": sum(rewards) / len(rewards) if rewards else 0.0,
        "zero_variance": zero_variance,
        "trained": kept,
        "statuses": dict(Counter(x.status for x in group)),
        "completion_tokens": [len(x.completion.token_ids) for x in group],
        "example": example.completion.text[:EXAMPLE_CHARS] if example else "",
        "example_reward": example.reward if example else None,
    }


def rl_metrics(
    problems: Sequence[Problem],
    graded: Sequence[Sequence[Graded]],
    groups: GroupAdvantages,
    samples: Sequence[PolicySample],
    learner_metrics: dict[str, float],
    update: int,
    seconds: dict[str, float],
) -> dict[str, Any]:
    """Metrics of one update (logged under ``rl`` in metrics.jsonl)."""
    flat = [x for group in graded for x in group]
    rewards = [x.reward for x in flat]
    tokens = [len(x.completion.token_ids) for x in flat]
    n_groups = len(graded)
    return {
        "update": update,
        "reward_mean": sum(rewards) / len(rewards) if rewards else 0.0,
        "n_problems": n_groups,
        "n_completions": len(flat),
        "problems_solved": sum(any(x.reward > 0 for x in g) for g in graded),
        "groups_zero_variance": sum(groups.zero_variance),
        "groups_mixed": n_groups - sum(groups.zero_variance),
        "groups_all_pass": sum(
            z and bool(g) and g[0].reward > 0 for z, g in zip(groups.zero_variance, graded)
        ),
        "groups_trained": sum(groups.kept),
        "samples_trained": len(samples),
        "statuses": dict(Counter(x.status for x in flat)),
        "completion_tokens_mean": sum(tokens) / len(tokens) if tokens else 0.0,
        "completion_tokens": sum(tokens),
        "truncated_frac": sum(x.completion.finish_reason == "length" for x in flat) / len(flat)
        if flat
        else 0.0,
        "problem_ids": [p.problem_id for p in problems],
        "time": seconds,
        "learner": dict(learner_metrics),
    }


# ---------------------------------------------------------------------------------- the run


class RLVR:
    """``gasp rlvr`` for the run driver: iteration ``u`` is update ``u`` of the stepper."""

    def __init__(self, cfg: Config, stepper: RLVRStepper) -> None:
        self.cfg, self.stepper = cfg, stepper
        self.clock = PhaseClock()
        self._last: dict[str, Any] = {}

    def iteration(self, it: int, store: RecordStore) -> dict[str, Any]:
        self._last = self.stepper.step(it, store)
        return metrics_record(it, self._last)

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any], checkpoint: Path) -> None:
        pass

    def save_files(self, checkpoint: Path) -> None:
        pass

    def start(self, store: RecordStore, first: int) -> None:
        pass

    def intro(self, first: int, total: int, store: RecordStore) -> str:
        rc = self.cfg.rlvr
        return (
            f"rlvr: {len(self.stepper.problems)} problems ({rc.problems}), updates {first}..{total - 1}, "
            f"{rc.batch_problems} problems x {rc.n} completions per update -> {store.path}"
        )

    def summary(self, it: int, total: int, metrics: dict[str, Any], eta: float) -> str:
        return format_update(it, total, self._last)


def metrics_record(update: int, m: dict[str, Any]) -> dict[str, Any]:
    """metrics.jsonl record of one ``gasp rlvr`` update (records.md: one per update)."""
    return {
        "iteration": update,
        "mode": "rlvr",
        "time": {"solver": m["time"]["generate"], **m["time"]},
        "student_reward": {REAL_TASK_TYPE: m["reward_mean"], "all": m["reward_mean"]},
        "tokens": {"student": m["completion_tokens"]},
        "learner": m["learner"],
        "rl": {k: v for k, v in m.items() if k not in ("learner", "time")},
    }


# ---------------------------------------------------------------------------------- display


def format_update(update: int, total: int, m: dict[str, Any]) -> str:
    """One plain log line per update (non-TTY output, and the TTY's printed history)."""
    lm = m["learner"]
    loss = f"loss {lm['loss']:+.4f} " if "loss" in lm else "no step (no mixed group) "
    return (
        f"update {update + 1}/{total} reward {m['reward_mean']:.3f} "
        f"solved {m['problems_solved']}/{m['n_problems']} mixed {m['groups_mixed']}/{m['n_problems']} "
        f"{loss}tokens {m['completion_tokens_mean']:.0f} "
        f"gen {m['time']['generate']:.1f}s exec {m['time']['exec']:.1f}s upd {m['time']['update']:.1f}s"
    )
