"""gasp-rl's algorithm pieces in verl's terms (verl 0.9.1): advantages, rewards and the config.

Three bridges, each checked on a CPU against verl's own code by ``tests/test_scale_verl.py``:

1. **Advantages.**  TRR++ (method.md §6) is registered with verl as the advantage estimator
   ``"trr_plus_plus"`` through ``verl.trainer.ppo.core_algos.register_adv_est``.  verl hands a
   custom estimator ``token_level_rewards``, ``response_mask``, ``config`` and ``index`` (the batch's
   ``uid`` column), so the TRR++ group key ``"task type|role"`` travels as the uid (see
   :func:`trr_group_key`).  The arithmetic is :func:`gasp_rl.core.advantages.group_normalize`, the
   one place the formula lives; verl's GRPO with that uid gives the same numbers except for
   singleton groups (verl: ``r / (1 + eps)``, ours: 0, since a lone sample has no baseline).
2. **Rewards.**  :func:`compute_score` has the signature of verl's ``custom_reward_function``
   (``data_source, solution_str, ground_truth, extra_info``) and grades with gasp-rl's sandbox;
   :func:`score_dataproto` grades a whole ``DataProto`` in ONE executor call and returns exactly
   what verl's ``RewardLoopManager.compute_rm_score`` returns (``rm_scores`` placed by verl's own
   ``assemble_rm_scores``), so the driver can skip verl's per-sample reward workers.
3. **Config.**  :func:`verl_overrides` translates a gasp-rl :class:`~gasp_rl.config.Config` plus
   the cluster knobs of :class:`VerlScaleConfig` into Hydra overrides of verl's ``ppo_trainer``
   config; :func:`compose_verl_config` composes them and :func:`validate_verl_config` runs verl's
   own ``validate_config`` and dataclass conversion on the result.

verl is imported lazily: importing this module needs neither verl nor torch.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gasp_rl.config import Config, ConfigError, SandboxConfig, apply_overrides
from gasp_rl.core.advantages import group_normalize
from gasp_rl.core.tasks import Problem
from gasp_rl.errors import BackendUnavailable, GaspError
from gasp_rl.eval.grading import Grade

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from omegaconf import DictConfig

    from gasp_rl.seams import Executor

#: The verl release this adapter is written and tested against (the ``verl`` extra pins it).
VERL_VERSION = "0.9.1"
#: Name under which TRR++ is registered with verl's advantage-estimator registry.
TRR_ESTIMATOR = "trr_plus_plus"
#: verl's ``custom_reward_function.path`` / ``.name`` pointing at :func:`compute_score`.
REWARD_FN_PATH = "pkg://gasp_rl.scale.verl_adapter"
REWARD_FN_NAME = "compute_score"
#: Imported by every verl process that builds a model config (``model.external_lib``), so the
#: estimator is registered in the Ray workers too, not only in the driver.
PLUGIN_MODULE = "gasp_rl.scale.verl_plugin"
#: ``data_source`` of the rows gasp-rl writes for verl.
DATA_SOURCE = "gasp_rl"


class ScaleError(GaspError):
    """A scale-out config or cluster problem (bad verl config, unusable model path, ...)."""


def require_verl() -> None:
    """Raise :class:`BackendUnavailable` with the install hint when verl cannot be imported."""
    try:
        import verl  # noqa: F401
    except ImportError as e:
        raise BackendUnavailable(
            f"verl is not importable ({e}); install the extra: pip install 'gasp-rl[verl]' on a GPU "
            "machine, or scripts/install_verl_cpu.sh for the CPU-importable parts"
        ) from None


# ====================================================================== 1. advantages


def trr_group_key(task_type: str, role: str) -> str:
    """The TRR++ group of a sample, e.g. ``"deduction|student"``, ``"induction|teacher-lemma"``.

    Used as verl's ``uid`` so that verl's grouping machinery groups by (task type, role).
    """
    if "|" in task_type or "|" in role:
        raise ValueError(f"task type and role may not contain '|': {task_type!r}, {role!r}")
    return f"{task_type}|{role}"


def outcome_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Hashable],
    epsilon: float = 1e-6,
    scale_by_std: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group-normalised outcome advantages broadcast over the response tokens (verl's shapes).

    The sequence reward is the sum of ``token_level_rewards`` over the response (verl puts the
    outcome score on the last valid token); ``index[i]`` is the group of row ``i``.  Returns
    ``(advantages, returns)``, both ``(batch, response_length)`` and equal, as verl's GRPO does.
    """
    import torch

    scores = token_level_rewards.sum(dim=-1).detach().to(torch.float64).cpu().numpy()
    adv = group_normalize(scores, list(index), eps=epsilon, scale_by_std=scale_by_std)
    per_seq = torch.as_tensor(adv, dtype=token_level_rewards.dtype, device=token_level_rewards.device)
    advantages = per_seq.unsqueeze(-1) * response_mask
    return advantages, advantages


def compute_trr_plus_plus_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    epsilon: float = 1e-6,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """TRR++ as a verl advantage estimator (the function registered as ``"trr_plus_plus"``).

    ``index`` must hold :func:`trr_group_key` keys (verl passes the ``uid`` column).  Honours
    ``algorithm.norm_adv_by_std_in_grpo`` so the Dr.GRPO-style unscaled variant stays available.
    Extra keyword arguments that verl adds for other estimators are ignored.
    """
    if index is None:
        raise ValueError("trr_plus_plus needs the 'uid' column set to trr_group_key(task type, role)")
    scale = True if config is None else bool(_cfg_get(config, "norm_adv_by_std_in_grpo", True))
    return outcome_advantages(token_level_rewards, response_mask, index, epsilon, scale)


def _cfg_get(config: Any, key: str, default: Any) -> Any:
    getter = getattr(config, "get", None)
    return getter(key, default) if callable(getter) else getattr(config, key, default)


def register_verl_estimators() -> str:
    """Register TRR++ with verl's advantage-estimator registry (idempotent); returns its name.

    verl's ``register_adv_est`` refuses a second, different function under one name; a reloaded
    copy of this module is the same estimator, so it replaces the old entry instead of failing.
    """
    require_verl()
    from verl.trainer.ppo import core_algos

    current = core_algos.ADV_ESTIMATOR_REGISTRY.get(TRR_ESTIMATOR)
    fn = compute_trr_plus_plus_advantage
    if current is not None and current is not fn:
        if (current.__module__, current.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ScaleError(f"another advantage estimator is already registered as {TRR_ESTIMATOR!r}")
        del core_algos.ADV_ESTIMATOR_REGISTRY[TRR_ESTIMATOR]
    core_algos.register_adv_est(TRR_ESTIMATOR)(fn)
    return TRR_ESTIMATOR


# ====================================================================== 2. rewards


@dataclass
class GradingSpec:
    """What verl stores as ``reward_model.ground_truth`` for one prompt: the real-data problem
    (with all its public and private tests) and the TRR++ group its samples belong to.

    Grading goes through :func:`gasp_rl.eval.grading.grade_answers`, the evaluation harness's own
    program assembly, sandbox job and per-benchmark limits, so a reward computed inside verl and a ``gasp eval`` verdict
    never disagree.  (Self-play student and teacher rewards never pass through verl's reward
    machinery: the gasp-rl loop computes them and hands advantages to the learner.)
    """

    problem: Problem
    task_type: str = "real"
    role: str = "student"

    def to_json(self) -> str:
        return json.dumps(
            {"problem": self.problem.to_dict(), "task_type": self.task_type, "role": self.role},
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str) -> GradingSpec:
        """Parse a ground truth; raises ``ValueError`` with a one-line reason when malformed."""
        try:
            d = json.loads(text)
            return cls(
                problem=Problem.from_dict(dict(d["problem"])),
                task_type=str(d.get("task_type", "real")),
                role=str(d.get("role", "student")),
            )
        except (TypeError, KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"ground truth is not a gasp-rl grading spec: {type(e).__name__}: {e}") from None


def problem_spec(problem: Problem) -> GradingSpec:
    """The grading spec of a real-data problem: all public and private tests must pass (method.md §2)."""
    return GradingSpec(problem=problem)


def as_verl(grade: Grade) -> dict[str, Any]:
    """verl's dict form of a grade: ``score`` is the reward; every key becomes a logged column
    (``reward_extra_info``).  The key set is the same for every sample (verl stacks the columns
    of the first sample's keys)."""
    return {"score": grade.score, "acc": float(grade.passed), "status": grade.status}


def grade_responses(
    responses: Sequence[str],
    ground_truths: Sequence[str],
    executor: Executor,
    cfg: Config | None = None,
) -> list[Grade]:
    """Grade many responses with ONE executor batch (the sandbox pool runs them in parallel).

    Reward 1 when the answer passes every test, else 0 (format errors are wrong answers).  A
    malformed ground truth is a 0 with the reason recorded, never an exception in verl's worker.
    ``cfg`` gives the sandbox limits and ``eval.*`` CPU budgets (default: the default config).
    """
    from gasp_rl.eval.grading import grade_answers

    if len(responses) != len(ground_truths):
        raise ValueError(f"{len(responses)} responses but {len(ground_truths)} ground truths")
    out: list[Grade | None] = [None] * len(responses)
    items: list[tuple[Problem, str]] = []
    where: list[int] = []
    for i, (resp, gt) in enumerate(zip(responses, ground_truths)):
        try:
            spec = GradingSpec.from_json(gt)
        except ValueError as e:
            out[i] = Grade(False, "bad_ground_truth", str(e))
            continue
        items.append((spec.problem, resp))
        where.append(i)
    for i, g in zip(where, grade_answers(executor, items, cfg) if items else []):
        out[i] = g
    return [g for g in out if g is not None]


_EXECUTOR: Executor | None = None
_EXECUTOR_LOCK = threading.Lock()


def shared_executor(sandbox: SandboxConfig | dict[str, Any] | None = None) -> Executor:
    """The process-wide executor used by :func:`compute_score` (one pool per verl reward worker)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        if _EXECUTOR is None:
            cfg = sandbox if isinstance(sandbox, SandboxConfig) else SandboxConfig(**(sandbox or {}))
            if cfg.backend == "ray":
                from gasp_rl.scale.ray_executor import RayExecutor

                _EXECUTOR = RayExecutor(cfg)
            else:
                from gasp_rl.sandbox import LocalExecutor

                _EXECUTOR = LocalExecutor(cfg, quiet=True)
        return _EXECUTOR


def set_shared_executor(executor: Executor | None) -> None:
    """Use ``executor`` for :func:`compute_score` (tests, or a driver that owns a pool)."""
    global _EXECUTOR
    with _EXECUTOR_LOCK:
        _EXECUTOR = executor


def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    sandbox: dict[str, Any] | None = None,
    **_: Any,
) -> dict[str, Any]:
    """verl's ``custom_reward_function`` contract: one response -> ``{"score": float, ...}``.

    ``ground_truth`` is a :class:`GradingSpec` JSON; ``sandbox`` (from ``reward_kwargs``) holds
    :class:`~gasp_rl.config.SandboxConfig` fields for the worker's pool.  Rows of another
    ``data_source`` get a 0 with status ``foreign_data_source`` rather than a guess.
    """
    if data_source != DATA_SOURCE:
        return as_verl(Grade(False, "foreign_data_source"))
    sb = SandboxConfig(**(sandbox or {}))
    [graded] = grade_responses([solution_str], [ground_truth], shared_executor(sb), Config(sandbox=sb))
    return as_verl(graded)


def decode_responses(data: Any, tokenizer: Any) -> list[str]:
    """The valid (unpadded) response text of every row of a verl ``DataProto``.

    verl right-pads responses: the valid length is the attention mask summed over the response
    part, exactly as its reward managers compute it.
    """
    prompt_len = data.batch["prompts"].shape[-1]
    lengths = data.batch["attention_mask"][:, prompt_len:].sum(dim=-1).tolist()
    responses = data.batch["responses"]
    return [tokenizer.decode(responses[i][: int(n)], skip_special_tokens=True) for i, n in enumerate(lengths)]


def score_dataproto(data: Any, tokenizer: Any, executor: Executor, cfg: Config | None = None) -> Any:
    """Grade a verl ``DataProto`` in one executor call; returns what verl's reward loop returns.

    The result is ``DataProto(batch={"rm_scores"}, non_tensor_batch={extra columns},
    meta_info={"reward_extra_keys": [...]})`` as built by ``RewardLoopManager.compute_rm_score``,
    with the score placed on the last valid response token by verl's own
    ``RewardManagerBase.assemble_rm_scores``; ``verl.trainer.ppo.reward.extract_reward`` reads it.
    Rows must carry ``reward_model["ground_truth"]`` (a :class:`GradingSpec` JSON) and
    ``data_source``.
    """
    require_verl()
    from tensordict import TensorDict
    from verl import DataProto
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

    responses = decode_responses(data, tokenizer)
    sources = list(data.non_tensor_batch["data_source"])
    truths = [rm["ground_truth"] for rm in data.non_tensor_batch["reward_model"]]
    graded = grade_responses(responses, truths, executor, cfg)
    rows = [
        as_verl(g) if src == DATA_SOURCE else as_verl(Grade(False, "foreign_data_source"))
        for g, src in zip(graded, sources)
    ]
    rm_scores = RewardManagerBase.assemble_rm_scores(data, [r["score"] for r in rows])
    keys = list(rows[0]) if rows else []
    non_tensor = {k: np.array([r[k] for r in rows]) for k in keys}
    return DataProto(
        batch=TensorDict({"rm_scores": rm_scores}, batch_size=len(rows)),
        non_tensor_batch=non_tensor,
        meta_info={"reward_extra_keys": keys},
    )


def verl_reward_manager_cls() -> type:
    """A verl reward-loop manager (registered as ``"gasp_rl"``) that grades with our sandbox.

    verl's reward loop calls ``run_single`` once per sample; this one runs the blocking sandbox
    call in a thread so verl's event loop keeps serving other samples.  Select it with
    ``reward.reward_manager.name=gasp_rl`` (after importing :mod:`gasp_rl.scale.verl_plugin`).
    """
    require_verl()
    from verl.experimental.reward_loop.reward_manager import register
    from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

    if "gasp_rl" in REWARD_MANAGER:
        return REWARD_MANAGER["gasp_rl"]

    class GaspRewardManager(RewardManagerBase):
        """Grades one sample with gasp-rl's sandbox (see :func:`compute_score`)."""

        def __init__(self, config: Any, tokenizer: Any, compute_score: Any = None, **_: Any) -> None:
            super().__init__(config, tokenizer, compute_score)

        async def run_single(self, data: Any) -> dict[str, Any]:
            item = data[-1:]
            [text] = decode_responses(item, self.tokenizer)
            row = item[0].non_tensor_batch
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                None,
                lambda: compute_score(row["data_source"], text, row["reward_model"]["ground_truth"]),
            )
            return {"reward_score": result["score"], "reward_extra_info": result}

    register("gasp_rl")(GaspRewardManager)
    return GaspRewardManager


# ====================================================================== 3. config


class VerlScaleConfig(BaseModel):
    """What a verl run needs beyond gasp-rl's :class:`~gasp_rl.config.Config`: the cluster shape
    and the engine knobs.  Lives under ``verl:`` in ``configs/verl/*.yaml``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    nnodes: int = Field(1, gt=0)
    n_gpus_per_node: int = Field(4, gt=0)
    rollout_engine: Literal["vllm", "sglang"] = "vllm"
    tensor_parallel_size: int = Field(1, gt=0, description="Rollout engine tensor parallelism.")
    gpu_memory_utilization: float = Field(0.6, gt=0, le=1)
    train_batch_size: int = Field(64, gt=0, description="Prompts per update (the paper's batch 64).")
    ppo_mini_batch_size: int = Field(64, gt=0, description="= train_batch_size: one on-policy step.")
    micro_batch_size_per_gpu: int = Field(4, gt=0)
    log_prob_micro_batch_size_per_gpu: int = Field(8, gt=0)
    max_prompt_length: int = Field(0, ge=0, description="0 = model.max_context - response length.")
    param_offload: bool = False
    optimizer_offload: bool = False
    gradient_checkpointing: bool = True
    use_remove_padding: bool = True
    save_freq: int = Field(-1, description="verl checkpoint every N steps; -1 = gasp-rl's own cadence.")
    test_freq: int = -1
    checkpoint_dir: str = Field("", description="verl's default_local_dir; '' = <run dir>/verl.")
    use_v1_trainer: bool = Field(
        False,
        description="verl's v1 trainer; the gasp-rl driver uses the worker-group API of the legacy one.",
    )
    overrides: list[str] = Field(
        default_factory=list, description="Raw Hydra overrides for verl, applied last."
    )


Command = Literal["train", "rlvr"]


def estimator_for(command: Command) -> str:
    """Self-play modes (GASP, AZR, ablations, GASP + RL's self-play half) use TRR++; RLVR uses GRPO."""
    return TRR_ESTIMATOR if command == "train" else "grpo"


def _hydra_value(value: Any) -> str:
    """A Python value as Hydra override text (strings quoted so ``~`` or ``:`` stay literal)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def verl_settings(cfg: Config, scale: VerlScaleConfig, command: Command = "train") -> dict[str, Any]:
    """The verl config keys gasp-rl sets, as ``{dotted.key: value}`` (method.md §6 settings -> verl).

    Sampling follows the command: self-play uses ``generation.*`` and ``gasp.n_student`` samples,
    RLVR uses ``rlvr.*``.  Raises :class:`ScaleError` for settings verl cannot run.
    """
    if cfg.model.name_or_path == "embedded":
        raise ScaleError(
            "model.name_or_path=embedded is the CPU GGUF model; verl needs a Hugging Face model id or "
            "directory (e.g. Qwen/Qwen2.5-Coder-7B)"
        )
    if command == "rlvr":
        temperature, n, response_length = cfg.rlvr.temperature, cfg.rlvr.n, cfg.rlvr.max_new_tokens
    else:
        temperature, n = cfg.generation.temperature, cfg.gasp.n_student
        response_length = cfg.generation.max_new_tokens
    prompt_length = scale.max_prompt_length or cfg.model.max_context - response_length
    if prompt_length <= 0:
        raise ScaleError(
            f"model.max_context ({cfg.model.max_context}) leaves no room for prompts after "
            f"{response_length} response tokens"
        )
    logger = (
        ["console"] + (["tensorboard"] if cfg.run.tensorboard else []) + (["wandb"] if cfg.run.wandb else [])
    )
    t = cfg.trainer
    a = "actor_rollout_ref.actor."
    r = "actor_rollout_ref.rollout."
    m = "actor_rollout_ref.model."
    return {
        "algorithm.adv_estimator": estimator_for(command),
        "algorithm.norm_adv_by_std_in_grpo": cfg.rlvr.scale_by_std if command == "rlvr" else True,
        "algorithm.use_kl_in_reward": False,
        "data.train_batch_size": scale.train_batch_size,
        "data.max_prompt_length": prompt_length,
        "data.max_response_length": response_length,
        "data.seed": cfg.run.seed,
        m + "path": cfg.model.name_or_path,
        m + "trust_remote_code": cfg.model.trust_remote_code,
        m + "external_lib": PLUGIN_MODULE,
        m + "enable_gradient_checkpointing": scale.gradient_checkpointing,
        m + "use_remove_padding": scale.use_remove_padding,
        a + "strategy": "fsdp",
        a + "optim.lr": t.lr,
        a + "optim.weight_decay": t.weight_decay,
        a + "grad_clip": t.max_grad_norm,
        a + "clip_ratio_low": t.clip_low,
        a + "clip_ratio_high": t.clip_high,
        a + "loss_agg_mode": t.loss_agg,
        a + "use_kl_loss": t.kl_coef > 0,
        a + "kl_loss_coef": t.kl_coef,
        a + "entropy_coeff": 0.0,
        a + "ppo_epochs": 1,
        a + "ppo_mini_batch_size": scale.ppo_mini_batch_size,
        a + "ppo_micro_batch_size_per_gpu": scale.micro_batch_size_per_gpu,
        a + "fsdp_config.param_offload": scale.param_offload,
        a + "fsdp_config.optimizer_offload": scale.optimizer_offload,
        r + "name": scale.rollout_engine,
        r + "temperature": temperature,
        r + "top_p": cfg.generation.top_p,
        r + "n": n,
        r + "tensor_model_parallel_size": scale.tensor_parallel_size,
        r + "gpu_memory_utilization": scale.gpu_memory_utilization,
        r + "log_prob_micro_batch_size_per_gpu": scale.log_prob_micro_batch_size_per_gpu,
        r + "val_kwargs.temperature": cfg.eval.temperature,
        r + "val_kwargs.do_sample": cfg.eval.temperature > 0,
        r + "val_kwargs.n": cfg.eval.n,
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu": scale.log_prob_micro_batch_size_per_gpu,
        "reward.custom_reward_function.path": REWARD_FN_PATH,
        "reward.custom_reward_function.name": REWARD_FN_NAME,
        "trainer.nnodes": scale.nnodes,
        "trainer.n_gpus_per_node": scale.n_gpus_per_node,
        "trainer.project_name": cfg.run.wandb_project,
        "trainer.experiment_name": cfg.gasp.mode if command == "train" else "rlvr",
        "trainer.logger": logger,
        "trainer.save_freq": scale.save_freq,
        "trainer.test_freq": scale.test_freq,
        "trainer.use_v1": scale.use_v1_trainer,
        "trainer.val_before_train": False,
    } | ({"trainer.default_local_dir": scale.checkpoint_dir} if scale.checkpoint_dir else {})


def verl_overrides(cfg: Config, scale: VerlScaleConfig, command: Command = "train") -> list[str]:
    """:func:`verl_settings` as Hydra override strings, then ``scale.overrides`` verbatim."""
    return [f"{k}={_hydra_value(v)}" for k, v in verl_settings(cfg, scale, command).items()] + list(
        scale.overrides
    )


def compose_verl_config(overrides: Sequence[str]) -> DictConfig:
    """verl's own ``ppo_trainer`` config (Hydra-composed from the installed verl) with overrides."""
    require_verl()
    import verl.trainer.config as verl_config_pkg
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    config_dir = str(Path(verl_config_pkg.__file__).resolve().parent)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir, version_base=None):
            return compose(config_name="ppo_trainer", overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as e:
        raise ScaleError(f"verl rejected the overrides: {str(e).splitlines()[0]}") from None
    finally:
        GlobalHydra.instance().clear()


def validate_verl_config(config: DictConfig) -> dict[str, Any]:
    """Run verl's own checks on a composed config; return the typed sections verl builds from it.

    Calls ``verl.utils.config.validate_config`` (batch divisibility, micro-batch rules, actor
    ``__post_init__``/``validate``) and converts the ``algorithm``, ``actor`` and ``rollout``
    sections into verl's dataclasses (``AlgoConfig``, ``FSDPActorConfig``, ``RolloutConfig``), which
    type-checks every field.  Raises :class:`ScaleError` with verl's message on failure.
    """
    require_verl()
    register_verl_estimators()
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    try:
        validate_config(
            config=config,
            use_reference_policy=need_reference_policy(config),
            use_critic=need_critic(config),
        )
        sections = {
            "algorithm": omega_conf_to_dataclass(config.algorithm),
            "actor": omega_conf_to_dataclass(config.actor_rollout_ref.actor),
            "rollout": omega_conf_to_dataclass(config.actor_rollout_ref.rollout),
        }
    except Exception as e:  # noqa: BLE001 - verl raises AssertionError/ValueError/Hydra errors alike
        raise ScaleError(f"verl config invalid: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    est = sections["algorithm"].adv_estimator
    if est not in ("gae", "grpo"):
        get_adv_estimator_fn(est)  # an unknown name fails here, before any GPU is touched
    return sections


def build_verl_config(cfg: Config, scale: VerlScaleConfig, command: Command = "train") -> DictConfig:
    """Translate, compose and validate: the verl config a gasp-rl run launches with."""
    config = compose_verl_config(verl_overrides(cfg, scale, command))
    validate_verl_config(config)
    return config


def load_scale_config(
    path: str | Path | None = None, overrides: Sequence[str] = ()
) -> tuple[Config, VerlScaleConfig]:
    """Read a ``configs/verl/*.yaml`` file: gasp-rl's config plus a ``verl:`` section.

    Overrides use the same dotted form as the CLI; ``verl.*`` keys go to the verl section.
    """
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = loaded
    apply_overrides(data, list(overrides))
    verl_part = data.pop("verl", {}) or {}
    try:
        scale = VerlScaleConfig.model_validate(verl_part)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid verl section: 'verl.{key}': {first['msg']}") from None
    try:
        cfg = Config.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"invalid config: '{key}': {first['msg']}") from None
    return cfg, scale
