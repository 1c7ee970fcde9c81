"""Fine-tuning with TRL's own trainers on an in-process Hugging Face model: Sol-Ver's SFT + DPO
(:class:`TrlTrainer`) and the cold-start warm-up's SFT on pre-tokenized demonstrations
(:class:`TrlSFTFinetuner`, the :class:`~gasp_rl.seams.Finetuner` seam)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gasp_rl.config import Config
from gasp_rl.precision import resolve as resolve_precision
from gasp_rl.seams import SFTExample


class TrlTrainer:
    """SFT then DPO on an in-process Hugging Face model, with TRL's own trainers.

    The model object is trained in place, so the generator that shares it samples from the new
    weights afterwards.  DPO's reference is the policy as it is when DPO starts (right after SFT):
    ``precompute_ref_log_probs`` scores every pair once before training, so no second copy of the
    weights is kept.  Each phase gets a fresh AdamW (TRL's default), as in the paper's recipe of
    separate SFT and DPO stages.
    """

    def __init__(self, model: Any, tokenizer: Any, cfg: Config, work_dir: Path) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.work_dir = Path(work_dir)

    # ------------------------------------------------------------------ public

    def quiet(self) -> Any:
        """A context in which the training libraries' progress bars and info logs are off."""
        return quiet_libraries()

    def sft(self, rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
        """Supervised fine-tuning on (prompt -> completion) rows; loss on the completion only."""
        from trl import SFTConfig, SFTTrainer

        sv = self.cfg.solver_verifier
        rows, too_long = self._fit(rows, ("completion",))
        rows = self._cap(rows, sv.sft_max_steps)
        if not rows:
            return {"skipped": "no data", "examples": 0, "too_long": too_long}
        args = SFTConfig(
            **_no_checkpointing(SFTConfig),
            **self._common("sft", sv.sft_lr, sv.sft_epochs, sv.sft_max_steps, seed),
        )
        return self._train(SFTTrainer, args, rows, too_long)

    def dpo(self, rows: list[dict[str, Any]], seed: int) -> dict[str, Any]:
        """Direct preference optimisation on (prompt, chosen, rejected) rows."""
        from trl import DPOConfig, DPOTrainer

        sv = self.cfg.solver_verifier
        rows, too_long = self._fit(rows, ("chosen", "rejected"))
        rows = self._cap(rows, sv.dpo_max_steps)
        if not rows:
            return {"skipped": "no data", "examples": 0, "too_long": too_long}
        args = DPOConfig(
            beta=sv.dpo_beta,
            precompute_ref_log_probs=True,
            **_no_checkpointing(DPOConfig),
            **self._common("dpo", sv.dpo_lr, sv.dpo_epochs, sv.dpo_max_steps, seed),
        )
        return self._train(DPOTrainer, args, rows, too_long)

    # ------------------------------------------------------------------ internals

    def _common(self, phase: str, lr: float, epochs: int, max_steps: int, seed: int) -> dict[str, Any]:
        sv, tr = self.cfg.solver_verifier, self.cfg.trainer
        on_cpu = str(getattr(self.model, "device", "cpu")).startswith("cpu")
        return {
            "output_dir": str(self.work_dir / phase),
            "per_device_train_batch_size": sv.train_batch_size,
            "gradient_accumulation_steps": 1,
            "learning_rate": lr,
            "lr_scheduler_type": "constant",
            "weight_decay": tr.weight_decay,
            "max_grad_norm": tr.max_grad_norm,
            "num_train_epochs": epochs,
            "max_steps": max_steps if max_steps > 0 else -1,
            "max_length": sv.max_length,
            "logging_steps": 1,
            "save_strategy": "no",
            "report_to": [],
            "disable_tqdm": True,
            "bf16": resolve_precision(tr.bf16_autocast, "cpu" if on_cpu else "cuda").bf16,
            "use_cpu": on_cpu,
            "seed": seed,
            "data_seed": seed,
            "dataloader_num_workers": 0,
        }

    def _length(self, row: dict[str, Any], key: str) -> int:
        ids = self.tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        return len(ids)

    def _fit(self, rows: list[dict[str, Any]], keys: tuple[str, ...]) -> tuple[list[dict[str, Any]], int]:
        """Rows whose prompt + completion fit ``max_length`` tokens (longer ones would be cut
        mid-answer, teaching the model to stop early); and how many were left out."""
        limit = self.cfg.solver_verifier.max_length
        keep = [r for r in rows if all(self._length(r, k) <= limit for k in keys)]
        return keep, len(rows) - len(keep)

    def _cap(self, rows: list[dict[str, Any]], max_steps: int) -> list[dict[str, Any]]:
        """The rows ``max_steps`` steps can see (all when uncapped): DPO then scores the
        reference log-probs of only those, not of pairs the capped run would never reach."""
        if max_steps <= 0:
            return rows
        return rows[: max_steps * self.cfg.solver_verifier.train_batch_size]

    @contextmanager
    def _restored_after(self) -> Iterator[None]:
        """Put the model back as the generator expects it after a TRL phase: eval mode, KV cache
        on, and the original ``forward`` (TRL patches a fused LM head onto the instance)."""
        had_forward = "forward" in self.model.__dict__
        forward = self.model.__dict__.get("forward")
        use_cache = getattr(self.model.config, "use_cache", True)
        try:
            yield
        finally:
            if had_forward:
                self.model.forward = forward
            else:
                self.model.__dict__.pop("forward", None)
            self.model.config.use_cache = use_cache
            self.model.eval()

    def _train(
        self, trainer_cls: Any, args: Any, rows: list[dict[str, Any]], too_long: int
    ) -> dict[str, Any]:
        from datasets import Dataset
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        t0 = time.perf_counter()
        with quiet_libraries(), self._restored_after():
            trainer = trainer_cls(
                model=self.model,
                args=args,
                train_dataset=Dataset.from_list(rows),
                processing_class=self.tokenizer,
            )
            for cb in (PrinterCallback, ProgressCallback):
                trainer.remove_callback(cb)
            result = trainer.train()
            history = [h for h in trainer.state.log_history if "loss" in h]
        return summarise_history(history, result.metrics, len(rows), too_long, time.perf_counter() - t0)


def _no_checkpointing(config_cls: Any) -> dict[str, bool]:
    """Activation checkpointing off (TRL turns it on by default; it only slows small models down),
    under the field name this transformers version uses."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    return {key: False}


def summarise_history(
    history: list[dict[str, Any]], final: dict[str, Any], examples: int, too_long: int, seconds: float
) -> dict[str, Any]:
    """The metrics record of one TRL phase: steps, first / last loss, and (DPO) the last reward
    margin and preference accuracy."""
    out: dict[str, Any] = {
        "examples": examples,
        "too_long": too_long,
        "steps": len(history),
        "loss_first": history[0]["loss"] if history else None,
        "loss_last": history[-1]["loss"] if history else None,
        "train_loss": final.get("train_loss"),
        "seconds": round(seconds, 2),
    }
    for k in ("rewards/margins", "rewards/accuracies", "mean_token_accuracy"):
        if history and k in history[-1]:
            out[k.replace("/", "_")] = history[-1][k]
    return out


def _disabled_bar(bar: Any, *args: Any, **kwargs: Any) -> Any:
    """``bar(...)`` with ``disable=True`` whatever the caller passed (TRL passes its own)."""
    return bar(*args, **{**kwargs, "disable": True})


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """datasets / transformers / TRL progress bars and info logs off while TRL runs (records, not
    prints).  TRL's DPO draws its reference-scoring bar with a module-level ``tqdm``, which is
    swapped for a disabled one for the duration (when the module has one)."""
    import functools
    import importlib

    import datasets
    import transformers

    was_enabled = datasets.is_progress_bar_enabled()
    level = transformers.logging.get_verbosity()
    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    swapped = []
    for name in ("trl.trainer.dpo_trainer", "trl.trainer.sft_trainer"):
        mod = importlib.import_module(name)
        bar = getattr(mod, "tqdm", None)
        if callable(bar):
            swapped.append((mod, bar))
            mod.tqdm = functools.partial(_disabled_bar, bar)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecations inside TRL / transformers
            yield
    finally:
        for mod, bar in swapped:
            mod.tqdm = bar
        transformers.logging.set_verbosity(level)
        transformers.logging.enable_progress_bar()
        if was_enabled:
            datasets.enable_progress_bars()


class TrlSFTFinetuner:
    """The :class:`~gasp_rl.seams.Finetuner` of the HF policy: TRL's ``SFTTrainer`` on rows
    tokenized exactly as generation tokenizes them.

    The prompt is ``policy.encode_chat(chat + [prefill as a continued assistant message])``, the
    same ids the sampler starts from; the completion is the answer's own tokens plus the end of
    turn token, so the model learns to stop where the run's parsers expect it to.  Rows are handed
    to TRL pre-tokenized (``input_ids`` + ``completion_mask``), so TRL's own chat rendering never
    gets a chance to differ; the loss is on completion tokens only.
    """

    def __init__(self, policy: Any, work_dir: Path) -> None:
        self.policy = policy
        self.work_dir = Path(work_dir)

    def rows(self, examples: list[SFTExample], max_length: int) -> tuple[list[dict[str, Any]], int]:
        """Pre-tokenized rows, and how many examples were longer than ``max_length`` (left out)."""
        tok = self.policy.tokenizer
        end = tok.eos_token_id
        rows, too_long = [], 0
        for ex in examples:
            chat = [*ex.chat, {"role": "assistant", "content": ex.prefill}] if ex.prefill else ex.chat
            prompt = self.policy.encode_chat(chat)
            answer = list(tok(ex.answer, add_special_tokens=False)["input_ids"]) + [end]
            if len(prompt) + len(answer) > max_length:
                too_long += 1
                continue
            rows.append(
                {"input_ids": prompt + answer, "completion_mask": [0] * len(prompt) + [1] * len(answer)}
            )
        return rows, too_long

    def sft(self, examples: list[SFTExample], settings: Any) -> dict[str, Any]:
        from datasets import Dataset
        from transformers.trainer_callback import PrinterCallback, ProgressCallback
        from trl import SFTConfig, SFTTrainer

        model = self.policy.model
        rows, too_long = self.rows(examples, settings.max_length)
        if not rows:
            return {"skipped": "no data", "examples": 0, "too_long": too_long}
        on_cpu = str(getattr(model, "device", "cpu")).startswith("cpu")
        args = SFTConfig(
            **_no_checkpointing(SFTConfig),
            output_dir=str(self.work_dir),
            # one example per forward, accumulated: no padding between a 130-token student row and a
            # 500-token proposal row (on a CPU a single row already fills the matrix units)
            per_device_train_batch_size=1,
            gradient_accumulation_steps=settings.batch_size,
            learning_rate=settings.lr,
            lr_scheduler_type="constant_with_warmup",
            warmup_steps=min(5, max(1, len(rows) // (4 * settings.batch_size))),
            num_train_epochs=settings.epochs,
            max_length=settings.max_length,
            completion_only_loss=True,
            logging_steps=1,
            save_strategy="no",
            report_to=[],
            disable_tqdm=True,
            bf16=resolve_precision(self.policy.train_cfg.bf16_autocast, "cpu" if on_cpu else "cuda").bf16,
            use_cpu=on_cpu,
            seed=settings.seed,
            data_seed=settings.seed,
            dataloader_num_workers=0,
        )
        t0 = time.perf_counter()
        trainer_helper = TrlTrainer(model, self.policy.tokenizer, None, self.work_dir)  # type: ignore[arg-type]
        with quiet_libraries(), trainer_helper._restored_after():
            trainer = SFTTrainer(
                model=model,
                args=args,
                train_dataset=Dataset.from_list(rows),
                processing_class=self.policy.tokenizer,
            )
            for cb in (PrinterCallback, ProgressCallback):
                trainer.remove_callback(cb)
            trainer.add_callback(_progress_callback(every=max(1, settings.log_every)))
            result = trainer.train()
            history = [h for h in trainer.state.log_history if "loss" in h]
        return summarise_history(history, result.metrics, len(rows), too_long, time.perf_counter() - t0)


def _progress_callback(every: int) -> Any:
    """A TRL/transformers callback that logs ``step k/n loss x (elapsed, ETA)`` every ``every``
    optimizer steps: a warm-up takes minutes on a CPU and must not look hung."""
    import logging

    from transformers import TrainerCallback

    log = logging.getLogger("gasp_rl")

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or state.global_step % every:
                return
            dt = time.perf_counter() - self.t0
            eta = dt / max(1, state.global_step) * (state.max_steps - state.global_step)
            log.info(
                "  sft step %d/%d loss %.3f (%.0f s, ETA %.0f s)",
                state.global_step, state.max_steps, logs["loss"], dt, eta,
            )  # fmt: skip

    return Progress()


class PolicyFinetuner(TrlSFTFinetuner):
    """The same supervised fine-tune as :class:`TrlSFTFinetuner` (same rows, loss = mean negative
    log-likelihood of the completion tokens, AdamW, constant learning rate after a short linear
    ramp, ``batch_size`` examples per step), computed with the policy's own scoring path: the
    vocabulary projection runs on the completion positions only.

    A step's rows go through the policy's gradient path (``accumulate_gradients``): left-padded
    micro-batches of at most ``micro_batch_tokens`` padded tokens (one row per forward was 4x
    slower for the same tokens), each prompt prefix that several rows share forwarded once.

    Why it exists: TRL's ``SFTTrainer`` always scores through its fused LM head, whose chunked
    log-prob kernel has a fast path on Triton devices only; on a CPU it scores every position of
    every row and its backward dominated the step.  Measured on the embedded model (2 cores,
    shared): 27 s per example with TRL, about 3 s here (``warmup.engine``; README, *Cold start*).
    """

    def sft(self, examples: list[SFTExample], settings: Any) -> dict[str, Any]:
        import logging
        import random

        import torch

        from gasp_rl.seams import PolicySample

        log = logging.getLogger("gasp_rl")
        policy = self.policy
        rows, too_long = self.rows(examples, settings.max_length)
        if not rows:
            return {"skipped": "no data", "examples": 0, "too_long": too_long}
        samples = []
        for r in rows:
            n_prompt = r["completion_mask"].index(1)
            samples.append(PolicySample(r["input_ids"][:n_prompt], r["input_ids"][n_prompt:], 1.0))
        # steps of rows that start alike, taken in a seeded random order: sorted by prompt tokens,
        # a step's rows come from one template (same system prompt and worked examples, often the
        # same goalpost), so the prompt prefix they share is forwarded once (accumulate_gradients)
        # and their lengths are similar (a 130-token student row and a 550-token proposal row
        # padded into one forward would waste a third of it)
        by_prompt = sorted(range(len(samples)), key=lambda i: (samples[i].prompt_token_ids, i))
        batches = [
            by_prompt[i : i + settings.batch_size] for i in range(0, len(by_prompt), settings.batch_size)
        ]
        rng = random.Random(settings.seed)
        batches = [b for _ in range(settings.epochs) for b in rng.sample(batches, len(batches))]
        params = [p for p in policy.model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
        ramp = max(1, min(5, len(batches) // 4))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / ramp))
        history: list[dict[str, float]] = []
        t0 = time.perf_counter()
        policy.model.train()
        try:
            for step, batch in enumerate(batches, 1):
                chunk = [samples[i] for i in batch]
                n_tok = sum(len(s.completion_token_ids) for s in chunk)
                parts: list[float] = []

                def nll(
                    _: list[int],
                    logp: torch.Tensor,
                    valid: torch.Tensor,
                    _shared: int = 0,
                    n_tok: int = n_tok,
                    parts: list = parts,
                ) -> torch.Tensor:
                    loss = -(logp * valid).sum() / n_tok
                    parts.append(float(loss.detach()))
                    return loss

                # bounded memory per backward, shared prompt prefixes forwarded once
                policy.accumulate_gradients(
                    chunk, range(len(chunk)), nll, micro_batch_tokens=settings.micro_batch_tokens
                )
                total = sum(parts)
                torch.nn.utils.clip_grad_norm_(params, policy.train_cfg.max_grad_norm)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                history.append({"loss": total, "step": step})
                if step % max(1, settings.log_every) == 0 or step == len(batches):
                    dt = time.perf_counter() - t0
                    log.info(
                        "  sft step %d/%d loss %.3f (%.0f s, ETA %.0f s)",
                        step, len(batches), total, dt, dt / step * (len(batches) - step),
                    )  # fmt: skip
        finally:
            opt.zero_grad(set_to_none=True)
            policy.model.eval()
        return summarise_history(history, {"train_loss": sum(h["loss"] for h in history) / len(history)},
                                 len(rows), too_long, time.perf_counter() - t0)  # fmt: skip
