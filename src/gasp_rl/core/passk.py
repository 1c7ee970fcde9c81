"""The unbiased pass@k estimator (Chen et al. 2021; method.md §8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """``1 - C(n - c, k) / C(n, k)``: probability that at least one of ``k`` samples drawn without
    replacement from ``n`` (of which ``c`` are correct) is correct.  Requires ``n >= k``."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k <= 0 or k > n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # numerically stable product form
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_pass_at_k(ns: Sequence[int], cs: Sequence[int], k: int) -> float:
    """pass@k averaged over problems (problems with fewer than ``k`` samples are an error)."""
    if len(ns) != len(cs):
        raise ValueError("ns and cs differ in length")
    if not ns:
        return float("nan")
    return float(np.mean([pass_at_k(n, c, k) for n, c in zip(ns, cs)]))
