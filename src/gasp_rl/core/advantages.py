"""Advantage estimators (method.md §6): Task-Relative REINFORCE++ and GRPO.  Pure numpy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence

import numpy as np


def group_normalize(
    rewards: Sequence[float], keys: Sequence[Hashable], eps: float = 1e-6, scale_by_std: bool = True
) -> np.ndarray:
    """``A = (r - mean_g) / (std_g + eps)`` within each group ``g`` of equal key.

    Statistics are over *sequences* (each response counts once, whatever its length); ``std`` is the
    unbiased sample standard deviation (``ddof=1``).  A group of one gets advantage 0, so
    singletons never produce a signal.  For the token-weighted variant of the AZR code (verl's
    ``masked_whiten`` over response tokens) see :func:`group_normalize_tokens`.
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


def group_normalize_tokens(
    rewards: Sequence[float], keys: Sequence[Hashable], lengths: Sequence[int], eps: float = 1e-6
) -> np.ndarray:
    """Whitening over response *tokens* within each group ``g`` of equal key (verl ``masked_whiten``,
    which the AZR code applies to each (task type, role) batch through REINFORCE++ with gamma 1)::

        m_g = sum_i L_i r_i / T_g,   v_g = sum_i L_i (r_i - m_g)^2 / (T_g - 1),   T_g = sum_i L_i
        A_i = (r_i - m_g) / sqrt(v_g + eps)

    where ``L_i`` is the number of completion tokens of response ``i`` (every token of a response
    carries its reward).  Long responses weigh more in the mean and variance than in
    :func:`group_normalize`.  Groups with fewer than 2 tokens, or of one response, get 0.
    """
    r = np.asarray(rewards, dtype=np.float64)
    w = np.asarray(lengths, dtype=np.float64)
    if not len(r) == len(keys) == len(w):
        raise ValueError(f"{len(r)} rewards, {len(keys)} keys and {len(w)} lengths")
    adv = np.zeros_like(r)
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    for idx in groups.values():
        g, lw = r[idx], w[idx]
        total = lw.sum()
        if len(idx) == 1 or total < 2:
            continue
        mean = float((lw * g).sum() / total)
        var = float((lw * (g - mean) ** 2).sum() / (total - 1))
        adv[idx] = (g - mean) / np.sqrt(var + eps)
    return adv


def trr_plus_plus(
    rewards: Sequence[float],
    task_types: Sequence[str],
    roles: Sequence[str],
    eps: float = 1e-6,
    normalisation: str = "sequence",
    lengths: Sequence[int] | None = None,
) -> np.ndarray:
    """Task-Relative REINFORCE++ (AZR): group by ``(task type, role)`` and normalise per group.

    ``normalisation="sequence"`` is the AZR paper's formula ``A = (r - mean_g) / (std_g + eps)``
    over the responses of a group (:func:`group_normalize`, the default); ``"token"`` is what the
    AZR code computes, whitening over the response tokens of the group
    (:func:`group_normalize_tokens`, needs ``lengths``).
    """
    if not len(rewards) == len(task_types) == len(roles):
        raise ValueError("rewards, task_types and roles must have the same length")
    keys = [f"{t}|{r}" for t, r in zip(task_types, roles)]
    if normalisation == "sequence":
        return group_normalize(rewards, keys, eps)
    if normalisation == "token":
        if lengths is None:
            raise ValueError("token normalisation needs the completion lengths")
        return group_normalize_tokens(rewards, keys, lengths, eps)
    raise ValueError(f"unknown TRR++ normalisation {normalisation!r} (sequence or token)")


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
