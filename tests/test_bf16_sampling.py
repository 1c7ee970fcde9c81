"""Sampling under bf16 autocast runs on a copy whose Linear weights are stored in bf16: the same
logits and samples as autocast over the float32 policy, refreshed after every update."""

from __future__ import annotations

import torch

from _tiny_model import tiny_policy
from gasp_rl.seams import PolicySample, SamplingParams

CHAT = [{"role": "user", "content": "Write a Python function that returns the sum of a list."}]


def _bf16_policy(**gen):  # type: ignore[no-untyped-def]
    policy = tiny_policy(lr=1e-2)
    policy.gen_cfg = policy.gen_cfg.model_copy(update={"bf16_autocast": True, **gen})
    return policy


def _logits(policy, model, ids: torch.Tensor) -> torch.Tensor:  # type: ignore[no-untyped-def]
    mask = torch.ones_like(ids)
    positions = torch.arange(ids.shape[1])[None, :]
    with torch.inference_mode():
        return policy._logits(ids, mask, positions, keep=ids.shape[1], autocast=True, model=model)


def _update(policy) -> None:  # type: ignore[no-untyped-def]
    [[c]] = policy.generate([CHAT], SamplingParams(n=1, temperature=1.0, max_new_tokens=8, seed=1))
    assert policy.update([PolicySample(c.prompt_token_ids, c.token_ids, 1.0)])["samples_trained"] == 1


def test_the_bf16_copy_gives_autocasts_logits_exactly_and_follows_each_update() -> None:
    policy = _bf16_policy()
    ids = torch.tensor([policy.encode_chat(CHAT)])
    copy = policy.sampling_model()
    assert copy is not policy.model
    linears = [m for m in copy.get_decoder().modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    others = [p for n, p in copy.named_parameters() if "norm" in n or "embed" in n]
    assert others and all(p.dtype == torch.float32 for p in others)  # norms, embeddings, head
    assert not any(p.requires_grad for p in copy.parameters())
    assert all(p.dtype == torch.float32 for p in policy.model.parameters())  # the learner's untouched
    assert torch.equal(_logits(policy, copy, ids), _logits(policy, policy.model, ids))

    before = _logits(policy, copy, ids)
    _update(policy)
    assert policy.sampling_model() is copy  # refreshed in place, not rebuilt
    after = _logits(policy, copy, ids)
    assert not torch.equal(before, after)  # the update reached the copy ...
    assert torch.equal(after, _logits(policy, policy.model, ids))  # ... exactly
    assert policy._bf16.rebuilds == 2  # made once, refreshed once (generate right after the update)


def test_greedy_and_seeded_samples_equal_those_without_the_copy() -> None:
    with_copy, without = _bf16_policy(), _bf16_policy(bf16_weights=False)
    assert without.sampling_model() is without.model
    for params in (
        SamplingParams(n=1, temperature=0.0, max_new_tokens=12),
        SamplingParams(n=3, temperature=1.0, max_new_tokens=12, seed=7),
    ):
        a = with_copy.generate([CHAT], params)[0]
        b = without.generate([CHAT], params)[0]
        assert [c.token_ids for c in a] == [c.token_ids for c in b]
        assert [c.logprobs for c in a] == [c.logprobs for c in b]
    assert with_copy._bf16 is not None and without._bf16 is None


def test_no_copy_in_float32_or_over_bf16_weights() -> None:
    float32 = tiny_policy()  # sampling in float32: nothing to convert
    assert float32.sampling_model() is float32.model
    bf16_weights = _bf16_policy()
    bf16_weights.model.to(torch.bfloat16)  # model.dtype=bfloat16: already stored in bf16
    assert bf16_weights.sampling_model() is bf16_weights.model
    assert bf16_weights._bf16 is None


def test_a_kl_reference_learning_in_bf16_keeps_bf16_linear_weights_with_the_same_logprobs() -> None:
    policy = tiny_policy(lr=1e-2, kl_coef=0.5, bf16_autocast=True)
    [done] = policy.generate([CHAT], SamplingParams(n=2, temperature=1.0, max_new_tokens=8, seed=3))
    rows = [PolicySample(c.prompt_token_ids, c.token_ids, 1.0) for c in done]
    reference = policy._ensure_reference()
    linears = [m for m in reference.get_decoder().modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    with torch.no_grad():
        ref, _ = policy.batch_logprobs(rows, autocast=True, model=reference)
        own, _ = policy.batch_logprobs(rows, autocast=True)
    assert torch.equal(ref, own)  # the weights at the first update, as autocast computes them
