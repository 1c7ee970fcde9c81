"""generation.int8_sampling: an int8 sampling copy of the policy, rebuilt when the weights change."""

from __future__ import annotations

import pytest
import torch

from _tiny_model import tiny_llama
from gasp_rl.config import GenerationConfig, TrainerConfig
from gasp_rl.seams import PolicySample, SamplingParams

CHAT = [{"role": "user", "content": "Write a Python function that returns the sum of a list."}]
GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=6)


def _policy(**gen):  # type: ignore[no-untyped-def]
    from gasp_rl.backends.hf import HFPolicy

    model, tok = tiny_llama()
    generation = GenerationConfig(**{"bf16_autocast": False, "int8_sampling": True, **gen})
    return HFPolicy(model, tok, torch.device("cpu"), generation, TrainerConfig(bf16_autocast=False, lr=1e-2))


def _quantized_linears(module: torch.nn.Module) -> int:
    return sum(type(m).__name__ == "Linear" and "quantized" in type(m).__module__ for m in module.modules())


def test_the_copy_quantizes_the_body_only_and_leaves_the_policy_float32() -> None:
    policy = _policy()
    policy.generate([CHAT], GREEDY)
    copy = policy.sampling_model()
    assert copy is not policy.model
    # 2 layers x (q, k, v, o, gate, up, down)
    assert _quantized_linears(copy.get_decoder()) == 14
    assert copy.get_output_embeddings().weight.dtype == torch.float32  # the vocabulary head is not
    assert _quantized_linears(policy.model) == 0  # the policy the learner trains is untouched
    assert all(p.dtype == torch.float32 and p.requires_grad for p in policy.model.parameters())


def test_the_copy_is_reused_until_an_update_changes_the_weights() -> None:
    policy = _policy()
    first = policy.generate([CHAT], GREEDY)
    assert policy.generate([CHAT], GREEDY) == first
    assert policy._int8.rebuilds == 1  # two calls, one copy
    [[c]] = first
    metrics = policy.update([PolicySample(c.prompt_token_ids, c.token_ids, 1.0)])
    assert metrics
    policy.generate([CHAT], GREEDY)
    assert policy._int8.rebuilds == 2  # the optimizer step wrote the weights in place
    with torch.no_grad():
        next(policy.model.parameters()).add_(0.5)  # any in-place write (load_state_dict does one)
    policy.generate([CHAT], GREEDY)
    assert policy._int8.rebuilds == 3


def test_off_by_default_samples_from_the_policy_itself() -> None:
    policy = _policy(int8_sampling=False)
    assert policy.sampling_model() is policy.model
    policy.generate([CHAT], GREEDY)
    assert policy._int8 is None


@pytest.mark.parametrize(
    ("gen", "train", "message"),
    [
        ({"bf16_autocast": True}, {}, "samples in float32"),
        ({}, {"lora_rank": 4}, "lora_rank"),
    ],
)
def test_combinations_it_does_not_support_are_refused_clearly(gen, train, message) -> None:  # type: ignore[no-untyped-def]
    from gasp_rl.backends.hf import HFPolicy

    model, tok = tiny_llama()
    generation = GenerationConfig(**{"bf16_autocast": False, "int8_sampling": True, **gen})
    policy = HFPolicy(model, tok, torch.device("cpu"), generation, TrainerConfig(bf16_autocast=False))
    policy.train_cfg = policy.train_cfg.model_copy(update=train)  # (no adapter needed to be refused)
    with pytest.raises(ValueError, match=message):
        policy.generate([CHAT], GREEDY)
