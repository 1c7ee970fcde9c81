"""The HF policy as a generator, on the real embedded SmolLM2 (no network)."""

from __future__ import annotations

import numpy as np
import pytest

from gasp_rl.config import Config
from gasp_rl.errors import ContextLengthError
from gasp_rl.seams import Completion, Generator, PolicySample, SamplingParams

pytestmark = pytest.mark.slow

CHAT = [{"role": "user", "content": "Write a Python function that returns the sum of a list."}]


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    from gasp_rl.backends.hf import HFPolicy

    cfg = Config()
    cfg.generation.batch_size = 4
    cfg.generation.bf16_autocast = False  # float32 sampling: log-probs exactly the learner's
    cfg.model.max_context = 256
    return HFPolicy.from_config(cfg)


def _samples(completions: list[Completion]) -> list[PolicySample]:
    return [PolicySample(c.prompt_token_ids, c.token_ids, 0.0) for c in completions]


def test_generates_n_completions_with_token_ids_and_logprobs(policy) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(policy, Generator)
    out = policy.generate([CHAT], SamplingParams(n=4, max_new_tokens=24, seed=3, logprobs=True))
    assert len(out) == 1 and len(out[0]) == 4
    prompt_ids = policy.encode_chat(CHAT)
    for c in out[0]:
        assert c.prompt_token_ids == prompt_ids
        assert 1 <= len(c.token_ids) <= 24
        assert c.logprobs is not None and len(c.logprobs) == len(c.token_ids)
        assert all(lp <= 0 for lp in c.logprobs)
        assert c.finish_reason == ("length" if len(c.token_ids) == 24 else "stop")
        assert c.text
    # different samples of one prompt differ (temperature 1)
    assert len({tuple(c.token_ids) for c in out[0]}) > 1


def test_a_prefilled_answer_is_continued(policy) -> None:  # type: ignore[no-untyped-def]
    prefill = "```python\ndef f("
    chat = [*CHAT, {"role": "assistant", "content": prefill}]
    ids = policy.encode_chat(chat)
    text = policy.tokenizer.decode(ids)
    assert text.endswith("<|im_start|>assistant\n" + prefill)  # not closed, no new turn opened
    assert policy.tokenizer.decode(policy.encode_chat(CHAT)).endswith("<|im_start|>assistant\n")
    (row,) = policy.generate([chat], SamplingParams(n=2, max_new_tokens=12, seed=1))
    assert all(c.prompt_token_ids == ids for c in row)


def test_logprobs_match_a_separate_forward_pass(policy) -> None:  # type: ignore[no-untyped-def]
    out = policy.generate([CHAT, CHAT[:1]], SamplingParams(n=2, max_new_tokens=20, seed=5, logprobs=True))
    completions = [c for row in out for c in row]
    recomputed = policy.sequence_logprobs(_samples(completions))
    for c, lp in zip(completions, recomputed):
        assert np.allclose(c.logprobs, lp, atol=2e-3), (c.logprobs, lp)


def test_same_seed_same_completions_and_no_seed_differs(policy) -> None:  # type: ignore[no-untyped-def]
    params = SamplingParams(n=2, max_new_tokens=12, seed=11)
    a = policy.generate([CHAT], params)[0]
    b = policy.generate([CHAT], params)[0]
    assert [c.token_ids for c in a] == [c.token_ids for c in b]
    c = policy.generate([CHAT], SamplingParams(n=2, max_new_tokens=12, seed=12))[0]
    assert [x.token_ids for x in a] != [x.token_ids for x in c]


def test_stop_string_truncates_text_where_it_begins(policy) -> None:  # type: ignore[no-untyped-def]
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=40)
    full = policy.generate([CHAT], greedy)[0][0]
    assert len(full.text) > 12
    stop = full.text[6:10]
    first = full.text.find(stop)
    stopped = policy.generate([CHAT], SamplingParams(n=1, temperature=0.0, max_new_tokens=40, stop=[stop]))
    c = stopped[0][0]
    assert c.finish_reason == "stop"
    assert c.text == full.text[:first]
    assert stop not in c.text
    # the sampled tokens are kept up to the one that completed the stop string
    assert c.token_ids == full.token_ids[: len(c.token_ids)]
    assert stop in policy.tokenizer.decode(c.token_ids)


def test_greedy_samples_are_identical_and_eos_ends_text(policy) -> None:  # type: ignore[no-untyped-def]
    out = policy.generate([CHAT], SamplingParams(n=3, temperature=0.0, max_new_tokens=16))[0]
    assert len({tuple(c.token_ids) for c in out}) == 1
    short = policy.generate(
        [[{"role": "user", "content": "Reply with just the word yes."}]],
        SamplingParams(n=2, temperature=0.0, max_new_tokens=30),
    )[0][0]
    if short.finish_reason == "stop":  # ended by <|im_end|>: the token is kept, the text is clean
        assert short.token_ids[-1] in policy.eos_ids
        assert "<|im_end|>" not in short.text


def test_prompt_longer_than_the_context_window(policy) -> None:  # type: ignore[no-untyped-def]
    long_chat = [{"role": "user", "content": "word " * 400}]
    with pytest.raises(ContextLengthError, match=r"prompt 0 has \d+ tokens but the context window is 256"):
        policy.generate([long_chat], SamplingParams(n=1, max_new_tokens=8))


def test_max_new_tokens_is_capped_by_the_room_left(policy) -> None:  # type: ignore[no-untyped-def]
    ids = policy.encode_chat(CHAT)
    room = 10
    prompt = ids[:1] * (policy.context_window - room - len(ids)) + ids
    out = policy.generate_from_ids([prompt], SamplingParams(n=1, temperature=0.0, max_new_tokens=200))[0][0]
    assert 1 <= len(out.token_ids) <= room
    if out.finish_reason == "length":
        assert len(out.token_ids) == room


def test_batch_chunks_and_several_prompts_keep_order(policy) -> None:  # type: ignore[no-untyped-def]
    chats = [[{"role": "user", "content": f"Say the number {i}."}] for i in range(3)]
    out = policy.generate(chats, SamplingParams(n=3, max_new_tokens=6, seed=1))  # 9 rows, batch 4
    assert [len(row) for row in out] == [3, 3, 3]
    for chat, row in zip(chats, out):
        assert all(c.prompt_token_ids == policy.encode_chat(chat) for c in row)


def test_policy_embedder(policy) -> None:  # type: ignore[no-untyped-def]
    from gasp_rl.backends.embedder import PolicyEmbedder

    emb = PolicyEmbedder(policy.model, policy.tokenizer)
    texts = ["def f(x):\n    return x + 1", "def f(x):\n    return x + 1", "The weather is nice today."]
    v = emb.embed(texts)
    assert v.shape == (3, policy.model.config.hidden_size) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) == pytest.approx(1.0, abs=1e-5)
    assert float(v[0] @ v[2]) < 0.99
    assert emb.embed([]).shape == (0, policy.model.config.hidden_size)


def test_policy_embedding_does_not_depend_on_batch_or_padding_side(policy) -> None:  # type: ignore[no-untyped-def]
    from gasp_rl.backends.embedder import PolicyEmbedder

    emb = PolicyEmbedder(policy.model, policy.tokenizer)
    short = "def g(y): return y"
    alone = emb.embed([short])[0]
    side = policy.tokenizer.padding_side
    try:
        for padding_side in ("left", "right"):
            policy.tokenizer.padding_side = padding_side
            batched = emb.embed([short, "def h(z):\n    return [i * i for i in range(z) if i % 3]"])[0]
            assert np.allclose(alone, batched, atol=1e-4)
    finally:
        policy.tokenizer.padding_side = side


# ---------------------------------------------------------------- the continuous engine (issue 14)
SHARED = [
    {"role": "system", "content": "You are a careful Python tutor. Answer briefly, with code when asked."},
    {"role": "user", "content": "What does len([1, 2, 3]) return?"},
    {"role": "assistant", "content": "It returns 3."},
]
TOPICS = ["adds two numbers", "reverses a string", "squares each item of a list", "counts vowels", "is empty"]
SHARED_CHATS = [[*SHARED, {"role": "user", "content": f"Write a Python function that {t}."}] for t in TOPICS]


def _run(policy, chats, params, **gen):  # type: ignore[no-untyped-def]
    saved = policy.gen_cfg
    policy.gen_cfg = saved.model_copy(update=gen)
    try:
        return [(c.text, c.token_ids, c.finish_reason) for row in policy.generate(chats, params) for c in row]
    finally:
        policy.gen_cfg = saved


def _assert_continuous_engine_matches(policy, params, static) -> None:  # type: ignore[no-untyped-def]
    """Every prefix-cache / refill setting of the continuous engine (batch 3 < 10 rows, so rows join
    a running batch) gives the static engine's rows."""
    for prefix_cache in (True, False):
        for refill in (True, False):
            fast = _run(
                policy,
                SHARED_CHATS,
                params,
                engine="continuous",
                batch_size=3,
                prefix_cache=prefix_cache,
                refill=refill,
            )
            assert fast == static, (prefix_cache, refill)


def test_prefix_cache_and_refill_give_the_static_engines_greedy_output(policy) -> None:  # type: ignore[no-untyped-def]
    """Greedy text and tokens are byte-identical with the shared-prefix cache and continuous refill
    (batch 3 < 10 rows, so rows join a running batch) and without them (the static engine)."""
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=24, stop=["\n\n"])
    static = _run(policy, SHARED_CHATS, params, engine="static", batch_size=3)
    from gasp_rl.backends.hf import _MIN_SHARED_PREFIX, _common_prefix_len

    encoded = [policy.encode_chat(c) for c in SHARED_CHATS]
    assert _common_prefix_len(encoded) >= _MIN_SHARED_PREFIX  # a prefix long enough to be cached
    _assert_continuous_engine_matches(policy, params, static)


def test_per_row_seeded_sampling_is_unchanged_by_the_engine(policy) -> None:  # type: ignore[no-untyped-def]
    """Sampled (not only greedy) rows are the same whichever engine, batch size, prefix cache or
    refill produced them: each row draws from its own generator, seeded by (seed, prompt index,
    sample index)."""
    params = SamplingParams(n=2, temperature=0.8, max_new_tokens=16, seed=21)
    static = _run(policy, SHARED_CHATS, params, engine="static", batch_size=4)
    _assert_continuous_engine_matches(policy, params, static)
    # a row's tokens do not depend on the rows beside it: prompt 1 keeps its index (hence its
    # seeds) while its neighbour, the shared prefix and the batch composition change
    beside_0 = _run(policy, SHARED_CHATS[0:2], params, engine="continuous", batch_size=3)
    beside_3 = _run(policy, [SHARED_CHATS[3], SHARED_CHATS[1]], params, engine="continuous", batch_size=3)
    assert beside_0[2:4] == beside_3[2:4] == static[2:4]
    assert beside_0[0:2] != beside_3[0:2]  # (the neighbours themselves differ)


def test_stop_pattern_ends_after_the_match_and_keeps_it(policy) -> None:  # type: ignore[no-untyped-def]
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=40)
    full = policy.generate([CHAT], greedy)[0][0]
    lines = full.text.split("\n")
    assert len(lines) > 2 and lines[0].strip()
    pattern = "(?m)^" + __import__("re").escape(lines[0]) + "$"
    for engine in ("continuous", "static"):
        (text, tokens, reason), *_ = _run(
            policy,
            [CHAT],
            SamplingParams(n=1, temperature=0.0, max_new_tokens=40, stop_pattern=pattern),
            engine=engine,
        )
        assert reason == "stop" and text == lines[0]
        assert tokens == full.token_ids[: len(tokens)] and len(tokens) < len(full.token_ids)
