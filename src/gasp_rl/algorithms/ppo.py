"""PPO mini-batch steps over one batch of policy samples (verl / AZR ``ppo_mini_batch_size``).

The one place where a batch of :class:`~gasp_rl.seams.PolicySample` becomes optimizer steps, for
the self-play kit (GASP, AZR) and RLVR alike::

    old = logp_theta_old(batch)                 # once, before the first step (no gradient)
    for epoch in 1..trainer.ppo_epochs:
        for B_k in mini_batches(batch):         # trainer.ppo_mini_batch_size samples each
            one clipped step on B_k with ratio exp(logp_theta - old)

After the first step the policy has moved, so the ratio of the later mini-batches differs from 1
and ``clip_low`` / ``clip_high`` act.  With ``ppo_mini_batch_size = 0`` (or a batch no larger than
it) there is one step and no old log-probs are computed: the learner takes the ratio against its
own detached log-probs (exactly 1, on-policy REINFORCE in the PPO form).

Token-mean normaliser (verl): every sample of a mini-batch counts in its loss denominator,
including samples whose advantage is 0 (a zero-variance group); the learner does not forward them
(they add no gradient) but counts their tokens.  Callers therefore pass *all* samples.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import Sequence
from dataclasses import replace

from gasp_rl.config import TrainerConfig
from gasp_rl.seams import Learner, PolicySample

log = logging.getLogger(__name__)

#: learner metrics that add up over the steps of a batch (the others are averaged)
_SUMMED = ("samples", "samples_trained", "trained_tokens", "completion_tokens", "seconds")


def mini_batches(n: int, size: int, epochs: int = 1, rng: random.Random | None = None) -> list[list[int]]:
    """Index lists of the optimizer steps over ``n`` samples: ``epochs`` passes, each over the
    (shuffled when ``rng`` is given) indices cut into consecutive chunks of ``size`` (the last one
    may be smaller).  ``size = 0`` or ``size >= n``: one step over everything per epoch."""
    if n <= 0:
        return []
    if size <= 0 or size >= n:
        return [list(range(n)) for _ in range(epochs)]
    steps: list[list[int]] = []
    for _ in range(epochs):
        order = list(range(n))
        if rng is not None:
            rng.shuffle(order)
        steps += [order[i : i + size] for i in range(0, n, size)]
    return steps


def _old_logprobs(
    learner: Learner, samples: Sequence[PolicySample], autocast: bool
) -> list[list[float]] | None:
    fn = getattr(learner, "sequence_logprobs", None)
    if fn is None:
        return None
    try:
        accepts_autocast = "autocast" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        accepts_autocast = False
    return fn(samples, autocast=autocast) if accepts_autocast else fn(samples)


def ppo_update(
    learner: Learner, samples: list[PolicySample], trainer: TrainerConfig, rng: random.Random | None = None
) -> dict[str, float]:
    """Optimizer steps over ``samples`` (module docstring); returns the learner metrics summed
    (counts, seconds) or averaged (loss, clip fraction, ratio, ...) over the steps, plus
    ``ppo_steps`` and ``clip_frac_last`` (the clip fraction of the last step).

    ``rng`` shuffles the samples before they are cut into mini-batches (``trainer.ppo_shuffle``).
    A learner without ``sequence_logprobs`` gets the mini-batch steps without old log-probs (each
    step's ratio is then 1), with a warning.
    """
    if not samples:
        return {"skipped": 1.0}
    steps = mini_batches(
        len(samples), trainer.ppo_mini_batch_size, trainer.ppo_epochs, rng if trainer.ppo_shuffle else None
    )
    if len(steps) > 1 and any(s.old_logprobs is None for s in samples):
        old = _old_logprobs(learner, samples, trainer.bf16_autocast)
        if old is None:
            log.warning(
                "%s has no sequence_logprobs: mini-batch steps without old log-probs", type(learner).__name__
            )
        else:
            samples = [
                s if s.old_logprobs is not None else replace(s, old_logprobs=o) for s, o in zip(samples, old)
            ]
    per_step = [learner.update([samples[i] for i in idx]) for idx in steps]
    if len(per_step) == 1:
        return {**per_step[0], "ppo_steps": 1.0}
    keys = {k for m in per_step for k, v in m.items() if isinstance(v, int | float)}
    out: dict[str, float] = {}
    for k in sorted(keys):
        vals = [float(m[k]) for m in per_step if isinstance(m.get(k), int | float)]
        out[k] = sum(vals) if k in _SUMMED else sum(vals) / len(vals)
    out["ppo_steps"] = float(len(per_step))
    if "clip_frac" in per_step[-1]:
        out["clip_frac_last"] = float(per_step[-1]["clip_frac"])
    return out
