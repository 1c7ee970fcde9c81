"""Advantage estimators (SPEC 6): Task-Relative REINFORCE++ and GRPO.  Pure numpy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np


def group_normalize(
    rewards: Sequence[float], keys: Sequence[Hashable], eps: float = 1e-6, scale_by_std: bool = True
) -> np.ndarray:
    """``A = (r - mean_g) / (std_g + eps)`` within each group ``g`` of equal key.

    ``std`` is the unbiased sample standard deviation (as verl / AZR compute it); a group of one has
    mean = its reward and std 1 (advantage 0), so singletons never produce a signal.
    """
    r = np.asarray(rewards, dtype=np.float64)
    if len(r) != len(keys):
        raise ValueError(f"{len(r)} rewards but {len(keys)} keys")
    adv = np.zeros_like(r)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    for idx in groups.values():
        g = r[idx]
        if len(g) == 1:
            continue
        centred = g - g.mean()
        adv[idx] = centred / (g.std(ddof=1) + eps) if scale_by_std else centred
    return adv


def trr_plus_plus(
    rewards: Sequence[float], task_types: Sequence[str], roles: Sequence[str], eps: float = 1e-6
) -> np.ndarray:
    """Task-Relative REINFORCE++ (AZR): group by ``(task type, role)`` and normalise per group."""
    if not len(rewards) == len(task_types) == len(roles):
        raise ValueError("rewards, task_types and roles must have the same length")
    return group_normalize(rewards, [f"{t}|{r}" for t, r in zip(task_types, roles)], eps)


def grpo(
    rewards: Sequence[float], prompt_ids: Sequence[Hashable], eps: float = 1e-6, scale_by_std: bool = True
) -> np.ndarray:
    """GRPO: the group is the set of ``n`` responses to the same prompt."""
    return group_normalize(rewards, prompt_ids, eps, scale_by_std)


def zero_variance_groups(rewards: Sequence[float], keys: Sequence[Hashable]) -> set[Hashable]:
    """Keys whose rewards are all equal (no learning signal)."""
    by: dict[Hashable, set[float]] = defaultdict(set)
    for r, k in zip(rewards, keys):
        by[k].add(float(r))
    return {k for k, vals in by.items() if len(vals) == 1}
