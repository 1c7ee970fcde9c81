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
import inspect
import json
import logging
import os
import random
import re
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gasp_rl.backends import chat_prompt_text
from gasp_rl.backends.embedded import resolve_model_path
from gasp_rl.backends.policy_loss import clipped_surrogate, kl_k3, token_weights
from gasp_rl.config import Config, GenerationConfig, ModelConfig, TrainerConfig
from gasp_rl.errors import ContextLengthError, ModelLoadError
from gasp_rl.precision import Precision
from gasp_rl.precision import resolve as resolve_precision
from gasp_rl.seams import Chat, Completion, PolicySample, SamplingParams

log = logging.getLogger(__name__)

OPTIMIZER_FILE = "optimizer.pt"
LEARNER_STATE_FILE = "learner.json"


# --------------------------------------------------------------------------------------- loading
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


# ------------------------------------------------------------------------------------ sampling
@dataclass
class _Row:
    """One completion being sampled."""

    prompt: int
    sample: int
    prompt_ids: list[int]
    max_new: int
    generator: torch.Generator | None
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    text: str | None = None
    finish_reason: str = "length"


def _row_seed(base: int, prompt: int, sample: int) -> int:
    """A per-completion seed that depends only on (base seed, prompt index, sample index), so a
    completion is reproducible whatever batch it was generated in."""
    return (base * 1_000_003 + prompt * 7_919 + sample) % (2**63 - 1)


def _choose_tokens(
    logits: torch.Tensor, rows: Sequence[_Row], temperature: float, top_p: float
) -> torch.Tensor:
    """Sample one token per row (greedy when ``temperature == 0``) from the tempered, top-p filtered
    distribution.

    Inverse-CDF sampling: each row draws a single uniform number from its own generator and the
    token is found by a batched ``searchsorted`` on the cumulative distribution.  This is as exact as
    ``torch.multinomial`` but about 10x cheaper at a 49k vocabulary (multinomial per row was 17% of
    decoding time).
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    order = None
    if top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= top_p, 0.0)
    cdf = probs.cumsum(dim=-1)
    # 1 - U(0, 1) lies in (0, 1], so a zero-probability token is never the first cdf >= target
    u = torch.stack([1.0 - torch.rand((), generator=row.generator, device=logits.device) for row in rows])
    picks = torch.searchsorted(cdf, (u[:, None] * cdf[:, -1:]).contiguous()).clamp_(max=cdf.shape[-1] - 1)
    if order is not None:
        picks = order.gather(1, picks)
    return picks[:, 0]


def _cache_kwarg(body: Any) -> str:
    """transformers 5.x names the KV cache argument ``cache`` (``past_key_values`` is deprecated and
    warns); older or remote-code models still take ``past_key_values``."""
    forward = type(body).forward
    name = _CACHE_KWARG.get(forward)
    if name is None:
        params = inspect.signature(forward).parameters
        name = "cache" if "cache" in params else "past_key_values"
        _CACHE_KWARG[forward] = name
    return name


_CACHE_KWARG: dict[Any, str] = {}

#: Tokens decoded at the end of a row to look for a stop string (plus the longest stop's length).
_STOP_TAIL_TOKENS = 8
#: A shared prompt prefix shorter than this is not worth its own forward pass.
_MIN_SHARED_PREFIX = 16


def _common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    first = seqs[0]
    n = min(len(s) for s in seqs)
    for s in seqs[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
        if n == 0:
            break
    return n


def _pad_left_time(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    """Zero-pad ``t`` on the left of dimension ``dim`` up to ``width``."""
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([t.new_zeros(shape), t], dim=dim)


@dataclass
class _Batch:
    """The live state of the continuous sampler: rows, their KV cache, attention mask, the next
    position of each row and the logits from which each row's next token is chosen."""

    rows: list[_Row]
    cache: Any
    mask: torch.Tensor
    next_pos: torch.Tensor
    logits: torch.Tensor

    def select(self, index: list[int]) -> None:
        idx = torch.tensor(index, device=self.mask.device)
        self.cache.batch_select_indices(idx)
        self.rows = [self.rows[i] for i in index]
        self.mask, self.next_pos, self.logits = self.mask[idx], self.next_pos[idx], self.logits[idx]
        self.trim()

    def trim(self) -> None:
        """Drop leading cache columns that no remaining row attends to (padding of rows gone)."""
        used = self.mask.any(dim=0).nonzero()
        start = int(used[0, 0]) if used.numel() else 0
        if start > 0:
            for layer in self.cache.layers:
                layer.keys = layer.keys[:, :, start:, :]
                layer.values = layer.values[:, :, start:, :]
            self.mask = self.mask[:, start:]

    def merge(self, other: _Batch) -> None:
        """Append ``other``'s rows; the shorter cache is left-padded (masked) to the longer one's width."""
        width = max(self.mask.shape[1], other.mask.shape[1])
        for mine, theirs in zip(self.cache.layers, other.cache.layers):
            mine.keys = torch.cat(
                [_pad_left_time(mine.keys, width, 2), _pad_left_time(theirs.keys, width, 2)]
            )
            mine.values = torch.cat(
                [_pad_left_time(mine.values, width, 2), _pad_left_time(theirs.values, width, 2)]
            )
        self.mask = torch.cat([_pad_left_time(self.mask, width, 1), _pad_left_time(other.mask, width, 1)])
        self.rows = self.rows + other.rows
        self.next_pos = torch.cat([self.next_pos, other.next_pos])
        self.logits = torch.cat([self.logits, other.logits])


def micro_batches(sizes: Sequence[int], max_rows: int, max_tokens: int) -> list[list[int]]:
    """Split row indices ``0..n-1`` (rows in the given order, ideally sorted by length) into
    micro-batches: consecutive rows while ``rows x longest row <= max_tokens`` (at least one row per
    micro-batch); with ``max_tokens == 0``, ``max_rows`` rows each."""
    chunks: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i, size in enumerate(sizes):
        if max_tokens > 0:
            fits = (len(current) + 1) * max(longest, size) <= max_tokens
        else:
            fits = len(current) < max_rows
        if current and not fits:
            chunks.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        chunks.append(current)
    return chunks


def _find_stop(text: str, stops: Sequence[str], start: int) -> int:
    """Earliest index >= ``start`` (roughly) where a stop string begins, or -1."""
    best = -1
    for s in stops:
        i = text.find(s, max(0, start - len(s)))
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


# --------------------------------------------------------------------------------------- policy
class HFPolicy:
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
    ) -> torch.Tensor:
        """Float32 logits of the last ``keep`` positions.  The transformer body may run under bf16
        autocast; the vocabulary projection never does (bf16 logits would be off by ~0.1 nat)."""
        body = self.model.get_decoder()
        head = self.model.get_output_embeddings()
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
            return head(hidden.to(head.weight.dtype)).float()

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

    # ---------------------------------------------------------------------------- generation
    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per chat prompt, sampled in chunks of ``generation.batch_size``.

        Raises :class:`ContextLengthError` if a prompt leaves no room to generate in the context
        window; otherwise ``max_new_tokens`` is capped to the room left (``finish_reason='length'``).
        """
        encoded = [self.encode_chat(chat) for chat in prompts]
        return self.generate_from_ids(encoded, params)

    def generate_from_ids(
        self, prompt_ids: list[list[int]], params: SamplingParams
    ) -> list[list[Completion]]:
        """As :meth:`generate`, for already tokenised prompts."""
        if params.n < 1:
            raise ValueError("SamplingParams.n must be >= 1")
        for i, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {i} is empty")
            if len(ids) >= self.context_window:
                raise ContextLengthError(
                    f"prompt {i} has {len(ids)} tokens but the context window is {self.context_window} "
                    f"tokens (model.max_context or the model's limit); shorten the prompt"
                )
        base = params.seed if params.seed is not None else self._rng.getrandbits(62)
        rows = [
            _Row(
                prompt=p,
                sample=s,
                prompt_ids=ids,
                max_new=min(params.max_new_tokens, self.context_window - len(ids)),
                generator=None
                if params.temperature == 0
                else torch.Generator(device=self.device).manual_seed(_row_seed(base, p, s)),
            )
            for p, ids in enumerate(prompt_ids)
            for s in range(params.n)
        ]
        # group rows of the same prompt together (shared prefill) and similar lengths together
        order = sorted(range(len(rows)), key=lambda i: (len(rows[i].prompt_ids), rows[i].prompt))
        size = self.gen_cfg.batch_size
        was_training = self.model.training
        self.model.eval()
        try:
            if self.gen_cfg.engine == "static":
                for start in range(0, len(order), size):
                    self._sample_chunk([rows[i] for i in order[start : start + size]], params)
            else:
                self._sample_continuous([rows[i] for i in order], params)
        finally:
            self.model.train(was_training)
        results: list[list[Completion]] = [[] for _ in prompt_ids]
        for row in rows:
            results[row.prompt].append(
                Completion(
                    text=row.text if row.text is not None else self._decode(row.tokens),
                    token_ids=row.tokens,
                    logprobs=row.logprobs if params.logprobs else None,
                    prompt_token_ids=row.prompt_ids,
                    finish_reason=row.finish_reason,
                )
            )
        return results

    def _decode(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(tokens, skip_special_tokens=True)

    @torch.inference_mode()
    def _sample_chunk(self, rows: list[_Row], params: SamplingParams) -> None:
        from transformers import DynamicCache

        autocast = self.gen_precision.bf16
        prompts = sorted({r.prompt for r in rows})
        slot = {p: i for i, p in enumerate(prompts)}
        first = {r.prompt: r for r in rows}
        ids, mask, positions = self._left_pad([first[p].prompt_ids for p in prompts])
        cache = DynamicCache()
        logits = self._logits(ids, mask, positions, keep=1, cache=cache, autocast=autocast)[:, -1]
        select = torch.tensor([slot[r.prompt] for r in rows], device=self.device)
        cache.batch_select_indices(select)
        logits, mask = logits[select], mask[select]
        next_pos = positions[select, -1] + 1
        active = list(rows)
        stops = [s for s in params.stop if s]
        pattern = re.compile(params.stop_pattern) if params.stop_pattern else None
        for _ in range(max(r.max_new for r in rows)):
            logp = torch.log_softmax(logits, dim=-1)
            picks = _choose_tokens(logits, active, params.temperature, params.top_p)
            chosen = logp.gather(1, picks[:, None])[:, 0].tolist()
            keep: list[int] = []
            for i, (row, tok, lp) in enumerate(zip(active, picks.tolist(), chosen)):
                row.tokens.append(tok)
                row.logprobs.append(lp)
                if self._finished_full_decode(row, tok, stops, pattern):
                    continue
                keep.append(i)
            if not keep:
                break
            if len(keep) < len(active):
                index = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(index)
                mask, next_pos, picks = mask[index], next_pos[index], picks[index]
                active = [active[i] for i in keep]
            mask = torch.cat([mask, mask.new_ones((len(active), 1))], dim=1)
            logits = self._logits(
                picks[:, None], mask, next_pos[:, None], keep=1, cache=cache, autocast=autocast
            )[:, -1]
            next_pos = next_pos + 1

    def _finished_full_decode(
        self, row: _Row, token: int, stops: list[str], pattern: re.Pattern[str] | None = None
    ) -> bool:
        """The static engine's check (``generation.engine=static``, kept to measure against): decodes
        the whole row twice per token to look for a stop string."""
        if token in self.eos_ids:
            row.finish_reason = "stop"
            row.text = self._decode(row.tokens[:-1])
            return True
        if stops:
            text = self._decode(row.tokens)
            previous = len(self._decode(row.tokens[:-1])) if len(row.tokens) > 1 else 0
            at = _find_stop(text, stops, previous)
            if at >= 0:
                row.finish_reason = "stop"
                row.text = text[:at]
                return True
        if pattern is not None and self._pattern_stop(row, token, pattern):
            return True
        if len(row.tokens) >= row.max_new:
            row.finish_reason = "length"
            return True
        return False

    def _finished(
        self, row: _Row, token: int, stops: list[str], tail: int, pattern: re.Pattern[str] | None
    ) -> bool:
        """Record why ``row`` stops after ``token``, if it does.  The end-of-sequence token stays in
        ``token_ids`` (the learner must see it to learn to stop) but not in the text; a stop string
        truncates the text where it begins while the tokens keep everything sampled.

        Incremental: only the last ``tail`` tokens are decoded to look for a stop string (a stop
        that ends in the newest token lies inside them); the whole row is decoded once, when one is
        found, to cut the text exactly where :meth:`_finished_full_decode` would."""
        if token in self.eos_ids:
            row.finish_reason = "stop"
            row.text = self._decode(row.tokens[:-1])
            return True
        if stops and any(s in self._decode(row.tokens[-tail:]) for s in stops):
            text = self._decode(row.tokens)
            previous = len(self._decode(row.tokens[:-1])) if len(row.tokens) > 1 else 0
            at = _find_stop(text, stops, previous)
            if at >= 0:
                row.finish_reason = "stop"
                row.text = text[:at]
                return True
        if pattern is not None and self._pattern_stop(row, token, pattern):
            return True
        if len(row.tokens) >= row.max_new:
            row.finish_reason = "length"
            return True
        return False

    def _pattern_stop(self, row: _Row, token: int, pattern: re.Pattern[str]) -> bool:
        """``SamplingParams.stop_pattern``: checked when a line ends (the new token holds a newline);
        the text keeps everything up to the end of the first match."""
        if "\n" not in self._decode([token]):
            return False
        text = self._decode(row.tokens)
        m = pattern.search(text)
        if m is None:
            return False
        row.finish_reason = "stop"
        row.text = text[: m.end()]
        return True

    @torch.inference_mode()
    def _sample_continuous(self, rows: list[_Row], params: SamplingParams) -> None:
        """The default engine: continuous batching over one shared-prefix KV cache.

        - The token prefix that all prompts of the call share (system prompt, worked examples) is
          prefilled once and its KV cache copied into every row (``generation.prefix_cache``).
        - Up to ``generation.batch_size`` rows decode together; a finished row leaves at once and,
          with ``generation.refill``, waiting rows are prefilled and join the running batch
          instead of waiting for its longest row.
        - Stop strings are looked for in the last few decoded tokens only.

        Each row samples from its own generator, one uniform per token, so a row's tokens do not
        depend on which rows share its batch or when it joined (greedy outputs equal the static
        engine's; tests/test_backends_hf.py checks both).
        """
        size = self.gen_cfg.batch_size
        autocast = self.gen_precision.bf16
        stops = [s for s in params.stop if s]
        tail = _STOP_TAIL_TOKENS + max((len(s) for s in stops), default=0)
        pattern = re.compile(params.stop_pattern) if params.stop_pattern else None
        clock = time.perf_counter
        stats = self.last_generation_stats = collections.Counter()
        t0 = clock()
        prefix = self._shared_prefix(rows, autocast) if self.gen_cfg.prefix_cache else None
        if prefix is not None:
            stats["prefix_tokens"] = prefix[0]
            stats["prefix_tokens_saved"] = prefix[0] * (len({r.prompt for r in rows}) - 1)
        stats["prefill_s"] += clock() - t0
        waiting = collections.deque(rows)
        batch: _Batch | None = None
        min_join = max(1, size // 4)  # refill in groups: each join costs one prefill forward
        while waiting or batch is not None:
            free = size - (len(batch.rows) if batch else 0)
            if waiting and (batch is None or (self.gen_cfg.refill and free >= min(min_join, len(waiting)))):
                t0 = clock()
                group = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                joined = self._prefill(group, prefix, autocast)
                if batch is None:
                    batch = joined
                else:
                    batch.merge(joined)
                    stats["refills"] += 1
                stats["prefill_s"] += clock() - t0
            assert batch is not None
            t0 = clock()
            logp = torch.log_softmax(batch.logits, dim=-1)
            picks = _choose_tokens(batch.logits, batch.rows, params.temperature, params.top_p)
            chosen = logp.gather(1, picks[:, None])[:, 0].tolist()
            keep: list[int] = []
            for i, (row, tok, lp) in enumerate(zip(batch.rows, picks.tolist(), chosen)):
                row.tokens.append(tok)
                row.logprobs.append(lp)
                if not self._finished(row, tok, stops, tail, pattern):
                    keep.append(i)
            if not keep:
                batch = None
                stats["sample_and_stop_s"] += clock() - t0
                continue
            if len(keep) < len(batch.rows):
                picks = picks[torch.tensor(keep, device=self.device)]
                batch.select(keep)
            t1 = clock()
            stats["sample_and_stop_s"] += t1 - t0
            batch.mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.rows), 1))], dim=1)
            batch.logits = self._logits(
                picks[:, None],
                batch.mask,
                batch.next_pos[:, None],
                keep=1,
                cache=batch.cache,
                autocast=autocast,
            )[:, -1]
            batch.next_pos = batch.next_pos + 1
            stats["decode_s"] += clock() - t1
            stats["decode_steps"] += 1
            stats["decode_row_steps"] += len(batch.rows)

    def _shared_prefix(self, rows: list[_Row], autocast: bool) -> tuple[int, list[Any]] | None:
        """(length, per-layer (keys, values)) of the token prefix all distinct prompts share, or None
        when there is none worth a forward pass.  The last token of every prompt stays out of it
        (its logits start the completion)."""
        from transformers import DynamicCache

        prompts = list({r.prompt: r.prompt_ids for r in rows}.values())
        if len(prompts) < 2:
            return None  # one prompt's n samples already share its prefill
        n = min(_common_prefix_len(prompts), min(len(p) for p in prompts) - 1)
        if n < _MIN_SHARED_PREFIX:
            return None
        ids = torch.tensor([prompts[0][:n]], dtype=torch.long, device=self.device)
        mask = torch.ones_like(ids)
        positions = torch.arange(n, device=self.device)[None, :]
        cache = DynamicCache()
        self._logits(ids, mask, positions, keep=1, cache=cache, autocast=autocast)
        if not all(hasattr(layer, "keys") and layer.keys.dim() == 4 for layer in cache.layers):
            return None  # not a plain (batch, heads, time, dim) cache: no prefix sharing
        return n, [(layer.keys, layer.values) for layer in cache.layers]

    def _prefill(self, group: list[_Row], prefix: tuple[int, list[Any]] | None, autocast: bool) -> _Batch:
        """Prefill the distinct prompts of ``group`` (on top of the shared prefix cache, when there is
        one) and return them as a batch with one row per completion."""
        from transformers import DynamicCache

        prompts = sorted({r.prompt for r in group})
        slot = {p: i for i, p in enumerate(prompts)}
        first = {r.prompt: r for r in group}
        if prefix is None:
            ids, mask, positions = self._left_pad([first[p].prompt_ids for p in prompts])
            cache = DynamicCache()
        else:
            n, layers = prefix
            ids, mask, positions = self._left_pad([first[p].prompt_ids[n:] for p in prompts])
            positions = positions + n
            k = len(prompts)
            cache = DynamicCache(
                ddp_cache_data=[(kk.expand(k, -1, -1, -1), vv.expand(k, -1, -1, -1)) for kk, vv in layers]
            )
            mask = torch.cat([mask.new_ones((k, n)), mask], dim=1)
        logits = self._logits(ids, mask, positions, keep=1, cache=cache, autocast=autocast)[:, -1]
        select = torch.tensor([slot[r.prompt] for r in group], device=self.device)
        cache.batch_select_indices(select)
        batch = _Batch(
            rows=list(group),
            cache=cache,
            mask=mask[select],
            next_pos=positions[select, -1] + 1,
            logits=logits[select],
        )
        batch.trim()
        return batch

    # ---------------------------------------------------------------------------- log-probs
    def _batch_logprobs(
        self, samples: Sequence[PolicySample], autocast: bool, model: Any = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs of each sample's completion tokens under ``model`` (default: the policy).

        Sequences are left-padded so every completion ends at the last column; the result is
        ``(B, K)`` right-aligned with ``K`` = longest completion, plus the matching 0/1 mask.
        """
        seqs = [list(s.prompt_token_ids) + list(s.completion_token_ids) for s in samples]
        lengths = [len(s.completion_token_ids) for s in samples]
        width = max(lengths)
        ids, mask, positions = self._left_pad(seqs)
        if model is not None and model is not self.model:
            policy, self.model = self.model, model
            try:
                logits = self._logits(ids, mask, positions, keep=width + 1, autocast=autocast)[:, :-1]
            finally:
                self.model = policy
        else:
            logits = self._logits(ids, mask, positions, keep=width + 1, autocast=autocast)[:, :-1]
        targets = ids[:, -width:]
        logp = torch.log_softmax(logits, dim=-1).gather(2, targets[:, :, None])[:, :, 0]
        columns = torch.arange(width, device=self.device)[None, :]
        valid = (columns >= width - torch.tensor(lengths, device=self.device)[:, None]).float()
        return logp * valid, valid

    def sequence_logprobs(self, samples: Sequence[PolicySample]) -> list[list[float]]:
        """Per-token log-probs of each completion under the current policy (float32, no autocast),
        the same quantity :meth:`generate` reports."""
        out: list[list[float]] = []
        cfg = self.train_cfg
        sizes = [len(s.prompt_token_ids) + len(s.completion_token_ids) for s in samples]
        with torch.inference_mode():
            for idx in micro_batches(sizes, cfg.micro_batch_size, cfg.micro_batch_tokens):
                chunk = [samples[i] for i in idx]
                logp, _ = self._batch_logprobs(chunk, autocast=False)
                for row, s in zip(logp.tolist(), chunk):
                    n = len(s.completion_token_ids)
                    out.append(row[len(row) - n :] if n else [])
        return out

    # ---------------------------------------------------------------------------- learning
    def _ensure_optimizer(self) -> torch.optim.Optimizer:
        if self._optimizer is None:
            self._optimizer = torch.optim.AdamW(
                [p for p in self.model.parameters() if p.requires_grad],
                lr=self.train_cfg.lr,
                weight_decay=self.train_cfg.weight_decay,
            )
        return self._optimizer

    def _ensure_reference(self) -> Any:
        """A frozen copy of the weights at the first update (only when ``kl_coef > 0``)."""
        if self._reference is None:
            import copy

            self._reference = copy.deepcopy(self.model).eval()
            for p in self._reference.parameters():
                p.requires_grad_(False)
        return self._reference

    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        """One clipped policy-gradient step (SPEC 6) over ``samples``, accumulated over micro-batches.

        Samples whose advantages are all zero contribute nothing to the surrogate and are not
        forwarded (unless a KL term is on), but they still count in the loss normaliser, so the step
        is exactly the one over the whole batch.  Without ``old_logprobs`` the ratio is taken against
        the current policy's detached log-probs (ratio 1: on-policy REINFORCE with the PPO form).
        """
        cfg = self.train_cfg
        t0 = time.perf_counter()
        _validate_samples(samples)
        lengths = [len(s.completion_token_ids) for s in samples]
        weights = token_weights(lengths, cfg.loss_agg)
        use_kl = cfg.kl_coef > 0
        work = [
            i for i, s in enumerate(samples) if lengths[i] and (use_kl or any(a != 0 for a in _adv_list(s)))
        ]
        metrics: dict[str, float] = {
            "samples": float(len(samples)),
            "samples_trained": float(len(work)),
            "completion_tokens": float(sum(lengths)),
        }
        if not work:
            metrics.update(skipped=1.0, seconds=time.perf_counter() - t0)
            return metrics
        optimizer = self._ensure_optimizer()
        reference = self._ensure_reference() if use_kl else None
        work.sort(key=lambda i: len(samples[i].prompt_token_ids) + lengths[i])
        self.model.train()
        optimizer.zero_grad(set_to_none=True)
        sums = {"loss": 0.0, "clip": 0.0, "ratio": 0.0, "kl": 0.0, "tokens": 0.0, "trained_tokens": 0.0}
        try:
            sizes = [len(samples[i].prompt_token_ids) + lengths[i] for i in work]
            for chunk_pos in micro_batches(sizes, cfg.micro_batch_size, cfg.micro_batch_tokens):
                chunk_idx = [work[k] for k in chunk_pos]
                metrics["micro_batches"] = metrics.get("micro_batches", 0.0) + 1.0
                self._micro_step(
                    [samples[i] for i in chunk_idx], [weights[i] for i in chunk_idx], reference, sums
                )
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            if torch.isfinite(grad_norm):
                optimizer.step()
            else:  # one bad batch must not poison the weights
                log.warning("non-finite gradient norm %s: update skipped", float(grad_norm))
                metrics["nonfinite_grad"] = 1.0
        finally:
            optimizer.zero_grad(set_to_none=True)
            self.model.eval()
        self.steps += 1
        n_tok = max(sums["trained_tokens"], 1.0)
        elapsed = time.perf_counter() - t0
        metrics.update(
            loss=sums["loss"],
            grad_norm=float(grad_norm),
            clip_frac=sums["clip"] / n_tok,
            ratio_mean=sums["ratio"] / n_tok,
            kl=sums["kl"] / n_tok,
            trained_tokens=sums["trained_tokens"],
            seconds=elapsed,
            tokens_per_s=sums["tokens"] / elapsed,
            step=float(self.steps),
        )
        return metrics

    def _micro_step(
        self, chunk: list[PolicySample], weights: list[float], reference: Any, sums: dict[str, float]
    ) -> None:
        cfg = self.train_cfg
        logp, valid = self._batch_logprobs(chunk, autocast=self.train_precision.bf16)
        width = logp.shape[1]
        adv = torch.tensor([_right_align(_adv_list(s), width) for s in chunk], device=self.device)
        if any(s.old_logprobs is None for s in chunk):
            given = [
                _right_align(s.old_logprobs, width) if s.old_logprobs is not None else None for s in chunk
            ]
            old = torch.stack(
                [
                    logp[i].detach() if g is None else torch.tensor(g, device=self.device)
                    for i, g in enumerate(given)
                ]
            )
        else:
            old = torch.tensor([_right_align(s.old_logprobs, width) for s in chunk], device=self.device)
        loss_tok, ratio, clipped = clipped_surrogate(logp, old, adv, cfg.clip_low, cfg.clip_high)
        kl = torch.zeros_like(loss_tok)
        if reference is not None:
            with torch.no_grad():
                ref_logp, _ = self._batch_logprobs(chunk, autocast=self.train_precision.bf16, model=reference)
            kl = kl_k3(logp, ref_logp)
            loss_tok = loss_tok + cfg.kl_coef * kl
        w = torch.tensor(weights, device=self.device)[:, None] * valid
        loss = (loss_tok * w).sum()
        loss.backward()
        sums["loss"] += float(loss.detach())
        sums["clip"] += float((clipped * valid).sum())
        sums["ratio"] += float((ratio * valid).sum())
        sums["kl"] += float((kl.detach() * valid).sum())
        sums["trained_tokens"] += float(valid.sum())
        sums["tokens"] += float(sum(len(s.prompt_token_ids) + len(s.completion_token_ids) for s in chunk))

    # ---------------------------------------------------------------------------- checkpoints
    def save(self, path: str | Path) -> None:
        """Write weights (safetensors), config, tokenizer, optimizer state and step count into
        ``path`` atomically: everything goes to a temporary sibling directory that is renamed into
        place, so a crash never leaves a half-written checkpoint under ``path``."""
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
        try:
            if self.lora:  # a checkpoint is a whole model (eval loads it): save merged weights
                import copy

                copy.deepcopy(self.model).merge_and_unload().save_pretrained(
                    str(tmp), safe_serialization=True
                )
            else:
                self.model.save_pretrained(str(tmp), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp))
            if self._optimizer is not None:
                torch.save(self._optimizer.state_dict(), tmp / OPTIMIZER_FILE)
            (tmp / LEARNER_STATE_FILE).write_text(json.dumps({"steps": self.steps}) + "\n", encoding="utf-8")
            _replace_dir(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def load(self, path: str | Path) -> None:
        """Load weights (and optimizer state and step count, when present) saved by :meth:`save`
        (or any ``save_pretrained`` directory of the same architecture) into the live model."""
        src = Path(path)
        state = _read_safetensors_dir(src)
        if self.lora:
            self._load_merged_into_lora(state)
            state_file = src / LEARNER_STATE_FILE
            if state_file.is_file():
                self.steps = int(json.loads(state_file.read_text(encoding="utf-8")).get("steps", 0))
            return
        missing, unexpected = self.model.load_state_dict(state, strict=False)
        loaded_ptrs = {p.data_ptr() for name, p in self.model.state_dict().items() if name in state}
        truly_missing = [k for k in missing if self.model.state_dict()[k].data_ptr() not in loaded_ptrs]
        if truly_missing or unexpected:
            raise ModelLoadError(
                f"checkpoint {src} does not match the model: missing {truly_missing[:5]}, "
                f"unexpected {list(unexpected)[:5]}"
            )
        opt_file = src / OPTIMIZER_FILE
        if opt_file.is_file():
            self._ensure_optimizer().load_state_dict(torch.load(opt_file, map_location=self.device))
        state_file = src / LEARNER_STATE_FILE
        if state_file.is_file():
            self.steps = int(json.loads(state_file.read_text(encoding="utf-8")).get("steps", 0))

    @property
    def lora(self) -> bool:
        return self.train_cfg.lora_rank > 0

    def _load_merged_into_lora(self, state: dict[str, torch.Tensor]) -> None:
        """A checkpoint holds merged weights: load them into the base layers and zero the adapters'
        B matrices, so the live policy equals the checkpoint.  The optimizer starts afresh (its
        moments belonged to the adapters before the merge)."""
        live = self.model.get_base_model()
        names = dict(live.named_parameters())
        names.update(dict(live.named_buffers()))
        unmatched = []
        with torch.no_grad():
            for key, value in state.items():
                candidates = (
                    key,
                    key.replace(".weight", ".base_layer.weight"),
                    key.replace(".bias", ".base_layer.bias"),
                )
                target = next((names[c] for c in candidates if c in names), None)
                if target is None:
                    unmatched.append(key)
                    continue
                target.copy_(value.to(target.dtype))
            for name, p in live.named_parameters():
                if "lora_B" in name:
                    p.zero_()
        tied = {"lm_head.weight"}
        if [k for k in unmatched if k not in tied]:
            raise ModelLoadError(f"checkpoint does not match the LoRA model: unexpected {unmatched[:5]}")
        self._optimizer = None

    def close(self) -> None:
        self._optimizer = None
        self._reference = None


# ------------------------------------------------------------------------------------ helpers
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


def _adv_list(s: PolicySample) -> list[float]:
    n = len(s.completion_token_ids)
    if isinstance(s.advantage, int | float):
        return [float(s.advantage)] * n
    return [float(a) for a in s.advantage]


def _right_align(values: Sequence[float] | None, width: int) -> list[float]:
    vals = list(values or [])
    return [0.0] * (width - len(vals)) + vals


def _validate_samples(samples: Sequence[PolicySample]) -> None:
    for i, s in enumerate(samples):
        n = len(s.completion_token_ids)
        if not s.prompt_token_ids:
            raise ValueError(f"sample {i} has an empty prompt")
        if not isinstance(s.advantage, int | float) and len(s.advantage) != n:
            raise ValueError(f"sample {i}: {len(s.advantage)} advantages for {n} completion tokens")
        if s.old_logprobs is not None and len(s.old_logprobs) != n:
            raise ValueError(f"sample {i}: {len(s.old_logprobs)} old log-probs for {n} completion tokens")


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``; an existing ``dest`` is moved aside first and deleted after."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(dest, old)
    os.replace(tmp, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


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
