"""A 2-layer random Llama with the embedded model's tokenizer: real forward, backward and TRL
training in seconds (shared by the tests that need an in-process Hugging Face model)."""

from __future__ import annotations

from typing import Any


def tiny_llama(max_positions: int = 1024, seed: int = 0) -> tuple[Any, Any]:
    """(model in eval mode, tokenizer); the weights depend only on ``seed``."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from gasp_rl.backends.embedded import resolve_model_path

    tok = AutoTokenizer.from_pretrained(resolve_model_path("embedded", "~/.cache/gasp-rl"))
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=max_positions,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return LlamaForCausalLM(cfg).eval(), tok


def tiny_policy(**trainer: Any) -> Any:
    """An ``HFPolicy`` over :func:`tiny_llama` on the CPU, float32, with ``trainer.<key>`` overrides."""
    import torch

    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.config import Config

    model, tok = tiny_llama(max_positions=512)
    cfg = Config()
    cfg.trainer.bf16_autocast = False
    cfg.generation.bf16_autocast = False
    for k, v in trainer.items():
        setattr(cfg.trainer, k, v)
    return HFPolicy(model, tok, torch.device("cpu"), generation=cfg.generation, trainer=cfg.trainer)
