"""Wiring policies from the config."""

from __future__ import annotations

import numpy as np
import pytest

from gasp_rl.backends.embedder import HashingEmbedder
from gasp_rl.backends.factory import approximate_token_count, build_policy
from gasp_rl.backends.openai_compat import OpenAICompatGenerator
from gasp_rl.config import Config
from gasp_rl.errors import BackendUnavailable, ModelLoadError


def test_openai_backend_is_generation_only() -> None:
    cfg = Config()
    cfg.model.backend = "openai"
    cfg.model.name_or_path = "nobody/not-cached-here"
    with build_policy(cfg) as bundle:
        assert isinstance(bundle.generator, OpenAICompatGenerator)
        assert bundle.learner is None and bundle.tokenizer is None
        assert isinstance(bundle.embedder, HashingEmbedder)
        assert bundle.count_tokens("abcdefgh") == 2
        bundle.sync()  # nothing to synchronise


def test_missing_model_path_is_a_clear_error() -> None:
    cfg = Config()
    cfg.model.name_or_path = "/no/such/model"
    with pytest.raises(ModelLoadError, match="model path not found"):
        build_policy(cfg)


def test_sentence_transformer_embedder_needs_the_extra() -> None:
    cfg = Config()
    cfg.model.backend = "openai"
    cfg.model.name_or_path = "nobody/not-cached-here"
    cfg.gasp.embedder = "/some/st-model"
    with pytest.raises((BackendUnavailable, ModelLoadError)):
        build_policy(cfg)


def test_hashing_embedder_ignores_whitespace_and_separates_texts() -> None:
    e = HashingEmbedder(dim=256)
    v = e.embed(["def f(x):\n    return x+1", "def f(x):  return x+1", "completely different words", ""])
    assert v.shape == (4, 256)
    assert float(v[0] @ v[1]) == pytest.approx(1.0, abs=1e-6)
    assert float(v[0] @ v[2]) < 0.5
    assert np.all(v[3] == 0)
    assert approximate_token_count("") == 0 and approximate_token_count("abc") == 1
