"""Shared prompt prefixes: computing a token prefix once for every row that starts with it.

Self-play batches are full of repeated prompt text: every teacher prompt of a phase starts with the
same system prompt and worked example, every student prompt of a task type with the same two
worked examples, and the ``n`` attempts at one question share the whole prompt.  A decoder's
keys and values at a position depend only on the tokens up to it, so the KV cache of a shared
prefix can be computed once and attended to by every row that starts with it.  That is exact:
the sampler's logits and the learner's log-probs and gradients are those of the full rows (up to
float rounding), for a fraction of the work.

:func:`prefix_groups` decides which rows share what: it partitions a batch into groups, each with
the prefix all its rows start with, choosing the partition that forwards the fewest tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

#: A shared prefix shorter than this is not worth its own forward pass.
MIN_SHARED_PREFIX = 16
#: What one more forward pass costs, in tokens, when choosing groups (per-call overhead).
GROUP_OVERHEAD_TOKENS = 32


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix all of ``seqs`` share."""
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


def prefix_groups(
    prompts: Sequence[Sequence[int]],
    lengths: Sequence[int] | None = None,
    min_prefix: int = MIN_SHARED_PREFIX,
    overhead: int = GROUP_OVERHEAD_TOKENS,
) -> list[tuple[int, list[int]]]:
    """Partition rows ``0..n-1`` into ``(P, rows)`` groups whose rows all start with the same ``P``
    prompt tokens (``P = 0``: a row computed on its own), minimising the tokens forwarded.

    Row ``r`` forwards ``lengths[r]`` tokens (default: its prompt length) on its own; a group of two
    or more rows sharing ``P`` tokens forwards ``P + sum(lengths[r] - P) + overhead``.  ``P`` is at
    most the shortest prompt of the group minus one: every row keeps its last prompt token, whose
    output predicts the first completion token.  Groups are contiguous runs of the rows sorted by
    prompt (in sorted order the prefix a run shares is the minimum of its neighbours' common
    prefixes), and the best partition into runs is found by dynamic programming, O(n^2).
    Deterministic: ties keep the smaller row indices first.
    """
    n = len(prompts)
    if n == 0:
        return []
    total = list(lengths) if lengths is not None else [len(p) for p in prompts]
    order = sorted(range(n), key=lambda i: (list(prompts[i]), i))
    adjacent = [common_prefix_len([prompts[order[k]], prompts[order[k + 1]]]) for k in range(n - 1)]
    inf = float("inf")
    best = [0.0] + [inf] * n
    cut: list[tuple[int, int]] = [(0, 0)] * (n + 1)  # (start of the last run, its shared prefix)
    for i in range(n):  # a run order[i..j]
        shared, shortest, tokens = 1 << 62, 1 << 62, 0
        for j in range(i, n):
            r = order[j]
            tokens += total[r]
            shortest = min(shortest, len(prompts[r]))
            if j == i:
                cost, p = float(total[r]), 0
            else:
                shared = min(shared, adjacent[j - 1])
                p = min(shared, shortest - 1)
                if p < min_prefix:
                    break  # a longer run only shares less
                cost = float(p + tokens - p * (j - i + 1) + overhead)
            if best[i] + cost < best[j + 1]:
                best[j + 1] = best[i] + cost
                cut[j + 1] = (i, p)
    groups: list[tuple[int, list[int]]] = []
    end = n
    while end > 0:
        start, p = cut[end]
        groups.append((p, sorted(order[start:end])))
        end = start
    groups.reverse()
    return groups
