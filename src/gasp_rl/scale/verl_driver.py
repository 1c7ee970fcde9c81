"""Run GASP, AZR, the ablations, GASP + RL and RLVR on verl: vLLM/SGLang rollouts, FSDP updates.

**GPU only, and untested by this project's CI** (no GPU there; verl 0.9.1's trainer refuses to
start without one).  What *is* tested on a CPU: the config translation (validated by verl's own
schema), the TRR++ estimator and the reward adapter (``tests/test_scale_verl.py``), and
``--dry-run`` below.  The code follows verl 0.9.1's worker-group API as read from its source.

How it fits: gasp-rl's algorithms are written against the :mod:`gasp_rl.seams` Protocols.  This
module builds a :class:`~gasp_rl.backends.factory.PolicyBundle` whose

- **generator** sends chats to verl's rollout replicas (``async_rollout_manager.generate_sequences``,
  vLLM or SGLang, tensor-parallel across GPUs), and
- **learner** turns ``PolicySample`` batches (with the advantages gasp-rl computed: TRR++ for
  self-play, GRPO for RLVR) into a ``DataProto``, recomputes old log-probs with the FSDP actor and
  runs ONE clipped policy-gradient step on it (``actor_rollout_wg.update_actor``);

then runs the unchanged gasp-rl loop (proposals, validation, novelty, student sampling, sandbox
rewards, goalposts, run-directory records) with that bundle.  The sandbox is whatever
``sandbox.backend`` says (``ray`` fans code execution out over the same cluster).

    python -m gasp_rl.scale.verl_driver train configs/verl/qwen2.5-coder-7b-1x4.yaml [key=value ...]
    python -m gasp_rl.scale.verl_driver rlvr  configs/verl/qwen2.5-coder-7b-1x4.yaml
    python -m gasp_rl.scale.verl_driver train configs/verl/smoke-0.5b.yaml --dry-run   # CPU: validate, print
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

from gasp_rl.config import Config, ConfigError
from gasp_rl.errors import BackendUnavailable, GaspError
from gasp_rl.scale.verl_adapter import (
    DATA_SOURCE,
    Command,
    ScaleError,
    VerlScaleConfig,
    build_verl_config,
    load_scale_config,
    register_verl_estimators,
    require_verl,
)
from gasp_rl.seams import Chat, Completion, PolicySample, SamplingParams

if TYPE_CHECKING:  # pragma: no cover
    from omegaconf import DictConfig

    from gasp_rl.backends.factory import PolicyBundle

log = logging.getLogger(__name__)


def require_gpus() -> None:
    """verl's trainer needs CUDA GPUs; say so in one line instead of failing deep inside Ray."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "verl training needs CUDA GPUs and none is visible here; use --dry-run to validate the "
            "config on this machine, or the local backends (gasp train / gasp rlvr) on a CPU"
        )


# ====================================================================== the verl session


@dataclass
class VerlSession:
    """verl's trainer with its Ray worker groups up: the actor (FSDP) and the rollout replicas.

    Uses verl 0.9.1's ``RayPPOTrainer`` only for its worker wiring (``init_workers``) and its
    per-step helpers; gasp-rl drives the steps.  Rollout replicas and the actor share the GPUs
    (colocated): replicas sleep while the actor trains and are woken, with fresh weights, before
    the next generation.
    """

    config: DictConfig
    trainer: Any
    tokenizer: Any
    step: int = 0
    awake: bool = False
    _closed: bool = field(default=False, repr=False)

    @classmethod
    def start(cls, cfg: Config, scale: VerlScaleConfig, command: Command, workdir: Path) -> VerlSession:
        require_verl()
        require_gpus()
        import ray
        from verl.trainer.constants_ppo import get_ppo_ray_runtime_env
        from verl.trainer.main_ppo_v0 import BaseTaskRunner
        from verl.trainer.ppo.ray_trainer import RayPPOTrainer
        from verl.trainer.ppo.utils import create_rl_dataset, create_rl_sampler
        from verl.utils.config import omega_conf_to_dataclass
        from verl.utils.dataset.rl_dataset import collate_fn

        config = build_verl_config(cfg, scale, command)
        placeholder = write_placeholder_dataset(workdir / "verl_prompts.parquet")
        config.data.train_files = str(placeholder)
        config.data.val_files = str(placeholder)
        if not scale.checkpoint_dir:
            config.trainer.default_local_dir = str(workdir / "verl")
        OmegaConf.resolve(config)
        if not ray.is_initialized():
            runtime_env = OmegaConf.to_container(get_ppo_ray_runtime_env(config))
            address = cfg.sandbox.ray_address or None
            ray.init(address=address, runtime_env=runtime_env)

        register_verl_estimators()
        wiring = BaseTaskRunner()
        _, worker_group_cls = wiring.add_actor_rollout_worker(config)
        wiring.add_reward_model_resource_pool(config)
        pools = wiring.init_resource_pool_mgr(config)
        model = omega_conf_to_dataclass(config.actor_rollout_ref.model)
        data = create_rl_dataset(config.data.train_files, config.data, model.tokenizer, model.processor)
        trainer = RayPPOTrainer(
            config=config,
            tokenizer=model.tokenizer,
            processor=model.processor,
            role_worker_mapping=wiring.role_worker_mapping,
            resource_pool_manager=pools,
            ray_worker_group_cls=worker_group_cls,
            train_dataset=data,
            val_dataset=data,
            collate_fn=collate_fn,
            train_sampler=create_rl_sampler(config.data, data),
        )
        trainer.init_workers()  # ends with the replicas asleep
        return cls(config=config, trainer=trainer, tokenizer=model.tokenizer)

    @property
    def world_size(self) -> int:
        return int(self.trainer.actor_rollout_wg.world_size)

    def wake(self) -> None:
        """Push the actor's current weights into the rollout replicas (and wake them)."""
        if not self.awake:
            self.trainer.checkpoint_manager.update_weights(self.step)
            self.awake = True

    def sleep(self) -> None:
        """Free the replicas' GPU memory for the actor's update."""
        if self.awake:
            self.trainer.checkpoint_manager.sleep_replicas()
            self.awake = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        import ray

        with contextlib.suppress(Exception):
            ray.shutdown()


def write_placeholder_dataset(path: Path) -> Path:
    """verl's trainer insists on a prompt dataset; gasp-rl feeds prompts itself, so one row will do."""
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    row = {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": "placeholder"}],
        "reward_model": {"style": "rule", "ground_truth": "{}"},
        "extra_info": {"index": 0},
    }
    pd.DataFrame([row]).to_parquet(path)
    return path


# ====================================================================== the seams


class VerlGenerator:
    """:class:`~gasp_rl.seams.Generator` on verl's rollout replicas.

    verl fixes sampling per config: ``rollout.temperature`` (training), ``rollout.val_kwargs``
    (evaluation, requested here as ``meta_info.validate``) and greedy decoding (``__do_sample__``
    off); the response length is ``data.max_response_length``.  A request for another temperature
    is refused with a clear error rather than silently sampled differently.  Stop strings are not
    supported by verl's single-turn agent loop: generations end at EOS or the length limit.
    """

    def __init__(self, session: VerlSession) -> None:
        self.session = session
        rollout = session.config.actor_rollout_ref.rollout
        self.train_temperature = float(rollout.temperature)
        self.val_temperature = float(rollout.val_kwargs.temperature)
        self.response_length = int(rollout.response_length)

    def _mode(self, temperature: float) -> str:
        if temperature == 0:
            return "greedy"
        if temperature == self.train_temperature:
            return "train"
        if temperature == self.val_temperature:
            return "validate"
        raise ScaleError(
            f"verl samples at rollout.temperature={self.train_temperature} (training) or "
            f"val_kwargs.temperature={self.val_temperature} (evaluation) or greedily; got {temperature}"
        )

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        import numpy as np
        from verl import DataProto

        if not prompts:
            return []
        mode = self._mode(params.temperature)
        rows = [chat for chat in prompts for _ in range(params.n)]
        non_tensor: dict[str, Any] = {
            "raw_prompt": np.array([list(chat) for chat in rows], dtype=object),
            "index": np.arange(len(rows)),
            # verl may stream rows to its reward workers; rewards come from gasp-rl's own code,
            # so these rows name a source compute_score leaves at 0 instead of failing.
            "data_source": np.array(["gasp_rl.rollout"] * len(rows), dtype=object),
            "reward_model": np.array([{"ground_truth": "{}"} for _ in rows], dtype=object),
        }
        if mode == "greedy":
            non_tensor["__do_sample__"] = np.zeros(len(rows), dtype=bool)
        batch = DataProto(
            batch=None,
            non_tensor_batch=non_tensor,
            meta_info={"validate": mode == "validate", "global_steps": self.session.step},
        )
        self.session.wake()
        out = self.session.trainer.async_rollout_manager.generate_sequences(batch)
        flat = completions_from_dataproto(out, self.session.tokenizer, self.response_length)
        return [flat[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]


def completions_from_dataproto(out: Any, tokenizer: Any, response_length: int) -> list[Completion]:
    """verl's rollout output (left-padded prompts, right-padded responses) as gasp-rl completions."""
    prompts, responses = out.batch["prompts"], out.batch["responses"]
    mask = out.batch["attention_mask"]
    plen = prompts.shape[-1]
    logprobs = out.batch.get("rollout_log_probs", None)
    result = []
    for i in range(len(out)):
        p_ids = prompts[i][mask[i, :plen].bool()].tolist()
        n = int(mask[i, plen:].sum())
        r_ids = responses[i, :n].tolist()
        result.append(
            Completion(
                text=tokenizer.decode(r_ids, skip_special_tokens=True),
                token_ids=r_ids,
                logprobs=logprobs[i, :n].tolist() if logprobs is not None else None,
                prompt_token_ids=p_ids,
                finish_reason="length" if n >= response_length else "stop",
            )
        )
    return result


def samples_to_dataproto(samples: list[PolicySample], pad_id: int, divisor: int) -> Any:
    """PolicySamples as the padded batch verl's actor trains on, padded to a multiple of the
    data-parallel size with rows whose ``response_mask`` is 0 (they add no loss and no tokens)."""
    import torch
    from verl import DataProto

    if not samples:
        raise ValueError("no samples")
    pmax = max(len(s.prompt_token_ids) for s in samples)
    rmax = max(1, max(len(s.completion_token_ids) for s in samples))
    rows = list(samples)
    n_pad = (-len(rows)) % divisor
    rows += [rows[0]] * n_pad
    bsz = len(rows)
    prompts = torch.full((bsz, pmax), pad_id, dtype=torch.long)
    responses = torch.full((bsz, rmax), pad_id, dtype=torch.long)
    attention = torch.zeros(bsz, pmax + rmax, dtype=torch.long)
    response_mask = torch.zeros(bsz, rmax, dtype=torch.float32)
    advantages = torch.zeros(bsz, rmax, dtype=torch.float32)
    for i, s in enumerate(rows):
        p, r = s.prompt_token_ids, s.completion_token_ids
        if p:
            prompts[i, pmax - len(p) :] = torch.tensor(p)
        if r:
            responses[i, : len(r)] = torch.tensor(r)
        attention[i, pmax - len(p) : pmax + len(r)] = 1
        if i < len(samples):
            response_mask[i, : len(r)] = 1.0
            adv = s.advantage
            advantages[i, : len(r)] = torch.tensor(adv) if isinstance(adv, list) else float(adv)
    position_ids = torch.clamp(attention.cumsum(-1) - 1, min=0)
    data = DataProto.from_dict(
        tensors={
            "prompts": prompts,
            "responses": responses,
            "input_ids": torch.cat([prompts, responses], dim=-1),
            "attention_mask": attention,
            "position_ids": position_ids,
            "response_mask": response_mask,
            "advantages": advantages * response_mask,
        }
    )
    data.meta_info["global_token_num"] = attention.sum(-1).tolist()
    return data


class VerlLearner:
    """:class:`~gasp_rl.seams.Learner` on verl's FSDP actor: one clipped step per :meth:`update`.

    Old log-probs are recomputed by the actor before the step (verl's decoupled mode), so the
    importance ratio starts at 1 as in gasp-rl's local learner.  The whole batch is one mini-batch
    (one optimizer step), matching the seam's contract.
    """

    def __init__(self, session: VerlSession) -> None:
        self.session = session
        tok = session.tokenizer
        self.pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)

    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        from verl.utils import tensordict_utils as tu
        from verl.utils.metric import reduce_metrics
        from verl.workers.utils.padding import left_right_2_no_padding

        if not samples:
            return {}
        s = self.session
        s.sleep()
        batch = samples_to_dataproto(samples, self.pad_id, s.world_size)
        batch.meta_info["temperature"] = float(s.config.actor_rollout_ref.rollout.temperature)
        batch.meta_info["multi_turn"] = False
        old, _mfu = s.trainer._compute_old_log_prob(batch)
        old.batch.pop("entropys")
        batch = batch.union(old)
        td = left_right_2_no_padding(batch.to_tensordict())
        actor = s.config.actor_rollout_ref.actor
        tu.assign_non_tensor(
            td,
            calculate_entropy=bool(actor.calculate_entropy),
            distillation_use_topk=False,
            distillation_only=False,
            global_batch_size=len(batch),
            mini_batch_size=len(batch),
            epochs=1,
            seed=int(actor.data_loader_seed),
            dataloader_kwargs={"shuffle": False},
            compute_loss=True,
        )
        metrics = tu.get(s.trainer.actor_rollout_wg.update_actor(td), "metrics")
        s.step += 1
        reduced = reduce_metrics(metrics)
        return {f"verl/{k}": float(v) for k, v in reduced.items() if isinstance(v, int | float)}

    def save(self, path: str | Path) -> None:
        """verl's sharded actor checkpoint under ``path/verl_actor`` (Hugging Face weights in its
        ``huggingface/`` folder when ``actor.checkpoint.save_contents`` includes ``hf_model``)."""
        target = Path(path) / "verl_actor"
        self.session.trainer.actor_rollout_wg.save_checkpoint(str(target), None, self.session.step, 1)

    def load(self, path: str | Path) -> None:
        source = Path(path) / "verl_actor"
        if not source.is_dir():
            raise GaspError(f"no verl actor checkpoint in {path}")
        self.session.trainer.actor_rollout_wg.load_checkpoint(str(source), del_local_after_load=False)
        self.session.awake = False  # the replicas must receive the loaded weights


def build_verl_policy(cfg: Config, session: VerlSession) -> PolicyBundle:
    """The policy bundle the gasp-rl algorithms receive when running on verl."""
    from gasp_rl.backends.factory import PolicyBundle, build_embedder

    return PolicyBundle(
        generator=VerlGenerator(session),
        learner=VerlLearner(session),
        embedder=build_embedder(cfg),  # no weights in this process: hashing or sentence-transformers
        tokenizer=session.tokenizer,
        sync_fn=session.wake,
        close_fns=[],  # the session outlives the algorithm's bundle and is closed by run()
    )


def run(command: Command, cfg: Config, scale: VerlScaleConfig, resume: Path | None = None) -> Path:
    """Start verl's workers, run the gasp-rl algorithm of ``command`` on them, shut down."""
    with tempfile.TemporaryDirectory(prefix="gasp-verl-") as tmp:
        workdir = Path(scale.checkpoint_dir or tmp)
        session = VerlSession.start(cfg, scale, command, workdir)
        try:
            from gasp_rl.driver import run_rlvr, run_training
            from gasp_rl.wiring import Wiring

            # verl hands in its own policy seams; the sandbox is wired from the config as usual
            wiring = Wiring(policy=build_verl_policy(cfg, session))
            if command == "rlvr":
                return run_rlvr(cfg, resume=resume, wiring=wiring)
            return run_training(cfg, resume=resume, wiring=wiring)
        finally:
            session.close()


def dry_run(command: Command, cfg: Config, scale: VerlScaleConfig) -> str:
    """Translate and validate against verl's schema (no GPU needed); the verl config as YAML."""
    return OmegaConf.to_yaml(build_verl_config(cfg, scale, command))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m gasp_rl.scale.verl_driver", description=__doc__.split("\n")[0]
    )
    ap.add_argument("command", choices=["train", "rlvr"])
    ap.add_argument("config", help="configs/verl/*.yaml (gasp-rl config plus a verl: section)")
    ap.add_argument("overrides", nargs="*", help="key.sub=value (verl.* for the verl section)")
    ap.add_argument("--resume", type=Path, default=None)
    ap.add_argument("--dry-run", action="store_true", help="validate with verl's schema, print, exit")
    args = ap.parse_args(argv)
    try:
        cfg, scale = load_scale_config(args.config, args.overrides)
        if args.dry_run:
            sys.stdout.write(dry_run(args.command, cfg, scale))
            return 0
        path = run(args.command, cfg, scale, args.resume)
    except (GaspError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"run finished: {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
