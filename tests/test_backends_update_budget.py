"""Learner micro-batches by token budget, and LoRA updates through peft (issue 14, item 3).

A tiny random Llama with the embedded tokenizer keeps these fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from _tiny_model import tiny_policy
from gasp_rl.backends.hf import micro_batches
from gasp_rl.seams import PolicySample


def test_micro_batches_follow_the_token_budget() -> None:
    # sorted lengths: short rows share a micro-batch, long ones get fewer rows, one row always fits
    assert micro_batches([10, 10, 10, 10], max_rows=2, max_tokens=40) == [[0, 1, 2, 3]]
    assert micro_batches([10, 20, 30, 500], max_rows=2, max_tokens=60) == [[0, 1], [2], [3]]
    assert micro_batches([100, 100, 100], max_rows=2, max_tokens=0) == [[0, 1], [2]]  # 0 = by rows
    assert micro_batches([], max_rows=2, max_tokens=64) == []


def _tiny(lora_rank: int = 0, **trainer):  # type: ignore[no-untyped-def]
    return tiny_policy(lr=1e-2, lora_rank=lora_rank, **trainer)


def _samples() -> list[PolicySample]:
    return [
        PolicySample(list(range(100, 100 + 5 * (i + 1))), list(range(300, 310 + i)), 1.0 if i % 2 else -1.0)
        for i in range(6)
    ]


def test_update_uses_token_budget_micro_batches() -> None:
    # (prefix sharing off: these prompts share a prefix, and each shared group is micro-batched apart)
    small = _tiny(micro_batch_tokens=40, prefix_sharing=False).update(_samples())
    large = _tiny(micro_batch_tokens=100_000, prefix_sharing=False).update(_samples())
    assert small["micro_batches"] > large["micro_batches"] == 1
    assert small["loss"] == pytest.approx(large["loss"], rel=1e-4, abs=1e-6)  # same step, split differently


def test_lora_update_trains_only_adapters_and_checkpoints_merged_weights(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    import torch

    policy = _tiny(lora_rank=4)
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    samples = _samples()
    before = policy.sequence_logprobs(samples)
    m = policy.update(samples)
    assert m["grad_norm"] > 0
    after = policy.sequence_logprobs(samples)
    assert after != before  # the adapters moved the policy that generates
    policy.save(tmp_path / "ckpt")
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert not any("lora" in k for k in state)  # a plain model directory: eval loads it as is
    fresh = _tiny(lora_rank=4)
    fresh.load(tmp_path / "ckpt")
    reloaded = fresh.sequence_logprobs(samples)
    for a, b in zip(after, reloaded):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-4)


def test_lora_without_peft_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gasp_rl.errors import ModelLoadError

    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ModelLoadError, match=r"peft.*gasp-rl\[lora\]"):
        _tiny(lora_rank=4)
