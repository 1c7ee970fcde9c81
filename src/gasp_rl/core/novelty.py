"""Novelty math (method.md §5 and §8): cosine similarity against buffers, buffer dissimilarity."""

from __future__ import annotations

import numpy as np


def normalize_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def max_cosine(queries: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """For each query row, the largest cosine similarity to any buffer row (-1 if buffer empty)."""
    q = normalize_rows(queries)
    if buffer is None or len(buffer) == 0:
        return np.full(len(q), -1.0, dtype=np.float32)
    return (q @ normalize_rows(buffer).T).max(axis=1)


def buffer_dissimilarity(batch: np.ndarray, buffer: np.ndarray) -> float:
    """``1 - mean_{x in B_t} max_{y in D_<t} cos(e(x), e(y))``; NaN when either side is empty."""
    if len(batch) == 0 or buffer is None or len(buffer) == 0:
        return float("nan")
    return float(1.0 - max_cosine(batch, buffer).mean())


class VectorBuffer:
    """A growing matrix of unit vectors with vectorised nearest-neighbour similarity.

    Amortised O(1) append (capacity doubling); ``max_similarity`` is one matrix-vector product.
    """

    def __init__(self, dim: int | None = None) -> None:
        self._data: np.ndarray | None = None
        self._n = 0
        self.dim = dim

    def __len__(self) -> int:
        return self._n

    @property
    def matrix(self) -> np.ndarray:
        if self._data is None:
            return np.zeros((0, self.dim or 0), dtype=np.float32)
        return self._data[: self._n]

    def add(self, vectors: np.ndarray, normalized: bool = False) -> None:
        """Append rows (``normalized=True`` keeps them bit-exact, e.g. when restoring a saved buffer)."""
        v = np.asarray(vectors, dtype=np.float32) if normalized else normalize_rows(vectors)
        if self._data is None:
            self.dim = v.shape[1]
            self._data = np.zeros((max(16, len(v)), self.dim), dtype=np.float32)
        if v.shape[1] != self.dim:
            raise ValueError(f"vector dim {v.shape[1]} != buffer dim {self.dim}")
        need = self._n + len(v)
        if need > len(self._data):
            grown = np.zeros((max(need, 2 * len(self._data)), self.dim), dtype=np.float32)
            grown[: self._n] = self._data[: self._n]
            self._data = grown
        self._data[self._n : need] = v
        self._n = need

    def max_similarity(self, queries: np.ndarray) -> np.ndarray:
        return max_cosine(queries, self.matrix)
