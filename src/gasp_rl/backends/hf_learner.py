"""The learner of :class:`~gasp_rl.backends.hf.HFPolicy`: log-probabilities of completions, the
clipped policy-gradient update (micro-batched, optional KL to a frozen reference), and saving /
loading weights with the optimizer state.

:class:`PolicyLearner` is mixed into ``HFPolicy``; it uses the policy's ``model``, ``tokenizer``,
``device``, ``train_cfg``, ``_optimizer``, ``_reference``, ``steps``, ``_logits`` and ``_left_pad``.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from gasp_rl.backends.hf_loading import _read_safetensors_dir
from gasp_rl.backends.hf_sampling import bf16_linear_copy, micro_batches
from gasp_rl.backends.policy_loss import clipped_surrogate, kl_k3, token_weights
from gasp_rl.backends.prefix import prefix_groups
from gasp_rl.errors import ModelLoadError
from gasp_rl.runs import replace_dir
from gasp_rl.seams import PolicySample

log = logging.getLogger("gasp_rl.backends.hf")

OPTIMIZER_FILE = "optimizer.pt"
LEARNER_STATE_FILE = "learner.json"


class PolicyLearner:
    """The :class:`~gasp_rl.seams.Learner` half of ``HFPolicy``."""

    def batch_logprobs(
        self,
        samples: Sequence[PolicySample],
        autocast: bool,
        model: Any = None,
        prefix: tuple[int, list[Any]] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs of each sample's completion tokens under ``model`` (default: the policy).

        Sequences are left-padded so every completion ends at the last column; the result is
        ``(B, K)`` right-aligned with ``K`` = longest completion, plus the matching 0/1 mask.
        With ``prefix = (P, per-layer (keys, values))``, the first ``P`` prompt tokens of every
        sample are that KV cache (:meth:`prefix_kv`, computed once) and only the rest is forwarded.
        """
        start = prefix[0] if prefix is not None else 0
        seqs = [list(s.prompt_token_ids[start:]) + list(s.completion_token_ids) for s in samples]
        lengths = [len(s.completion_token_ids) for s in samples]
        width = max(lengths)
        ids, mask, positions = self._left_pad(seqs)
        cache = None
        if prefix is not None:
            cache, mask, positions = self.attach_prefix(prefix, mask, positions)
        logits = self._logits(
            ids, mask, positions, keep=width + 1, cache=cache, autocast=autocast, model=model
        )[:, :-1]
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
                logp, _ = self.batch_logprobs(chunk, autocast=False)
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
        """A frozen copy of the weights at the first update (only when ``kl_coef > 0``).  Learning
        under bf16 autocast, its body's Linear weights are kept in bf16, the values autocast would
        convert them to at every call (:func:`~gasp_rl.backends.hf_sampling.bf16_linear_copy`)."""
        if self._reference is None:
            import copy

            if self.train_precision.bf16 and not self.lora:
                self._reference = bf16_linear_copy(self.model)
            else:
                self._reference = copy.deepcopy(self.model).eval()
            for p in self._reference.parameters():
                p.requires_grad_(False)
        return self._reference

    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        """One clipped policy-gradient step (method.md §6) over ``samples``, accumulated over micro-batches.

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
        self.model.train()
        optimizer.zero_grad(set_to_none=True)
        sums = {"loss": 0.0, "clip": 0.0, "ratio": 0.0, "kl": 0.0, "tokens": 0.0, "trained_tokens": 0.0}
        ref_prefixes: dict[tuple[int, ...], Any] = {}  # the reference's KV of each shared prefix

        def surrogate(chunk: list[int], logp: torch.Tensor, valid: torch.Tensor, shared: int) -> torch.Tensor:
            rows = [samples[i] for i in chunk]
            ref_logp = None
            if reference is not None:
                ref_logp = self._reference_logprobs(rows, reference, shared, ref_prefixes)
            return self._surrogate(rows, [weights[i] for i in chunk], logp, valid, ref_logp, sums)

        try:
            metrics.update(self.accumulate_gradients(samples, work, surrogate))
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

    def accumulate_gradients(
        self,
        samples: Sequence[PolicySample],
        rows: Sequence[int],
        loss_fn: Callable[[list[int], torch.Tensor, torch.Tensor, int], torch.Tensor],
        micro_batch_tokens: int | None = None,
    ) -> dict[str, float]:
        """Forward and backward of ``samples[rows]`` in micro-batches, accumulating gradients in
        the parameters (no optimizer step).  ``loss_fn(indices, logp, valid, shared)`` turns a
        micro-batch's completion log-probs (:meth:`batch_logprobs`) into the scalar to back-propagate;
        ``shared`` is the number of leading prompt tokens its rows share as one forwarded prefix (0: none).

        Micro-batches hold rows of similar length up to ``trainer.micro_batch_tokens`` padded
        tokens (or ``micro_batch_tokens``).  With ``trainer.prefix_sharing`` the rows are first grouped by the prompt prefix
        they share (:func:`~gasp_rl.backends.prefix.prefix_groups`): a group's prefix is forwarded
        once (:meth:`prefix_kv`), its micro-batches attend to that KV cache through detached leaf
        copies, and the gradient the leaves collect goes back through the prefix's own graph in one
        backward at the end -- the gradient of forwarding every row whole, for fewer tokens.
        Sharing is off with gradient checkpointing (it drops the KV cache).
        """
        cfg = self.train_cfg
        rows = list(rows)
        stats = {
            "micro_batches": 0.0,
            "prefix_groups": 0.0,
            "prefix_tokens_saved": 0.0,
            "forwarded_tokens": 0.0,
        }
        groups: list[tuple[int, list[int]]] = [(0, rows)]
        if cfg.prefix_sharing and not cfg.gradient_checkpointing and len(rows) > 1:
            found = prefix_groups(
                [samples[i].prompt_token_ids for i in rows],
                [len(samples[i].prompt_token_ids) + len(samples[i].completion_token_ids) for i in rows],
            )
            alone = [rows[k] for p, members in found if p == 0 for k in members]
            groups = ([(0, alone)] if alone else []) + [(p, [rows[k] for k in m]) for p, m in found if p > 0]
        autocast = self.train_precision.bf16
        for shared, members in groups:
            prefix = live = None
            if shared > 0:
                live = self.prefix_kv(samples[members[0]].prompt_token_ids[:shared], autocast)
            if live is not None:
                prefix = (
                    shared,
                    [(k.detach().requires_grad_(), v.detach().requires_grad_()) for k, v in live],
                )
                stats["prefix_groups"] += 1
                stats["prefix_tokens_saved"] += shared * (len(members) - 1)
                stats["forwarded_tokens"] += shared
            else:
                shared = 0
            members = sorted(
                members, key=lambda i: len(samples[i].prompt_token_ids) + len(samples[i].completion_token_ids)
            )
            sizes = [
                len(samples[i].prompt_token_ids) - shared + len(samples[i].completion_token_ids)
                for i in members
            ]
            budget = cfg.micro_batch_tokens if micro_batch_tokens is None else micro_batch_tokens
            for chunk_pos in micro_batches(sizes, cfg.micro_batch_size, budget):
                chunk = [members[k] for k in chunk_pos]
                stats["micro_batches"] += 1
                stats["forwarded_tokens"] += sum(sizes[k] for k in chunk_pos)
                logp, valid = self.batch_logprobs(
                    [samples[i] for i in chunk], autocast=autocast, prefix=prefix
                )
                loss_fn(chunk, logp, valid, shared).backward()
            if prefix is not None and live is not None:
                pairs = [
                    (t, leaf.grad) for kv, leaf_kv in zip(live, prefix[1]) for t, leaf in zip(kv, leaf_kv)
                ]
                pairs = [(t, g) for t, g in pairs if g is not None]
                if pairs:
                    torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
        return stats

    def _reference_logprobs(
        self, rows: list[PolicySample], reference: Any, shared: int, cache: dict[tuple[int, ...], Any]
    ) -> torch.Tensor:
        """The frozen reference's log-probs of ``rows``' completions (no gradient).  When the rows
        share their first ``shared`` prompt tokens, the reference forwards that prefix once per
        update (kept in ``cache``), as the policy does."""
        autocast = self.train_precision.bf16
        with torch.no_grad():
            prefix = None
            if shared > 0:
                key = tuple(rows[0].prompt_token_ids[:shared])
                if key not in cache:
                    live = self.prefix_kv(key, autocast, model=reference)
                    cache[key] = (shared, live) if live is not None else None
                prefix = cache[key]
            return self.batch_logprobs(rows, autocast=autocast, model=reference, prefix=prefix)[0]

    def _surrogate(
        self,
        chunk: list[PolicySample],
        weights: list[float],
        logp: torch.Tensor,
        valid: torch.Tensor,
        ref_logp: torch.Tensor | None,
        sums: dict[str, float],
    ) -> torch.Tensor:
        """The clipped policy-gradient loss of one micro-batch (method.md §6), plus ``kl_coef`` times
        the k3 KL to the reference's log-probs ``ref_logp`` when given, weighted for the batch's
        normaliser (``trainer.loss_agg``); adds its statistics to ``sums``."""
        cfg = self.train_cfg
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
        if ref_logp is not None:
            kl = kl_k3(logp, ref_logp)
            loss_tok = loss_tok + cfg.kl_coef * kl
        w = torch.tensor(weights, device=self.device)[:, None] * valid
        loss = (loss_tok * w).sum()
        sums["loss"] += float(loss.detach())
        sums["clip"] += float((clipped * valid).sum())
        sums["ratio"] += float((ratio * valid).sum())
        sums["kl"] += float((kl.detach() * valid).sum())
        sums["trained_tokens"] += float(valid.sum())
        sums["tokens"] += float(sum(len(s.prompt_token_ids) + len(s.completion_token_ids) for s in chunk))
        return loss

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

                # the sampler's merged copy (hf_sampling.MergedLoraSampler), brought up to date in
                # place, when there is one; otherwise a merged deep copy made for this save
                sampler_copy = getattr(self, "_merged", None)
                merged = (
                    sampler_copy.model_for(self.model)
                    if sampler_copy is not None
                    else copy.deepcopy(self.model).merge_and_unload()
                )
                merged.save_pretrained(str(tmp), safe_serialization=True)
            else:
                self.model.save_pretrained(str(tmp), safe_serialization=True)
            self.tokenizer.save_pretrained(str(tmp))
            if self._optimizer is not None:
                torch.save(self._optimizer.state_dict(), tmp / OPTIMIZER_FILE)
            (tmp / LEARNER_STATE_FILE).write_text(json.dumps({"steps": self.steps}) + "\n", encoding="utf-8")
            replace_dir(tmp, dest)
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
