"""The math of one clipped policy-gradient step (method.md §6), as small pure torch functions.

Kept apart from the model plumbing so that each piece can be tested on hand-made tensors:

- :func:`clipped_surrogate`  the PPO objective with asymmetric clipping (clip-higher, as in DAPO/AZR);
- :func:`kl_k3`              the non-negative ``k3`` estimator of KL(policy || reference);
- :func:`token_weights`      how per-token losses are aggregated into one scalar, expressed as a weight
                             per token so that gradient accumulation over micro-batches gives exactly
                             the gradient of the whole batch.
"""

from __future__ import annotations

from typing import Literal

import torch

LossAgg = Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"]


def clipped_surrogate(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    clip_low: float,
    clip_high: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token PPO loss ``-min(rho * A, clip(rho, 1 - clip_low, 1 + clip_high) * A)``.

    ``rho = exp(logp - old_logp)``.  Returns ``(loss, ratio, clipped)`` with the shape of ``logp``;
    ``clipped`` is 1.0 where the clipped branch was the active (smaller) one, for the clip-fraction
    metric.  With ``old_logp = logp.detach()`` the ratio is 1 and the gradient is plain REINFORCE.
    """
    ratio = torch.exp(logp - old_logp)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high) * advantages
    loss = -torch.minimum(unclipped, clipped)
    return loss, ratio.detach(), (clipped < unclipped).float().detach()


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token ``k3`` estimate of KL(pi || pi_ref) on tokens sampled from ``pi``: ``e^d - d - 1``
    with ``d = ref_logp - logp``.  Unbiased, always >= 0, and low-variance (Schulman 2020)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def token_weights(lengths: list[int], mode: LossAgg) -> list[float]:
    """Weight of each token of sequence ``i`` so that ``sum_i sum_t w_i * loss_it`` is the batch loss.

    - ``token-mean``: every token of the batch counts the same, ``1 / total_tokens`` (DAPO, AZR);
    - ``seq-mean-token-sum``: sum over a sequence's tokens, mean over sequences, ``1 / n_seqs``;
    - ``seq-mean-token-mean``: mean within a sequence, then over sequences, ``1 / (n_seqs * len_i)``
      (the original GRPO).

    Sequences of length 0 get weight 0.  The weights depend on the whole batch, which is why they are
    computed once before the batch is split into micro-batches.
    """
    n = len(lengths)
    total = sum(lengths)
    if n == 0 or total == 0:
        return [0.0] * n
    if mode == "token-mean":
        return [1.0 / total if length else 0.0 for length in lengths]
    if mode == "seq-mean-token-sum":
        return [1.0 / n if length else 0.0 for length in lengths]
    if mode == "seq-mean-token-mean":
        return [1.0 / (n * length) if length else 0.0 for length in lengths]
    raise ValueError(f"unknown loss aggregation {mode!r}")
