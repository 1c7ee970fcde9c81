"""Which precision the HF backend computes in: bf16 only where the device computes it natively.

bf16 autocast is a large win on a CPU with AVX512-BF16 or AMX and on a CUDA GPU with bf16 support,
and a large *loss* where bf16 is emulated: on an AVX2-only CPU the same sampling ran at half the
float32 speed and an update sat in backward for minutes (issue 14).  ``auto`` (the default of
``generation.bf16_autocast``, ``trainer.bf16_autocast`` and ``model.dtype``) therefore asks the
hardware.  :func:`choose_precision` is the one pure function that decides, from a
:class:`Capability` that :func:`probe_capability` measures; ``gasp info`` prints the decision and
its reason.

Weights: ``model.dtype=auto`` keeps float32 weights on every device.  The policy is also the
learner, and AdamW steps of lr 1e-6 on bf16 weights are mostly rounded away; bf16 *compute* comes
from autocast, which is what the two autocast fields decide.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

AutoBool = bool | Literal["auto"]

# /proc/cpuinfo flags that mean the CPU executes bf16 matrix arithmetic natively
NATIVE_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Capability:
    """What the probe saw on one device (plain data, so tests can build any machine)."""

    device_type: str  # "cpu" or "cuda" (or another torch device type)
    cpu_capability: str = ""  # torch.backends.cpu.get_cpu_capability(): "AVX2", "AVX512", ...
    cpu_flags: frozenset[str] = frozenset()  # flags from /proc/cpuinfo
    cuda_bf16: bool = False  # torch.cuda.is_bf16_supported()
    cuda_name: str = ""


@dataclass(frozen=True)
class Precision:
    """One decision: compute the transformer body in bf16 (autocast) or float32, and why."""

    bf16: bool
    reason: str

    @property
    def name(self) -> str:
        return "bf16 autocast" if self.bf16 else "float32"


def native_bf16(cap: Capability) -> tuple[bool, str]:
    """Does ``cap``'s device compute bf16 natively?  The answer and a one-line reason."""
    if cap.device_type == "cuda":
        what = cap.cuda_name or "CUDA device"
        if cap.cuda_bf16:
            return True, f"{what} supports bf16"
        return False, f"{what} has no bf16 support"
    if cap.device_type == "cpu":
        native = [f for f in NATIVE_BF16_CPU_FLAGS if f in cap.cpu_flags]
        isa = cap.cpu_capability or "unknown ISA"
        if native:
            return True, f"CPU ({isa}) has {' + '.join(native)}: native bf16"
        return False, f"CPU ({isa}) has neither avx512_bf16 nor amx_bf16: bf16 would be emulated"
    return False, f"device type {cap.device_type!r}: bf16 not known to be native"


def choose_precision(setting: AutoBool, cap: Capability) -> Precision:
    """``setting`` is a config value (``True``, ``False`` or ``"auto"``); ``auto`` -> bf16 exactly
    where :func:`native_bf16` says so, float32 elsewhere."""
    if setting is True:
        return Precision(True, "bf16 autocast requested in the config")
    if setting is False:
        return Precision(False, "float32 requested in the config")
    if setting != "auto":
        raise ValueError(f"precision setting must be true, false or 'auto', got {setting!r}")
    ok, why = native_bf16(cap)
    return Precision(ok, f"auto: {why}")


def choose_weight_dtype(setting: str, cap: Capability) -> tuple[str, str]:
    """``model.dtype`` -> (torch dtype name, reason).  ``auto`` keeps float32 master weights (see the
    module docstring); explicit names are taken as given."""
    if setting != "auto":
        return setting, f"{setting} requested in the config"
    return (
        "float32",
        "auto: float32 weights (the learner updates them in place; bf16 compute is autocast's job)",
    )


def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@functools.lru_cache(maxsize=8)
def probe_capability(device_type: str = "cpu") -> Capability:
    """Measure the capability of ``device_type`` (cached: the hardware does not change)."""
    import torch

    if device_type == "cuda":
        available = torch.cuda.is_available()
        return Capability(
            device_type="cuda",
            cuda_bf16=bool(available and torch.cuda.is_bf16_supported()),
            cuda_name=torch.cuda.get_device_name() if available else "",
        )
    cap = ""
    try:
        cap = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # older torch
        cap = ""
    flags = _cpu_flags()
    if not flags and "AMX" in cap.upper():  # no /proc/cpuinfo (not Linux): trust torch's AMX report
        flags = frozenset({"amx_bf16"})
    return Capability(device_type=device_type, cpu_capability=cap, cpu_flags=flags)


def resolve(setting: AutoBool, device: Any) -> Precision:
    """:func:`choose_precision` for a torch device (or device type string), probing the hardware."""
    device_type = getattr(device, "type", None) or str(device)
    return choose_precision(setting, probe_capability(device_type))


def describe(cfg: Any) -> list[str]:
    """Lines for ``gasp info``: what the default (or given) config computes in on this machine, and why."""
    import torch

    dev = cfg.model.device
    device_type = ("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev.split(":")[0]
    cap = probe_capability(device_type)
    dtype, dtype_why = choose_weight_dtype(cfg.model.dtype, cap)
    gen = choose_precision(cfg.generation.bf16_autocast, cap)
    tr = choose_precision(cfg.trainer.bf16_autocast, cap)
    return [
        f"device {device_type}"
        + (f" (torch CPU capability {cap.cpu_capability})" if cap.cpu_capability else ""),
        f"model.dtype={cfg.model.dtype} -> {dtype}: {dtype_why}",
        f"generation.bf16_autocast={cfg.generation.bf16_autocast} -> {gen.name}: {gen.reason}",
        f"trainer.bf16_autocast={cfg.trainer.bf16_autocast} -> {tr.name}: {tr.reason}",
    ]
