"""Intervals for accuracies measured on a finite set of items.

``wilson_interval(k, n)``: the 95% Wilson score interval of a proportion ``k / n``,

    (p + z^2/2n +- z * sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),   z = 1.96,

which stays inside [0, 1] and behaves at k = 0 or k = n, unlike the normal approximation.

``paired_difference(a, b)``: the mean difference of two 0/1 verdict vectors on the *same* items
(after - before) with the 95% interval of the paired normal approximation
``mean(d) +- z * sd(d) / sqrt(n)``: a change counts only if its interval excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    if n <= 0:
        return None, None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(
    after: Sequence[float], before: Sequence[float], z: float = Z95
) -> dict[str, float | None]:
    if len(after) != len(before):
        raise ValueError(f"paired verdicts need the same items: {len(after)} vs {len(before)}")
    n = len(after)
    if n == 0:
        return {"diff": None, "lo": None, "hi": None, "n": 0}
    d = [float(a) - float(b) for a, b in zip(after, before)]
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / (n - 1) if n > 1 else 0.0
    half = z * math.sqrt(var / n)
    return {"diff": mean, "lo": mean - half, "hi": mean + half, "n": n}
