"""The vLLM backend: only where vLLM and a CUDA GPU exist; elsewhere it must fail clearly."""

from __future__ import annotations

import importlib.util

import pytest

from gasp_rl.config import Config
from gasp_rl.errors import BackendUnavailable
from gasp_rl.seams import SamplingParams


def _has_vllm_gpu() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(_has_vllm_gpu(), reason="vLLM and a GPU are present")
def test_without_vllm_or_gpu_building_is_one_clear_error() -> None:
    from gasp_rl.backends.factory import build_policy

    cfg = Config()
    cfg.model.backend = "vllm"
    with pytest.raises(BackendUnavailable, match="vllm"):
        build_policy(cfg)


@pytest.mark.gpu
@pytest.mark.skipif(not _has_vllm_gpu(), reason="needs vLLM and a CUDA GPU")
def test_vllm_generates_and_refreshes_weights() -> None:  # pragma: no cover - GPU only
    import torch

    from gasp_rl.backends.factory import build_policy

    cfg = Config()
    cfg.model.backend = "vllm"
    bundle = build_policy(cfg)
    chat = [{"role": "user", "content": "Say hi."}]
    greedy = SamplingParams(n=2, temperature=0.0, max_new_tokens=8, logprobs=True)
    before = bundle.generator.generate([chat], greedy)[0]
    assert len(before) == 2 and len(before[0].logprobs) == len(before[0].token_ids)
    with torch.no_grad():
        for p in bundle.learner.model.parameters():
            p.mul_(0.0)
    bundle.sync()
    after = bundle.generator.generate([chat], greedy)[0]
    assert after[0].token_ids != before[0].token_ids
    bundle.close()
