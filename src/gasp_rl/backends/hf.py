"""The Hugging Face (transformers + torch) policy: one in-process model that both generates and learns.

:class:`HFPolicy` implements both the :class:`~gasp_rl.seams.Generator` and the
:class:`~gasp_rl.seams.Learner` seams on the *same* weights, so there is nothing to synchronise
between rollouts and updates: the next ``generate`` after an ``update`` samples from the new policy.

Generation is a small hand-written decoding loop rather than ``model.generate``, because the loop
needs things ``generate`` does not give together: per-completion seeds that do not depend on the
batch composition, log-probabilities of the *unscaled* distribution, stop strings that truncate the
text (vLLM semantics), sharing one prompt prefill across its ``n`` samples, and dropping finished
rows from the batch so short answers do not pay for long ones.

Log-probabilities.  Each returned ``logprobs[t]`` is ``log softmax(logits)[token_t]`` of the policy at
temperature 1, whatever temperature / top-p the token was *sampled* with.  That is the quantity the
learner recomputes, so the PPO ratio ``exp(new - old)`` is 1 for an unchanged policy.  The final
projection to the vocabulary always runs in float32 (also under bf16 autocast), so the two sides
agree to ~1e-4 when they use the same precision.
"""

from __future__ import annotations

import collections
import logging
import random
from collections.abc import Sequence
from typing import Any

import torch

from gasp_rl.backends import chat_prompt_text, cpu_head
from gasp_rl.backends.cpu_attention import use_native_gqa
from gasp_rl.backends.hf_learner import LEARNER_STATE_FILE, OPTIMIZER_FILE, PolicyLearner
from gasp_rl.backends.hf_loading import (
    _autocast,
    _eos_ids,
    _with_lora,
    load_model_and_tokenizer,
    resolve_device,
    resolve_dtype,
)
from gasp_rl.backends.hf_sampling import SamplingEngine, _cache_kwarg, _pad_left_time, micro_batches
from gasp_rl.backends.kv_cache import growing_cache
from gasp_rl.backends.prefix import MIN_SHARED_PREFIX as _MIN_SHARED_PREFIX
from gasp_rl.backends.prefix import common_prefix_len as _common_prefix_len
from gasp_rl.config import Config, GenerationConfig, TrainerConfig
from gasp_rl.precision import Precision
from gasp_rl.precision import resolve as resolve_precision
from gasp_rl.seams import Chat

log = logging.getLogger("gasp_rl.backends.hf")

__all__ = [
    "LEARNER_STATE_FILE",
    "OPTIMIZER_FILE",
    "_MIN_SHARED_PREFIX",
    "HFPolicy",
    "_common_prefix_len",
    "load_model_and_tokenizer",
    "micro_batches",
    "resolve_device",
    "resolve_dtype",
]


class HFPolicy(SamplingEngine, PolicyLearner):
    """Generator + Learner over one transformers causal LM (shared weights, no sync needed)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        device: torch.device,
        generation: GenerationConfig | None = None,
        trainer: TrainerConfig | None = None,
        max_context: int = 2048,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.gen_cfg = generation or GenerationConfig()
        self.train_cfg = trainer or TrainerConfig()
        model_limit = getattr(model.config, "max_position_embeddings", None) or max_context
        self.context_window = min(max_context, int(model_limit))
        self.eos_ids = _eos_ids(model, tokenizer)
        self.pad_id = int(tokenizer.pad_token_id)
        self._rng = random.Random(seed)
        self._optimizer: torch.optim.Optimizer | None = None
        self._reference: Any = None
        self.steps = 0
        self._warned_no_template = False
        #: where the last continuous-engine generate call spent its time (seconds, counts)
        self.last_generation_stats: collections.Counter[str] = collections.Counter()
        #: the attention implementation in use (``gasp_cpu_sdpa`` on a CPU with grouped KV heads)
        self.native_gqa = use_native_gqa(model, device)
        if self.train_cfg.lora_rank > 0:
            self.model = _with_lora(model, self.train_cfg)
        if self.train_cfg.gradient_checkpointing:
            enable = getattr(self.model, "activation_checkpointing_enable", None)
            if enable is not None:  # transformers >= 5.x
                enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.model.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False}
                )
        for what, prec in (("sampling", self.gen_precision), ("learning", self.train_precision)):
            log.info("%s in %s (%s)", what, prec.name, prec.reason)

    @property
    def gen_precision(self) -> Precision:
        """``generation.bf16_autocast`` resolved for this device (the probe is cached)."""
        return resolve_precision(self.gen_cfg.bf16_autocast, self.device)

    @property
    def train_precision(self) -> Precision:
        """``trainer.bf16_autocast`` resolved for this device."""
        return resolve_precision(self.train_cfg.bf16_autocast, self.device)

    @classmethod
    def from_config(cls, cfg: Config) -> HFPolicy:
        model, tokenizer, device = load_model_and_tokenizer(cfg.model)
        return cls(
            model,
            tokenizer,
            device,
            generation=cfg.generation,
            trainer=cfg.trainer,
            max_context=cfg.model.max_context,
            seed=cfg.trainer.seed,
        )

    # ---------------------------------------------------------------------------- tokenisation
    def encode_chat(self, chat: Chat) -> list[int]:
        """Token ids of ``chat`` rendered with the model's chat template, ending where the assistant
        starts writing.  A chat whose last message is from the assistant is *continued* (a prefill
        such as an opening code fence).  Models without a template get the contents joined by blank
        lines (plain completion), with a warning."""
        if not chat:
            raise ValueError("empty chat")
        if self.tokenizer.chat_template is None:
            if not self._warned_no_template:
                log.warning("tokenizer has no chat template: prompts are the message contents joined")
                self._warned_no_template = True
            text = "\n\n".join(m["content"] for m in chat)
        else:
            text = chat_prompt_text(self.tokenizer, chat)
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # ---------------------------------------------------------------------------- forward pass
    def _logits(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        keep: int,
        cache: Any = None,
        autocast: bool = False,
        model: Any = None,
        sampling: bool = False,
    ) -> torch.Tensor:
        """Float32 logits of the last ``keep`` positions under ``model`` (default: the policy).  The
        transformer body may run under bf16 autocast; the vocabulary projection never does (bf16
        logits would be off by ~0.1 nat).  ``sampling``: the projection may run on the faster CPU
        kernel measured here (:mod:`gasp_rl.backends.cpu_head`); the learner's never does."""
        model = self.model if model is None else model
        body = model.get_decoder()
        head = model.get_output_embeddings()
        with _autocast(self.device, autocast):
            out = body(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=cache is not None,
                **{_cache_kwarg(body): cache},
            )
        hidden = out.last_hidden_state[:, -keep:, :]
        with _autocast(self.device, False):
            hidden = hidden.to(head.weight.dtype)
            if sampling and type(head) is torch.nn.Linear:
                return cpu_head.project(hidden, head.weight, head.bias).float()
            return head(hidden).float()

    def prefix_kv(self, ids: Sequence[int], autocast: bool, model: Any = None) -> list[Any] | None:
        """Per-layer ``(keys, values)`` (each ``(1, heads, len(ids), dim)``) of the token prefix
        ``ids`` under ``model`` (default: the policy), with autograd when grad mode is on; None for
        a model whose cache is not plain per-layer tensors (then nothing is shared)."""
        from transformers import DynamicCache

        t = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        cache = DynamicCache()
        positions = torch.arange(t.shape[1], device=self.device)[None, :]
        self._logits(t, torch.ones_like(t), positions, keep=1, cache=cache, autocast=autocast, model=model)
        if not all(hasattr(layer, "keys") and layer.keys.dim() == 4 for layer in cache.layers):
            return None
        return [(layer.keys, layer.values) for layer in cache.layers]

    def attach_prefix(
        self,
        prefix: tuple[int, list[Any]] | Sequence[tuple[int, list[Any]] | None],
        mask: torch.Tensor,
        positions: torch.Tensor,
        growing: bool = False,
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Put prefix KV caches in front of a left-padded batch of suffixes: ``(cache, mask,
        positions)`` for the forward pass of the suffixes.

        ``prefix`` is one ``(P, layers)`` for every row (shared through ``expand``, no copy) or one
        per row (``None``: no prefix); rows with shorter prefixes are left-padded with masked
        zeros.  Positions continue after each row's own prefix.  ``growing``: a sampler's cache
        (:func:`~gasp_rl.backends.kv_cache.growing_cache`), else a plain ``DynamicCache``."""
        from transformers import DynamicCache

        def make(data: list[Any]) -> Any:
            return growing_cache(data) if growing else DynamicCache(ddp_cache_data=data)

        b = mask.shape[0]
        if isinstance(prefix, tuple):
            n, layers = prefix
            data = [(k.expand(b, -1, -1, -1), v.expand(b, -1, -1, -1)) for k, v in layers]
            return make(data), torch.cat([mask.new_ones((b, n)), mask], dim=1), positions + n
        rows = list(prefix)
        width = max((p[0] for p in rows if p is not None), default=0)
        template = next(p[1] for p in rows if p is not None)
        data = []
        for layer, (k0, v0) in enumerate(template):
            ks, vs = [], []
            for p in rows:
                k, v = p[1][layer] if p is not None else (k0[:, :, :0], v0[:, :, :0])
                ks.append(_pad_left_time(k, width, 2))
                vs.append(_pad_left_time(v, width, 2))
            data.append((torch.cat(ks), torch.cat(vs)))
        lens = torch.tensor([p[0] if p is not None else 0 for p in rows], device=mask.device)
        cols = torch.arange(width, device=mask.device)[None, :]
        front = (cols >= width - lens[:, None]).to(mask.dtype)
        return make(data), torch.cat([front, mask], dim=1), positions + lens[:, None]

    def _left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            if s:
                ids[i, width - len(s) :] = torch.tensor(s, dtype=torch.long)
                mask[i, width - len(s) :] = 1
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
        return ids.to(self.device), mask.to(self.device), positions.to(self.device)

    def close(self) -> None:
        self._optimizer = None
        self._reference = None
