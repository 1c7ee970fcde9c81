"""The sampling engine of :class:`~gasp_rl.backends.hf.HFPolicy` (see its module docstring): a
hand-written decoding loop with per-completion seeds, unscaled log-probabilities, stop strings,
one shared prompt prefill per ``n`` samples and finished rows dropped from the batch.

:class:`SamplingEngine` is mixed into ``HFPolicy``; it uses the policy's ``model``, ``tokenizer``,
``device``, ``gen_cfg``, ``context_window``, ``eos_ids``, ``pad_id``, ``encode_chat``,
``_logits`` and ``_left_pad``.

With ``generation.int8_sampling`` every forward pass of a generate call runs on
:class:`Int8Sampler`'s copy of the policy (int8 dynamic-quantized body, float32 head), rebuilt when
the policy's weights have changed since it was made.  With LoRA (``trainer.lora_rank > 0``) on the
CPU it runs on :class:`MergedLoraSampler`'s plain copy with the adapters merged into the weights,
refreshed in place after each update (``generation.merge_lora``, on by default).  Under bf16
autocast over float32 weights it runs on :class:`Bf16Sampler`'s copy with the body's Linear weights
stored in bf16, refreshed in place after each update (``generation.bf16_weights``, on by default):
the same logits, without converting every weight again at every decode step.
"""

from __future__ import annotations

import collections
import copy
import inspect
import logging
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from gasp_rl.backends.kv_cache import drop_front, growing_cache
from gasp_rl.backends.prefix import prefix_groups
from gasp_rl.errors import ContextLengthError
from gasp_rl.seams import Chat, Completion, SamplingParams

log = logging.getLogger("gasp_rl.backends.hf")


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
                drop_front(layer, start)
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


def weights_version(model: Any) -> tuple[int, int]:
    """Changes whenever any parameter or buffer is written in place (optimizer steps, ``load``)
    or the model object is replaced."""
    return id(model), sum(t._version for t in (*model.parameters(), *model.buffers()))


class _SamplingCopy:
    """A copy of the policy that the sampler runs on, refreshed on first use after the policy's
    weights change (:func:`weights_version`); its parameters never take gradients."""

    def __init__(self) -> None:
        self._copy: Any = None
        self._version: tuple[int, int] | None = None
        self.rebuilds = 0

    def model_for(self, source: Any) -> Any:
        version = weights_version(source)
        if self._copy is None or version != self._version:
            self._copy = self._refresh(source, self._copy)
            for p in self._copy.parameters():
                p.requires_grad_(False)
            self._version = version
            self.rebuilds += 1
        return self._copy

    def _refresh(self, source: Any, old: Any) -> Any:
        raise NotImplementedError


class Int8Sampler(_SamplingCopy):
    """A sampling copy of a causal LM with int8 dynamic-quantized Linear layers in its body.

    The copy is rebuilt on first use after the source's weights change.  Only the transformer body
    is quantized: the vocabulary head stays float32, like the logits under bf16 autocast.  CPU only:
    ``torch.ao.quantization.quantize_dynamic``, which torch has marked deprecated (its successor is
    torchao), hence experimental.
    """

    def _refresh(self, source: Any, old: Any) -> Any:
        clone = copy.deepcopy(source).eval().requires_grad_(False)  # before the packing below
        body = clone.get_decoder()
        with warnings.catch_warnings():
            # torch marks its eager quantization deprecated in favour of torchao (not a
            # dependency); the option is experimental and documented as built on it
            warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated")
            warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions")
            quantized = torch.ao.quantization.quantize_dynamic(
                body, {torch.nn.Linear}, dtype=torch.qint8, inplace=True
            )
        clone.set_decoder(quantized)
        return clone


class Bf16Sampler(_SamplingCopy):
    """A copy of the policy whose transformer-body Linear weights (and biases) are stored in bf16,
    for sampling under bf16 autocast.

    Autocast converts every float32 weight to bf16 on each call, so each decode step would read
    the float32 weights and write their bf16 copy again (about 8-11 ms of a 50-140 ms step of the
    embedded model on a 2-core CPU, README).  The copy holds exactly those bf16 values, converted
    once per weight change, so the body computes the same bf16 products: identical logits.  Every
    other tensor (norms, embeddings, the vocabulary head) is the policy's own storage, shared, so
    it follows updates by itself; a refresh converts only the bf16 weights again.
    """

    def _refresh(self, source: Any, old: Any) -> Any:
        clone = bf16_linear_copy(source) if old is None else old
        live = dict(source.named_parameters())
        live.update(source.named_buffers())
        with torch.no_grad():
            for name, target in [*clone.named_parameters(), *clone.named_buffers()]:
                if target.dtype == live[name].dtype:
                    target.data = live[name].data  # shared (re-pointed if the source was replaced)
                else:
                    target.copy_(live[name])  # a bf16 Linear weight, converted again
        return clone


def bf16_linear_copy(model: Any) -> Any:
    """A deep copy of ``model`` in eval mode whose transformer-body Linear weights and biases are
    stored in bf16 (the values bf16 autocast computes from them); everything else as it was."""
    clone = copy.deepcopy(model).eval()
    for module in clone.get_decoder().modules():
        if isinstance(module, torch.nn.Linear):
            for name in ("weight", "bias"):
                t = getattr(module, name)
                if t is not None and t.dtype == torch.float32:
                    t.data = t.data.to(torch.bfloat16)
    return clone


def has_float32_linear_body(model: Any) -> bool:
    """Whether any Linear layer of ``model``'s transformer body keeps float32 weights (then a bf16
    sampling copy saves autocast its per-call conversions)."""
    return any(
        isinstance(m, torch.nn.Linear) and m.weight.dtype == torch.float32
        for m in model.get_decoder().modules()
    )


class MergedLoraSampler(_SamplingCopy):
    """A plain copy of a LoRA policy (peft) with its adapters merged into the weights, for sampling
    on the CPU: one matmul per Linear instead of the base matmul plus two adapter matmuls.

    Made once with peft's ``merge_and_unload`` on a deep copy; after an update it is refreshed in
    place, each adapted Linear's weight set to ``W + get_delta_weight()`` (``W + s B A``) and every
    other tensor copied, so the copy is always the policy's current function.  Plain LoRA as
    ``hf_loading._with_lora`` configures it (no DoRA, no adapter bias, adapters never merged into
    the source).  Costs one more copy of the weights in memory.
    """

    def _refresh(self, source: Any, old: Any) -> Any:
        if old is None:
            return copy.deepcopy(source).merge_and_unload().eval()
        base = source.get_base_model()
        with torch.no_grad():
            for name, target in [*old.named_parameters(), *old.named_buffers()]:
                module_name, _, attr = name.rpartition(".")
                module = base.get_submodule(module_name)
                layer = getattr(module, "base_layer", None)
                if layer is None:
                    target.copy_(getattr(module, attr))
                    continue
                value = getattr(layer, attr)
                if attr == "weight":
                    for adapter in module.active_adapters:
                        value = value + module.get_delta_weight(adapter)
                target.copy_(value)
        return old


class SamplingEngine:
    """The :class:`~gasp_rl.seams.Generator` half of ``HFPolicy``."""

    #: the model every forward pass of the current generate call runs on (the policy, its int8
    #: sampling copy, or its merged LoRA copy)
    _sampler: Any = None
    _int8: Int8Sampler | None = None
    _merged: MergedLoraSampler | None = None
    _bf16: Bf16Sampler | None = None

    def sampling_model(self) -> Any:
        """The policy itself; with ``generation.int8_sampling`` its current int8 copy; on the CPU
        with LoRA (``trainer.lora_rank > 0``) and ``generation.merge_lora`` its current merged copy;
        otherwise, when sampling runs under bf16 autocast over float32 weights and
        ``generation.bf16_weights`` is on, its current copy with bf16 Linear weights."""
        if not self.gen_cfg.int8_sampling:
            if self.train_cfg.lora_rank > 0:
                if self.device.type == "cpu" and self.gen_cfg.merge_lora:
                    if self._merged is None:
                        self._merged = MergedLoraSampler()
                    return self._merged.model_for(self.model)
                return self.model
            if self.gen_cfg.bf16_weights and self.gen_precision.bf16:
                if self._bf16 is None:
                    if not has_float32_linear_body(self.model):
                        return self.model  # already bf16 (model.dtype): nothing to convert
                    self._bf16 = Bf16Sampler()
                return self._bf16.model_for(self.model)
            return self.model
        if self.device.type != "cpu":
            raise ValueError("generation.int8_sampling is CPU only (torch quantize_dynamic)")
        if self.train_cfg.lora_rank > 0:
            raise ValueError("generation.int8_sampling does not combine with trainer.lora_rank > 0")
        if self.gen_precision.bf16:
            raise ValueError(
                "generation.int8_sampling samples in float32: set generation.bf16_autocast=false "
                f"(it resolved to bf16: {self.gen_precision.reason})"
            )
        if self._int8 is None:
            self._int8 = Int8Sampler()
        return self._int8.model_for(self.model)

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
        self._sampler = self.sampling_model()
        try:
            if self.gen_cfg.engine == "static":
                for start in range(0, len(order), size):
                    self._sample_chunk([rows[i] for i in order[start : start + size]], params)
            else:
                self._sample_continuous([rows[i] for i in order], params)
        finally:
            self.model.train(was_training)
            self._sampler = None
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
        logits = self._logits(
            ids, mask, positions, keep=1, cache=cache, autocast=autocast, model=self._sampler, sampling=True
        )[:, -1]
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
                picks[:, None],
                mask,
                next_pos[:, None],
                keep=1,
                cache=cache,
                autocast=autocast,
                model=self._sampler,
                sampling=True,
            )[:, -1]
            next_pos = next_pos + 1

    def _finished_full_decode(
        self, row: _Row, token: int, stops: list[str], pattern: re.Pattern[str] | None = None
    ) -> bool:
        """The static engine's check (``generation.engine=static``, kept to measure against): decodes
        the whole row twice per token to look for a stop string."""
        return self._finished(row, token, stops, None, pattern)

    def _finished(
        self, row: _Row, token: int, stops: list[str], tail: int | None, pattern: re.Pattern[str] | None
    ) -> bool:
        """Record why ``row`` stops after ``token``, if it does.  The end-of-sequence token stays in
        ``token_ids`` (the learner must see it to learn to stop) but not in the text; a stop string
        truncates the text where it begins while the tokens keep everything sampled.

        Incremental: only the last ``tail`` tokens are decoded to look for a stop string (a stop
        that ends in the newest token lies inside them); the whole row is decoded once, when one is
        found, to cut the text exactly where a full decode would (``tail=None``: always decode
        the whole row, the static engine's way)."""
        if token in self.eos_ids:
            row.finish_reason = "stop"
            row.text = self._decode(row.tokens[:-1])
            return True
        if stops and (tail is None or any(s in self._decode(row.tokens[-tail:]) for s in stops)):
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
        """The default engine: continuous batching over shared-prefix KV caches.

        - A token prefix that several prompts of the call share (system prompt, worked examples) is
          prefilled once and its KV cache copied into each of their rows
          (``generation.prefix_cache``; prompts are grouped by :func:`prefix_groups`).
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
        prefixes = self._shared_prefixes(rows, autocast) if self.gen_cfg.prefix_cache else {}
        for n, _ in {id(v[1]): v for v in prefixes.values()}.values():
            stats["prefix_tokens"] += n
        stats["prefix_tokens_saved"] = sum(n for n, _ in prefixes.values()) - stats["prefix_tokens"]
        stats["prefill_s"] += clock() - t0
        waiting = collections.deque(rows)
        batch: _Batch | None = None
        min_join = max(1, size // 4)  # refill in groups: each join costs one prefill forward
        while waiting or batch is not None:
            free = size - (len(batch.rows) if batch else 0)
            if waiting and (batch is None or (self.gen_cfg.refill and free >= min(min_join, len(waiting)))):
                t0 = clock()
                group = [waiting.popleft() for _ in range(min(free, len(waiting)))]
                joined = self._prefill(group, prefixes, autocast)
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
                model=self._sampler,
                sampling=True,
            )[:, -1]
            batch.next_pos = batch.next_pos + 1
            stats["decode_s"] += clock() - t1
            stats["decode_steps"] += 1
            stats["decode_row_steps"] += len(batch.rows)

    def _shared_prefixes(self, rows: list[_Row], autocast: bool) -> dict[int, tuple[int, list[Any]]]:
        """The prefix cache of each prompt that shares one: prompt index -> (length, per-layer
        (keys, values)).  The distinct prompts are grouped by :func:`prefix_groups` (e.g. the io-
        and f-axis teacher prompts, each group with its own worked example) and each group's
        prefix is prefilled once.  The last token of every prompt stays out of it (its logits
        start the completion)."""
        prompts = {r.prompt: r.prompt_ids for r in rows}
        keys = list(prompts)
        if len(keys) < 2:
            return {}  # one prompt's n samples already share its prefill
        out: dict[int, tuple[int, list[Any]]] = {}
        for n, members in prefix_groups([prompts[k] for k in keys]):
            if n == 0:
                continue
            layers = self.prefix_kv(prompts[keys[members[0]]][:n], autocast, model=self._sampler)
            if layers is None:
                return {}  # not a plain (batch, heads, time, dim) cache: no prefix sharing
            for m in members:
                out[keys[m]] = (n, layers)
        return out

    def _prefill(
        self, group: list[_Row], prefixes: dict[int, tuple[int, list[Any]]], autocast: bool
    ) -> _Batch:
        """Prefill the distinct prompts of ``group`` (each on top of its shared prefix cache, when
        it has one) and return them as a batch with one row per completion."""
        prompts = sorted({r.prompt for r in group})
        slot = {p: i for i, p in enumerate(prompts)}
        first = {r.prompt: r for r in group}
        mine = [prefixes.get(p) for p in prompts]
        ids, mask, positions = self._left_pad(
            [first[p].prompt_ids[pre[0] if pre else 0 :] for p, pre in zip(prompts, mine)]
        )
        if any(pre is not None for pre in mine):
            shared = mine[0] if all(pre is mine[0] for pre in mine) else mine
            cache, mask, positions = self.attach_prefix(shared, mask, positions, growing=True)
        else:
            cache = growing_cache()
        logits = self._logits(
            ids, mask, positions, keep=1, cache=cache, autocast=autocast, model=self._sampler, sampling=True
        )[:, -1]
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
