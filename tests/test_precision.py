"""Precision by capability (issue 14, item 1): ``auto`` is bf16 only where the device computes it natively."""

from __future__ import annotations

import pytest

from gasp_rl import precision
from gasp_rl.config import Config, load_config
from gasp_rl.precision import Capability, choose_precision

AVX2 = Capability("cpu", "AVX2", frozenset({"avx2", "fma", "sse4_2"}))
AVX512_NO_BF16 = Capability("cpu", "AVX512", frozenset({"avx2", "avx512f", "avx512bw", "avx512_vnni"}))
AVX512_BF16 = Capability("cpu", "AVX512", frozenset({"avx2", "avx512f", "avx512_bf16"}))
AMX = Capability("cpu", "AMX", frozenset({"avx512f", "amx_tile", "amx_bf16"}))


@pytest.mark.parametrize(
    ("cap", "bf16"),
    [
        (AVX2, False),
        (AVX512_NO_BF16, False),
        (AVX512_BF16, True),
        (AMX, True),
        (Capability("cuda", cuda_bf16=True, cuda_name="A100"), True),
        (Capability("cuda", cuda_bf16=False, cuda_name="T4"), False),
        (Capability("mps"), False),
    ],
)
def test_auto_picks_bf16_only_where_native(cap: Capability, bf16: bool) -> None:
    p = choose_precision("auto", cap)
    assert p.bf16 is bf16
    assert p.reason.startswith("auto: ")
    assert ("emulated" in p.reason or "no bf16" in p.reason or "not known" in p.reason) is (not bf16)


def test_explicit_settings_win_over_the_hardware() -> None:
    assert choose_precision(True, AVX2).bf16 is True
    assert choose_precision(False, AMX).bf16 is False
    with pytest.raises(ValueError):
        choose_precision("sometimes", AVX2)  # type: ignore[arg-type]


def test_auto_is_the_default_and_parses_from_the_command_line() -> None:
    cfg = Config()
    assert cfg.model.dtype == "auto"
    assert cfg.generation.bf16_autocast == "auto" and cfg.trainer.bf16_autocast == "auto"
    cfg = load_config(None, ["generation.bf16_autocast=false", "trainer.bf16_autocast=auto"])
    assert cfg.generation.bf16_autocast is False and cfg.trainer.bf16_autocast == "auto"


def test_policy_resolves_auto_through_the_mocked_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The HF policy asks the probe: an AVX2-only machine samples and learns in float32."""
    import torch

    from gasp_rl.backends.hf import HFPolicy

    for cap, want in ((AVX2, False), (AVX512_BF16, True)):
        monkeypatch.setattr(precision, "probe_capability", lambda device_type="cpu", cap=cap: cap)
        resolved = precision.resolve("auto", torch.device("cpu"))
        assert resolved.bf16 is want
        # the policy property goes through the same function (no model needed to check it)
        fake = HFPolicy.__new__(HFPolicy)
        fake.gen_cfg, fake.train_cfg, fake.device = Config().generation, Config().trainer, torch.device("cpu")
        assert fake.gen_precision.bf16 is want and fake.train_precision.bf16 is want


def test_gasp_info_prints_the_choice_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from gasp_rl.cli import app

    monkeypatch.setattr(precision, "probe_capability", lambda device_type="cpu": AVX2)
    out = CliRunner().invoke(app, ["info", "model.device=cpu"]).output
    assert "generation.bf16_autocast=auto -> float32" in out
    assert "bf16 would be emulated" in out
    assert "model.dtype=auto -> float32" in out
