"""Loading a Hugging Face causal LM for :class:`~gasp_rl.backends.hf.HFPolicy`: device, dtype,
model + tokenizer (offline), LoRA adapters, and reading / swapping checkpoint directories."""

from __future__ import annotations

import json
import logging
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from gasp_rl.backends.embedded import resolve_model_path
from gasp_rl.config import ModelConfig, TrainerConfig
from gasp_rl.errors import ModelLoadError

log = logging.getLogger("gasp_rl.backends.hf")


def resolve_device(name: str) -> torch.device:
    """``auto`` -> ``cuda`` when available, else ``cpu``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as e:
        raise ModelLoadError(f"model.device={name!r} is not a torch device: {e}") from None


def resolve_dtype(name: str) -> torch.dtype:
    """``model.dtype`` -> torch dtype; ``auto`` keeps float32 master weights (see
    :mod:`gasp_rl.precision`)."""
    return {"auto": torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16}.get(
        name, torch.float16
    )


def load_model_and_tokenizer(cfg: ModelConfig) -> tuple[Any, Any, torch.device]:
    """Resolve ``cfg.name_or_path`` (embedded / GGUF / directory / hub id) and load it for causal LM.

    Raises :class:`ModelLoadError` with the path and the underlying reason, never a deep traceback.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path(cfg.name_or_path, cfg.cache_dir)
    device = resolve_device(cfg.device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=resolve_dtype(cfg.dtype), trust_remote_code=cfg.trust_remote_code
        )
    except Exception as e:
        hint = " (no network here: a hub id must already be in the local Hugging Face cache)"
        raise ModelLoadError(
            f"could not load model {cfg.name_or_path!r} from {path}: {type(e).__name__}: {e}"
            + (hint if not os.path.isdir(path) else "")
        ) from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer, device


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (gen_eos, tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list | tuple):
            ids.update(int(v) for v in value)
    return ids


def _autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    if not enabled:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _with_lora(model: Any, cfg: TrainerConfig) -> Any:
    """``model`` with LoRA adapters of rank ``cfg.lora_rank`` on every linear layer (peft).  The
    adapters live inside the model's modules, so generation samples from the adapted policy."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise ModelLoadError(
            f"trainer.lora_rank={cfg.lora_rank} needs the peft package: pip install 'gasp-rl[lora]' "
            "(or set trainer.lora_rank=0 for a full fine-tune)"
        ) from None
    config = LoraConfig(
        r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules="all-linear"
    )
    wrapped = get_peft_model(model, config)
    wrapped.eval()
    return wrapped


def _read_safetensors_dir(src: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    single = src / "model.safetensors"
    index = src / "model.safetensors.index.json"
    if single.is_file():
        return load_file(str(single))
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(load_file(str(src / shard)))
        return state
    raise ModelLoadError(f"no model.safetensors (or index) in checkpoint directory {src}")
