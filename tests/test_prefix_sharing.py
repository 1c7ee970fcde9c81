"""Shared prompt prefixes computed once (backends/prefix.py): the grouping, and that sharing
changes neither the learner's gradient nor the sampler's output.

A tiny random Llama with the embedded tokenizer keeps these fast; the real-model greedy check
is in tests/test_backends_hf.py."""

from __future__ import annotations

import random

import pytest

from _tiny_model import tiny_llama, tiny_policy
from gasp_rl.backends.prefix import common_prefix_len, prefix_groups
from gasp_rl.seams import PolicySample, SamplingParams


def test_common_prefix_len() -> None:
    assert common_prefix_len([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert common_prefix_len([[1], [2]]) == 0
    assert common_prefix_len([[5, 6, 7]]) == 3


def _as_sets(groups):  # type: ignore[no-untyped-def]
    return sorted((p, tuple(sorted(rows))) for p, rows in groups)


def test_groups_follow_the_shared_prefixes() -> None:
    io = list(range(100, 150))  # two worked examples, 50 tokens each
    f = list(range(200, 250))
    rows = [io + [1, 2, 3], f + [4, 5], io + [6, 7], f + [8, 9, 10], [999] * 30]
    groups = prefix_groups(rows)
    # the io rows share 50 tokens, the f rows 50, the odd row is alone (prefix 0)
    assert _as_sets(groups) == [(0, (4,)), (50, (0, 2)), (50, (1, 3))]
    # every row is in exactly one group, and a group's rows really share its prefix
    assert sorted(i for _, g in groups for i in g) == list(range(len(rows)))
    for p, g in groups:
        if p:
            assert common_prefix_len([rows[i] for i in g]) >= p


def test_a_prefix_keeps_each_rows_last_prompt_token() -> None:
    same = [list(range(40))] * 3  # n attempts at one question: identical prompts
    assert prefix_groups(same) == [(39, [0, 1, 2])]


def test_short_or_unprofitable_prefixes_are_not_shared() -> None:
    rows = [[1] * 10 + [2], [1] * 10 + [3]]  # 10 shared tokens < MIN_SHARED_PREFIX
    assert _as_sets(prefix_groups(rows)) == [(0, (0,)), (0, (1,))]
    rows = [list(range(20)) + [7], list(range(20)) + [8]]  # saves 20 tokens, costs a forward (32)
    assert all(p == 0 for p, _ in prefix_groups(rows))
    assert prefix_groups([]) == []


def test_the_partition_minimises_forwarded_tokens() -> None:
    """Against brute force over every partition into sorted runs, on random prompt sets."""
    rng = random.Random(0)
    for _ in range(30):
        stems = [[rng.randrange(5) for _ in range(rng.choice([0, 20, 40]))] for _ in range(3)]
        rows = [
            rng.choice(stems) + [rng.randrange(50) for _ in range(rng.randrange(1, 30))] for _ in range(6)
        ]
        got = prefix_groups(rows)
        assert _cost(rows, got) == min(_cost(rows, part) for part in _runs(rows))


def _cost(rows, groups):  # type: ignore[no-untyped-def]
    total = 0
    for p, g in groups:
        if p == 0:
            total += sum(len(rows[i]) for i in g)
        else:
            total += p + sum(len(rows[i]) - p for i in g) + 32
    return total


def _runs(rows):  # type: ignore[no-untyped-def]
    order = sorted(range(len(rows)), key=lambda i: (rows[i], i))
    n = len(order)
    for mask in range(1 << (n - 1)):
        groups, start = [], 0
        for k in range(n):
            if k == n - 1 or mask >> k & 1:
                run = order[start : k + 1]
                p = min(common_prefix_len([rows[i] for i in run]), min(len(rows[i]) for i in run) - 1)
                if len(run) == 1 or p < 16:
                    groups += [(0, [i]) for i in run]
                else:
                    groups.append((p, run))
                start = k + 1
        yield groups


# ------------------------------------------------------------------ the learner and the sampler


def _tiny(**trainer):  # type: ignore[no-untyped-def]
    return tiny_policy(**trainer)


def _batch() -> list[PolicySample]:
    """Two prompt families with their own 60-token prefix, n = 3 attempts at some prompts, one
    unrelated row, advantages of both signs."""
    rng = random.Random(1)
    a, b = [rng.randrange(1000, 9000) for _ in range(60)], [rng.randrange(1000, 9000) for _ in range(60)]
    out = []
    for k in range(4):
        prompt = (a if k % 2 else b) + [rng.randrange(1000, 9000) for _ in range(rng.randrange(3, 12))]
        for _ in range(3):
            out.append(
                PolicySample(prompt, [rng.randrange(1000, 9000) for _ in range(rng.randrange(2, 9))], 0.0)
            )
    out.append(PolicySample([7, 8, 9], [11, 12, 13], 0.0))
    return [
        PolicySample(s.prompt_token_ids, s.completion_token_ids, rng.choice([-1.5, -0.5, 0.7, 1.2]))
        for s in out
    ]


def _gradient(policy, samples):  # type: ignore[no-untyped-def]
    import torch

    policy.model.zero_grad(set_to_none=True)
    metrics = policy.accumulate_gradients(
        samples, range(len(samples)), lambda idx, logp, valid, shared: (logp * valid).sum() * 0.01
    )
    grads = {n: p.grad.clone() for n, p in policy.model.named_parameters() if p.grad is not None}
    policy.model.zero_grad(set_to_none=True)
    return torch.cat([grads[n].flatten() for n in sorted(grads)]), metrics


def test_the_gradient_with_shared_prefixes_equals_the_gradient_of_whole_rows() -> None:
    import torch

    samples = _batch()
    shared, m_shared = _gradient(_tiny(prefix_sharing=True), samples)
    whole, m_whole = _gradient(_tiny(prefix_sharing=False), samples)
    assert m_shared["prefix_groups"] >= 2 and m_shared["prefix_tokens_saved"] > 0
    assert m_whole["prefix_groups"] == 0
    assert m_shared["forwarded_tokens"] < m_whole["forwarded_tokens"]
    assert torch.allclose(shared, whole, rtol=1e-4, atol=1e-6), float((shared - whole).abs().max())


def test_an_update_with_shared_prefixes_moves_the_weights_as_without() -> None:
    import torch

    samples = _batch()
    policies = [_tiny(prefix_sharing=on, lr=1e-3) for on in (True, False)]
    metrics = [p.update(samples) for p in policies]
    assert metrics[0]["loss"] == pytest.approx(metrics[1]["loss"], rel=1e-4, abs=1e-6)
    for (n, a), (_, b) in zip(policies[0].model.named_parameters(), policies[1].model.named_parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), n


def test_sampling_with_per_group_prefix_caches_equals_the_static_engine() -> None:
    """Prompts in two families (each with its own shared prefix) plus an unrelated one: greedy and
    seeded rows are the same with the grouped prefix caches, without them, and from the static
    engine, with rows joining a running batch."""
    policy = _tiny()
    fam = {
        "a": [{"role": "system", "content": "You add numbers. " * 8}, {"role": "user", "content": "2 + 2?"}],
        "b": [
            {"role": "system", "content": "You sort lists of words. " * 8},
            {"role": "user", "content": "b a"},
        ],
    }
    chats = [
        [*fam[k], {"role": "assistant", "content": "ok"}, {"role": "user", "content": f"question {i}"}]
        for i, k in enumerate("abab")
    ] + [[{"role": "user", "content": "hello"}]]
    encoded = [policy.encode_chat(c) for c in chats]
    groups = [p for p, _ in prefix_groups(encoded) if p]
    assert len(groups) == 2  # two shared prefixes, one per family
    for params in (
        SamplingParams(n=2, temperature=0.0, max_new_tokens=12),
        SamplingParams(n=2, temperature=0.9, max_new_tokens=12, seed=5),
    ):
        runs = []
        for gen in (
            {"engine": "static", "batch_size": 3},
            {"engine": "continuous", "batch_size": 3, "prefix_cache": True},
            {"engine": "continuous", "batch_size": 3, "prefix_cache": False},
            {"engine": "continuous", "batch_size": 32, "prefix_cache": True},
        ):
            policy.gen_cfg = policy.gen_cfg.model_copy(update=gen)
            runs.append([(c.text, c.token_ids) for row in policy.generate(chats, params) for c in row])
        assert runs[1] == runs[0] and runs[2] == runs[0] and runs[3] == runs[0]
    assert policy.last_generation_stats["prefix_tokens_saved"] > 0


# ------------------------------------------------------------------ CPU attention and the KV cache


def test_native_gqa_attention_equals_transformers_sdpa() -> None:
    """The CPU attention with grouped heads (gasp_cpu_sdpa) gives the logits and gradients of
    transformers' sdpa (which copies the key/value heads), on a padded batch."""
    import torch

    from gasp_rl.backends.cpu_attention import NAME, use_native_gqa

    outs = []
    for native in (False, True):
        model, _ = tiny_llama(max_positions=512)
        assert model.config.num_key_value_heads < model.config.num_attention_heads
        if native:
            assert use_native_gqa(model, torch.device("cpu"))
            assert model.config._attn_implementation == NAME
        ids = torch.randint(100, 5000, (3, 40), generator=torch.Generator().manual_seed(0))
        mask = torch.ones_like(ids)
        mask[0, :7] = 0  # left padding
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
        logits[mask.bool()].square().mean().backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        outs.append((logits.detach()[mask.bool()], grads))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    assert torch.allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-6)
    assert not use_native_gqa(tiny_llama()[0], torch.device("meta"))  # CPU only


def test_native_gqa_decode_step_equals_transformers_sdpa() -> None:
    """A one-token query (a decode step over a padded KV cache) takes the packed path of
    gasp_cpu_sdpa: the same logits and gradients as transformers' sdpa, with 3 query heads per
    key/value head as in SmolLM2."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from gasp_rl.backends.cpu_attention import use_native_gqa

    cfg = LlamaConfig(
        vocab_size=300,
        hidden_size=48,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=6,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 300, (3, 12), generator=gen)
    step = torch.randint(0, 300, (3, 1), generator=gen)
    mask = torch.ones(3, 13, dtype=torch.long)
    mask[0, :5] = 0  # left padding
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    outs = []
    for native in (False, True):
        torch.manual_seed(0)
        model = LlamaForCausalLM(cfg).eval()
        if native:
            assert use_native_gqa(model, torch.device("cpu"))
        with torch.no_grad():
            cache = model(
                input_ids=ids, attention_mask=mask[:, :12], position_ids=positions[:, :12]
            ).past_key_values
        logits = model(
            input_ids=step, attention_mask=mask, position_ids=positions[:, 12:], past_key_values=cache
        ).logits
        logits.square().mean().backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
        outs.append((logits.detach(), grads))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-5)
    assert torch.allclose(outs[0][1], outs[1][1], rtol=1e-4, atol=1e-6)


def test_the_growing_cache_appends_in_place_and_never_writes_a_tensor_it_was_given() -> None:
    import torch

    from gasp_rl.backends.kv_cache import HEADROOM, drop_front, growing_cache

    shared = torch.randn(1, 2, 5, 4)
    given = shared.expand(3, -1, -1, -1)
    cache = growing_cache([(given, given)])
    layer = cache.layers[0]
    assert torch.equal(layer.keys, given) and cache.get_seq_length() == 5
    buffer = layer._buf["keys"]
    for step in range(3):
        new = torch.full((3, 2, 1, 4), float(step))
        keys, values = layer.update(new, new)
        assert keys.shape == (3, 2, 6 + step, 4) and torch.equal(keys[:, :, -1:], new)
    assert layer._buf["keys"] is buffer and buffer.shape[2] == 5 + HEADROOM  # written in place
    assert torch.equal(layer.keys[:, :, :5], given) and torch.equal(shared, given[:1])  # input untouched
    drop_front(layer, 2)
    assert layer.keys.shape == (3, 2, 6, 4) and torch.equal(layer.keys[:, :, :3], given[:, :, 2:])
    cache.batch_select_indices(torch.tensor([2, 0]))
    assert layer.keys.shape == (2, 2, 6, 4)
    layer.update(torch.zeros(2, 2, 1, 4), torch.zeros(2, 2, 1, 4))
    assert layer.keys.shape == (2, 2, 7, 4) and float(layer.keys[:, :, -1].abs().sum()) == 0.0


def test_packed_decode_attention_takes_per_head_and_shared_masks() -> None:
    """The packed one-token path equals SDPA over copied key/value heads, for a mask shared by
    every head (what transformers builds) and for a per-head mask."""
    import torch
    import torch.nn.functional as F

    from gasp_rl.backends.cpu_attention import attention

    gen = torch.Generator().manual_seed(1)
    q = torch.randn(2, 6, 1, 8, generator=gen)
    k, v = torch.randn(2, 2, 5, 8, generator=gen), torch.randn(2, 2, 5, 8, generator=gen)
    shared = torch.ones(2, 1, 1, 5, dtype=torch.bool)
    shared[0, :, :, :2] = False
    per_head = torch.rand(2, 6, 1, 5, generator=gen) > 0.3
    per_head[..., -1] = True  # every head sees at least one key
    for mask in (shared, per_head, None):
        want = F.scaled_dot_product_attention(
            q, k.repeat_interleave(3, 1), v.repeat_interleave(3, 1), attn_mask=mask
        )
        got, _ = attention(torch.nn.Module(), q, k, v, mask)
        assert got.shape == (2, 1, 6, 8)
        assert torch.allclose(got, want.transpose(1, 2), atol=1e-6)


def test_a_kl_update_with_shared_prefixes_moves_the_weights_as_without() -> None:
    """With a KL term the reference forwards each shared prefix once too: the same KL, loss and
    step as forwarding every row whole, for fewer tokens."""
    import torch

    samples = _batch()
    policies = [_tiny(prefix_sharing=on, lr=1e-2, kl_coef=0.5) for on in (True, False)]
    first = [p.update(samples) for p in policies]  # the reference is the weights before this step
    assert all(m["kl"] == 0 for m in first)
    second = [p.update(samples) for p in policies]
    assert second[0]["kl"] > 1e-5  # the policy has left its reference
    assert second[0]["kl"] == pytest.approx(second[1]["kl"], rel=1e-3)
    assert second[0]["loss"] == pytest.approx(second[1]["loss"], rel=1e-4, abs=1e-6)
    assert second[0]["prefix_groups"] >= 2 and second[1]["prefix_groups"] == 0
    assert second[0]["forwarded_tokens"] < second[1]["forwarded_tokens"]
    assert second[0]["grad_norm"] == pytest.approx(second[1]["grad_norm"], rel=1e-5)
    # two Adam steps of lr 1e-2 turn float rounding into ~1e-6 of weight (1e-4 of a step)
    for (n, a), (_, b) in zip(policies[0].model.named_parameters(), policies[1].model.named_parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), n
