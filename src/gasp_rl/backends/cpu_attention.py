"""Scaled dot-product attention with grouped key/value heads computed natively on the CPU.

SmolLM2 (like Llama, Qwen and Mistral models) has fewer key/value heads than query heads (3 for 9).
transformers' ``sdpa`` attention copies every key/value head once per query head of its group
(``repeat_kv``) whenever an attention mask is given on a multi-token query, because CUDA's fused
kernels take no mask together with grouped heads.  Our batches always carry a mask (left padding,
shared prefixes), so every prefill and every learner forward copied each layer's keys and values
three times.  This module registers the attention implementation ``gasp_cpu_sdpa``, which
:func:`use_native_gqa` switches a CPU model to:

- a multi-token query goes to torch's SDPA with ``enable_gqa`` (the CPU kernel takes the mask and
  the grouped heads together);
- a one-token query (a decode step) is *packed*: the query heads of a group become that key/value
  head's rows, ``(batch, kv_heads, group, dim)``, and the mask, the same for every head, broadcasts
  over them.  No copy, and an ordinary SDPA call: with ``enable_gqa`` the CPU kernel took 6.6x as
  long in bf16 (5.4 against 0.8 ms per layer, batch 32, 300 cached tokens, AVX512-BF16 EPYC) and
  1.6x in float32.

Measured on the embedded model (``benchmarks/generation_throughput.py``): see the README's *Policy
backends*.  Numerically the outputs and gradients equal the ``sdpa`` path's
(tests/test_prefix_sharing.py compares them, prefill and decode).
"""

from __future__ import annotations

from typing import Any

import torch

NAME = "gasp_cpu_sdpa"


def attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: ``(batch, heads, time, dim)`` query, key and
    value in, ``(batch, time, heads, dim)`` out.  Causal without a mask on a multi-token query
    (a prefill of unpadded rows), else exactly the mask given."""
    if kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        raise ValueError(f"{NAME} supports neither softcap nor position_bias: use attn_implementation='sdpa'")
    batch, heads, q_len, dim = query.shape
    kv_heads = key.shape[1]
    if q_len == 1 and kv_heads != heads:
        group = heads // kv_heads
        mask = attention_mask
        if mask is not None and mask.shape[1] != 1:  # a per-head mask is packed like the query
            mask = mask.reshape(mask.shape[0], kv_heads, group, mask.shape[-1])
        out = torch.nn.functional.scaled_dot_product_attention(
            query.reshape(batch, kv_heads, group, dim),
            key,
            value,
            attn_mask=mask,
            dropout_p=dropout,
            scale=scaling,
        )
        return out.reshape(batch, 1, heads, dim), None
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    out = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
        is_causal=bool(causal and attention_mask is None and query.shape[2] > 1),
        enable_gqa=kv_heads != heads,
    )
    return out.transpose(1, 2).contiguous(), None


def use_native_gqa(model: Any, device: torch.device) -> bool:
    """Switch ``model`` to :data:`NAME` when it runs on the CPU with transformers' ``sdpa``
    attention and has grouped key/value heads; True if it was switched."""
    config = getattr(model, "config", None)
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None)
    if (
        device.type != "cpu"
        or getattr(config, "_attn_implementation", None) != "sdpa"
        or not heads
        or not kv_heads
        or kv_heads >= heads
        or not hasattr(model, "set_attn_implementation")
    ):
        return False
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return model.config._attn_implementation == NAME
