"""A KV cache for the sampler whose layers grow in place.

transformers' ``DynamicCache`` appends a decoded token's keys and values with ``torch.cat``: every
step of every layer copies the whole cache, which on a CPU costs about as much as the attention that
reads it (measured at 16 rows x 500 positions).  :class:`GrowingLayer` keeps its keys and values in
buffers with room for ``HEADROOM`` more positions, so an append is a write of the new position;
a buffer is reallocated only when it is full or the batch changes shape (rows leave or join).
The tensors the model attends to are views of the buffers' filled part, which SDPA reads as fast
as contiguous tensors.  For sampling only (under ``torch.inference_mode``); the learner keeps the
plain cache, whose single forward gains nothing from room to grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

#: Positions of room a buffer gets when it is (re)allocated.
HEADROOM = 64


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose ``keys`` / ``values`` are the filled part of larger buffers.

    Anything that assigns ``keys`` / ``values`` (selecting rows, merging batches, transformers' own
    methods) sets a buffer with no room left, so the next append reallocates: a tensor handed in
    (e.g. an expanded shared prefix) is never written to."""

    def __init__(self) -> None:
        self._buf: dict[str, torch.Tensor | None] = {"keys": None, "values": None}
        self._len = {"keys": 0, "values": 0}
        super().__init__()

    def _get(self, name: str) -> torch.Tensor | None:
        buf = self._buf[name]
        if buf is None or buf.dim() != 4:
            return buf
        return buf[:, :, : self._len[name]]

    def _set(self, name: str, value: torch.Tensor | None) -> None:
        self._buf[name] = value
        self._len[name] = value.shape[-2] if value is not None and value.dim() == 4 else 0

    keys = property(lambda self: self._get("keys"), lambda self, v: self._set("keys", v))  # type: ignore[assignment]
    values = property(lambda self: self._get("values"), lambda self, v: self._set("values", v))  # type: ignore[assignment]

    def _append(self, name: str, new: torch.Tensor) -> None:
        buf, n, add = self._buf[name], self._len[name], new.shape[-2]
        if buf is None or buf.dim() != 4 or buf.shape[0] != new.shape[0] or n + add > buf.shape[2]:
            grown = new.new_empty((*new.shape[:2], n + add + HEADROOM, new.shape[3]))
            if buf is not None and buf.dim() == 4 and n:
                grown[:, :, :n] = buf[:, :, :n]
            buf = grown
        buf[:, :, n : n + add] = new
        self._buf[name], self._len[name] = buf, n + add

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        self._append("keys", key_states)
        self._append("values", value_states)
        return self.keys, self.values

    def drop_front(self, start: int) -> None:
        """Forget the first ``start`` positions of every row (a view: no copy, the room stays)."""
        for name in ("keys", "values"):
            buf = self._buf[name]
            if buf is not None and buf.dim() == 4:
                self._buf[name], self._len[name] = buf[:, :, start:], self._len[name] - start


def growing_cache(data: Sequence[tuple[torch.Tensor, torch.Tensor]] | None = None) -> DynamicCache:
    """A ``DynamicCache`` of :class:`GrowingLayer` s, optionally starting from per-layer
    ``(keys, values)`` (copied into fresh buffers)."""
    cache = DynamicCache()
    cache.layer_class_to_replicate = GrowingLayer
    if data is not None:
        cache.layers = []
        for k, v in data:
            layer = GrowingLayer()
            layer.update(k, v)
            cache.layers.append(layer)
    return cache


def drop_front(layer: Any, start: int) -> None:
    """Drop the first ``start`` cached positions of a cache layer of either kind."""
    if isinstance(layer, GrowingLayer):
        layer.drop_front(start)
    else:
        layer.keys = layer.keys[:, :, start:, :]
        layer.values = layer.values[:, :, start:, :]
