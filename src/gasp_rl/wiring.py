"""Config -> seams: the one module that builds concrete backends and the sandbox.

The algorithms (:mod:`gasp_rl.algorithms`), the pure core and the evaluation code receive their
seams (:mod:`gasp_rl.seams`: generator, learner, executor, embedder, finetuner) and never import
:mod:`gasp_rl.backends` or :mod:`gasp_rl.sandbox`; the CLI, the run driver, the benchmarks and
the scale driver get them from a :class:`Wiring`.  An engine that brings its own policy (verl)
hands it in: ``Wiring(policy=bundle)`` returns that bundle instead of building one.

- :meth:`Wiring.policy`    ``model.backend`` -> the policy bundle (:mod:`gasp_rl.backends.factory`);
- :meth:`Wiring.executor`  ``sandbox.backend`` -> the local fork pool or the Ray pool;
- :meth:`Wiring.embedder`  the novelty embedder of a self-play run (``gasp.embedder``);
- :meth:`Wiring.judge`     the LLM judge of lemma-goalpost alignment (``gasp.alignment_judge_url``);
- :meth:`Wiring.dedup_embedder` / :meth:`Wiring.sol_ver_trainer`  Sol-Ver's de-duplication
  embedder and its TRL SFT + DPO trainer (an in-process Hugging Face model is required).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gasp_rl.backends import factory
from gasp_rl.config import Config
from gasp_rl.errors import BackendUnavailable
from gasp_rl.sandbox.pool import LocalExecutor
from gasp_rl.seams import Embedder, Executor


class Wiring:
    """Builds the seams of a run from its config; ``policy`` / ``executor`` hand in ready ones."""

    def __init__(self, policy: Any = None, executor: Executor | None = None) -> None:
        self._policy = policy
        self._executor = executor

    def policy(self, cfg: Config, name_or_path: str | None = None) -> Any:
        """The policy bundle of ``cfg.model.backend`` (for another model: ``name_or_path``)."""
        if self._policy is not None:
            return self._policy
        if name_or_path is not None:
            cfg = cfg.model_copy(deep=True)
            cfg.model.name_or_path = name_or_path
        return factory.build_policy(cfg)

    def executor(self, cfg: Config) -> Executor:
        """The sandbox selected by ``cfg.sandbox.backend``."""
        if self._executor is not None:
            return self._executor
        if cfg.sandbox.backend == "ray":
            from gasp_rl.scale.ray_executor import RayExecutor

            return RayExecutor(cfg.sandbox)
        return LocalExecutor(cfg.sandbox)

    def embedder(self, cfg: Config, policy: Any) -> Embedder:
        """The self-play novelty embedder: the policy's (``gasp.embedder=policy``, or whatever the
        backend built from ``gasp.embedder``); the fake backend builds the configured one."""
        if cfg.model.backend == "fake" and cfg.gasp.embedder != "policy":
            return factory.build_embedder(cfg)
        return policy.embedder

    def judge(self, cfg: Config) -> Any:
        """The LLM judge of lemma-goalpost alignment (an OpenAI-compatible server), or None."""
        if not cfg.gasp.alignment_judge_url:
            return None
        from gasp_rl.backends.openai_compat import OpenAICompatGenerator

        judge_cfg = cfg.model_copy(deep=True)
        judge_cfg.model.backend = "openai"
        judge_cfg.model.base_url = cfg.gasp.alignment_judge_url
        judge_cfg.model.server_model = cfg.gasp.alignment_judge_model
        judge_cfg.model.name_or_path = cfg.gasp.alignment_judge_model or cfg.model.name_or_path
        return OpenAICompatGenerator.from_config(judge_cfg)

    def dedup_embedder(self, cfg: Config, policy: Any) -> Embedder:
        """Sol-Ver's problem de-duplication embedder (``solver_verifier.dedup_embedder``)."""
        if cfg.solver_verifier.dedup_embedder == "policy" and getattr(policy, "embedder", None) is not None:
            return policy.embedder
        from gasp_rl.backends.embedder import HashingEmbedder

        return HashingEmbedder()

    def sol_ver_trainer(self, cfg: Config, policy: Any, work_dir: Path) -> Any:
        """TRL's SFT + DPO trainer on the policy's in-process Hugging Face model."""
        from gasp_rl.backends.trl_finetune import TrlTrainer

        model, tokenizer = trainable(policy)
        return TrlTrainer(model, tokenizer, cfg, Path(work_dir) / "trl")


def trainable(bundle: Any) -> tuple[Any, Any]:
    """The HF model + tokenizer TRL trains, from a policy bundle (or its learner)."""
    for holder in (bundle, getattr(bundle, "learner", None)):
        model, tok = getattr(holder, "model", None), getattr(holder, "tokenizer", None)
        if model is not None and tok is not None and hasattr(model, "save_pretrained"):
            return model, tok
    raise BackendUnavailable(
        "Sol-Ver trains with TRL and needs an in-process Hugging Face model (model.backend=hf); "
        f"the '{type(bundle).__name__}' policy has none"
    )


#: The wiring of an ordinary run: everything built from the config.
DEFAULT = Wiring()


def make_executor(cfg: Config) -> Executor:
    """The sandbox of ``cfg`` (``DEFAULT.executor``)."""
    return DEFAULT.executor(cfg)
