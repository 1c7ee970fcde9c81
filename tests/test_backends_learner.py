"""The HF learner on the real embedded model: one update moves log-probs the right way; checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gasp_rl.config import Config
from gasp_rl.seams import Learner, PolicySample, SamplingParams

pytestmark = pytest.mark.slow

CHAT = [{"role": "user", "content": "What is 7 + 5? Answer with a number."}]


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    from gasp_rl.backends.hf import HFPolicy

    cfg = Config()
    cfg.trainer.lr = 1e-5
    cfg.trainer.micro_batch_size = 1  # exercise gradient accumulation
    return HFPolicy.from_config(cfg)


def _close(a: list[list[float]], b: list[list[float]]) -> bool:
    return len(a) == len(b) and all(np.allclose(x, y, atol=1e-5) for x, y in zip(a, b))


def _pair(policy) -> list[PolicySample]:  # type: ignore[no-untyped-def]
    out = policy.generate([CHAT], SamplingParams(n=2, max_new_tokens=12, seed=7, logprobs=True))[0]
    assert out[0].token_ids != out[1].token_ids
    return [
        PolicySample(out[0].prompt_token_ids, out[0].token_ids, 1.0, old_logprobs=out[0].logprobs),
        PolicySample(out[1].prompt_token_ids, out[1].token_ids, -1.0, old_logprobs=None),
    ]


def test_one_update_raises_the_positive_and_lowers_the_negative(policy) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(policy, Learner)
    samples = _pair(policy)
    before = [sum(lp) for lp in policy.sequence_logprobs(samples)]
    metrics = policy.update(samples)
    after = [sum(lp) for lp in policy.sequence_logprobs(samples)]
    assert after[0] > before[0] + 1e-3, (before, after)
    assert after[1] < before[1] - 1e-3, (before, after)
    assert metrics["samples_trained"] == 2 and metrics["grad_norm"] > 0
    # on-policy: the ratio starts at 1 (bf16 autocast vs float32 sampling differ a little)
    assert metrics["ratio_mean"] == pytest.approx(1.0, abs=0.05)
    assert metrics["clip_frac"] < 0.2


def test_zero_advantages_are_skipped_without_touching_the_weights(policy) -> None:  # type: ignore[no-untyped-def]
    samples = [PolicySample(s.prompt_token_ids, s.completion_token_ids, 0.0) for s in _pair(policy)]
    before = policy.sequence_logprobs(samples)
    metrics = policy.update(samples)
    assert metrics["skipped"] == 1.0 and metrics["samples_trained"] == 0
    assert policy.sequence_logprobs(samples) == before


def test_per_token_advantages_and_bad_lengths(policy) -> None:  # type: ignore[no-untyped-def]
    s = _pair(policy)[0]
    n = len(s.completion_token_ids)
    ok = PolicySample(s.prompt_token_ids, s.completion_token_ids, [0.0] * (n - 1) + [1.0])
    assert policy.update([ok])["trained_tokens"] == n
    with pytest.raises(ValueError, match="advantages for"):
        policy.update([PolicySample(s.prompt_token_ids, s.completion_token_ids, [1.0] * (n + 1))])


def test_save_and_load_round_trip_atomically(policy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from gasp_rl.backends.hf import HFPolicy

    samples = _pair(policy)
    policy.update(samples)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "stale.txt").write_text("old checkpoint content")
    policy.save(ckpt)
    names = {p.name for p in ckpt.iterdir()}
    assert {"model.safetensors", "config.json", "optimizer.pt", "learner.json"} <= names
    assert "stale.txt" not in names  # replaced as a whole
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary leftovers
    expected = policy.sequence_logprobs(samples)

    cfg = Config()
    cfg.model.name_or_path = str(ckpt)  # a saved checkpoint is also a loadable model directory
    fresh = HFPolicy.from_config(cfg)
    assert _close(fresh.sequence_logprobs(samples), expected)
    other = HFPolicy.from_config(Config())
    other.load(ckpt)
    assert other.steps == policy.steps
    assert other._optimizer is not None
    assert _close(other.sequence_logprobs(samples), expected)


def test_kl_to_the_reference_is_reported(policy) -> None:  # type: ignore[no-untyped-def]
    policy.train_cfg = policy.train_cfg.model_copy(update={"kl_coef": 0.1, "loss_agg": "seq-mean-token-mean"})
    try:
        samples = _pair(policy)
        first = policy.update(samples)
        second = policy.update(samples)
        assert first["kl"] == pytest.approx(0.0, abs=1e-3)
        assert second["kl"] > 0.0
    finally:
        policy.train_cfg = policy.train_cfg.model_copy(update={"kl_coef": 0.0})
        policy._reference = None
