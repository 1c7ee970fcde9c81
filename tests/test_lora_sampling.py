"""LoRA on the CPU: the sampler runs on a plain copy with the adapters merged into its weights,
refreshed after every update, and computes the policy's own function."""

from __future__ import annotations

import pytest
import torch

from _tiny_model import tiny_policy
from gasp_rl.seams import PolicySample, SamplingParams

CHAT = [{"role": "user", "content": "Write a Python function that returns the sum of a list."}]
GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=8)


def _logits(model, ids: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(input_ids=ids).logits


def _update(policy) -> None:  # type: ignore[no-untyped-def]
    [[c]] = policy.generate([CHAT], SamplingParams(n=1, temperature=1.0, max_new_tokens=8, seed=1))
    assert policy.update([PolicySample(c.prompt_token_ids, c.token_ids, 1.0)])["samples_trained"] == 1


def test_the_merged_copy_computes_the_adapted_policy_and_follows_each_update() -> None:
    pytest.importorskip("peft")
    policy = tiny_policy(lr=1e-2, lora_rank=4)
    ids = torch.tensor([policy.encode_chat(CHAT)])
    _update(policy)  # B starts at zero: after a step the adapters change the function
    merged = policy.sampling_model()
    assert merged is not policy.model
    assert not any("lora" in name for name, _ in merged.named_parameters())  # one matmul per Linear
    assert not any(p.requires_grad for p in merged.parameters())
    adapted = _logits(policy.model, ids)
    with policy.model.disable_adapter():
        base = _logits(policy.model, ids)
    assert (adapted - base).abs().max() > 1e-4  # the adapters matter here ...
    torch.testing.assert_close(_logits(merged, ids), adapted, rtol=1e-5, atol=1e-5)  # ... and are merged

    _update(policy)
    # made by the first generate, refreshed after each of the two updates, in place
    assert policy.sampling_model() is merged and policy._merged.rebuilds == 3
    torch.testing.assert_close(_logits(merged, ids), _logits(policy.model, ids), rtol=1e-5, atol=1e-5)
    trainable = [n for n, p in policy.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # the learner's model is untouched


def test_greedy_samples_are_the_adapted_policys() -> None:
    pytest.importorskip("peft")
    policy = tiny_policy(lr=1e-2, lora_rank=4)
    _update(policy)
    [[merged]] = policy.generate([CHAT], GREEDY)
    policy.sampling_model = lambda: policy.model  # the unmerged peft model itself
    [[unmerged]] = policy.generate([CHAT], GREEDY)
    assert merged.token_ids == unmerged.token_ids


def test_merge_lora_off_samples_through_the_adapters() -> None:
    pytest.importorskip("peft")
    policy = tiny_policy(lr=1e-2, lora_rank=4)
    policy.gen_cfg = policy.gen_cfg.model_copy(update={"merge_lora": False})
    assert policy.sampling_model() is policy.model  # no second copy of the weights
    policy.generate([CHAT], GREEDY)
    assert policy._merged is None


def test_a_checkpoint_saved_through_the_sampling_copy_is_the_adapted_policy(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """After sampling, save() writes the sampler's merged copy (refreshed in place) instead of
    merging a deep copy of its own: the checkpoint still loads as the adapted policy."""
    pytest.importorskip("peft")
    policy = tiny_policy(lr=1e-2, lora_rank=4)
    _update(policy)  # generates first, so the merged copy exists (and is now stale)
    assert policy._merged is not None
    ids = torch.tensor([policy.encode_chat(CHAT)])
    policy.save(tmp_path / "ckpt")
    fresh = tiny_policy(lr=1e-2, lora_rank=4)
    fresh.load(tmp_path / "ckpt")
    torch.testing.assert_close(_logits(fresh.model, ids), _logits(policy.model, ids), rtol=1e-5, atol=1e-5)
