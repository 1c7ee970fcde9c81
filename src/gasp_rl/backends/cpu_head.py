"""The sampler's vocabulary projection on the CPU, by whichever of two PyTorch kernels is faster here.

A small model's output head is a tall matrix (SmolLM2-135M: 49152 x 576, 113 MB in float32) applied
to the few rows of one decode step.  For that shape the two float32 matrix-multiply kernels PyTorch
ships for the CPU differ a lot, and which one wins depends on the CPU: ``F.linear`` (MKL's sgemm)
and oneDNN's linear (``torch.ops.mkldnn._linear_pointwise``, the kernel inductor emits), which
takes the plain weight tensor, so no second copy of the weights is kept.  Measured on a 2-core AMD
EPYC (AVX2 only), head weights not in cache, 1 / 8 / 32 rows: MKL 14.6 / 32.8 / 45.1 ms, oneDNN
7.8 / 13.9 / 23.8 ms.  So the choice is made by measurement, once per process and head shape, on
the machine that runs (:func:`choose`), never assumed.

Both compute the same float32 product; results differ at rounding level (about 1e-6 relative), as
MKL's own results do between batch sizes.  Only sampling uses this: the learner's log-probs (the
PPO ratio's old and new terms) always come from the model's own head, so they stay exactly equal.
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

#: Row counts the two kernels are timed at (a decode step's batch sizes).
PROBE_ROWS = (1, 8, 32)
_REPEATS = 3

_choice: dict[tuple[int, ...], str] = {}


def _onednn(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


def _default(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.linear(x, weight)


KERNELS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "default": _default,
    "onednn": _onednn,
}


@functools.lru_cache(maxsize=1)
def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def eligible(weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """A float32 CPU head without bias, outside autograd, with oneDNN present."""
    return (
        weight.device.type == "cpu"
        and weight.dtype == torch.float32
        and weight.dim() == 2
        and bias is None
        and not torch.is_grad_enabled()
        and onednn_available()
    )


def _time(kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], weight: torch.Tensor) -> float:
    total = 0.0
    for rows in PROBE_ROWS:
        x = torch.randn(rows, weight.shape[1])
        kernel(x, weight)  # warm-up
        runs = []
        for _ in range(_REPEATS):
            t0 = time.perf_counter()
            kernel(x, weight)
            runs.append(time.perf_counter() - t0)
        total += statistics.median(runs)
    return total


def choose(weight: torch.Tensor) -> str:
    """The faster kernel for this head shape on this machine (measured once per process)."""
    key = tuple(weight.shape)
    if key not in _choice:
        try:
            with torch.inference_mode():
                reference = _default(torch.ones(2, weight.shape[1]), weight)
                candidate = _onednn(torch.ones(2, weight.shape[1]), weight)
                close = torch.allclose(candidate, reference, rtol=1e-4, atol=1e-4)
                times = {name: _time(k, weight) for name, k in KERNELS.items()} if close else {}
        except Exception:  # noqa: BLE001 - oneDNN refused this shape, build or signature: keep the default
            times = {}
        _choice[key] = min(times, key=times.__getitem__) if times else "default"
    return _choice[key]


@contextlib.contextmanager
def forced(weight: torch.Tensor, kernel: str) -> Iterator[None]:
    """Within the block, ``kernel`` is used for heads of ``weight``'s shape (for benchmarks that
    compare the two); the measured choice is back afterwards."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; one of {sorted(KERNELS)}")
    key = tuple(weight.shape)
    before = _choice.get(key)
    _choice[key] = kernel
    try:
        yield
    finally:
        if before is None:
            _choice.pop(key, None)
        else:
            _choice[key] = before


def project(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``hidden @ weight.T (+ bias)`` with the kernel :func:`choose` picked (``F.linear`` when the
    head is not :func:`eligible`)."""
    if not eligible(weight, bias):
        return F.linear(hidden, weight, bias)
    kernel = KERNELS[choose(weight)]
    flat = hidden.reshape(-1, hidden.shape[-1])
    if not flat.is_contiguous():
        flat = flat.contiguous()
    return kernel(flat, weight).view(*hidden.shape[:-1], weight.shape[0])
