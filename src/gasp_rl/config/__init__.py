"""The one typed configuration tree of gasp-rl.

Every constant of the method (``docs/method.md``) is a field here.  A config is loaded from YAML
(optional) and then patched with dotted command-line overrides such as ``trainer.lr=1e-6``.
Unknown keys and bad values fail with a :class:`ConfigError` that names the offending key.

The tree is split by concern: :mod:`~gasp_rl.config.engine` (model, generation, trainer, sandbox,
run), :mod:`~gasp_rl.config.methods` (GASP, AZR, RLVR, Sol-Ver, warm-up, evaluation, goalposts)
and :mod:`~gasp_rl.config.loading` (:class:`Config`, :func:`load_config`, :func:`dump_config`).
"""

from gasp_rl.config.base import ConfigError
from gasp_rl.config.engine import GenerationConfig, ModelConfig, RunConfig, SandboxConfig, TrainerConfig
from gasp_rl.config.loading import Config, apply_overrides, dump_config, load_config
from gasp_rl.config.methods import (
    AzrConfig,
    EvalConfig,
    GaspConfig,
    GoalpostConfig,
    Mode,
    RewardShape,
    RlvrConfig,
    SolverVerifierConfig,
    WarmupConfig,
)

__all__ = [
    "AzrConfig",
    "Config",
    "ConfigError",
    "EvalConfig",
    "GaspConfig",
    "GenerationConfig",
    "GoalpostConfig",
    "ModelConfig",
    "Mode",
    "RewardShape",
    "RlvrConfig",
    "RunConfig",
    "SandboxConfig",
    "SolverVerifierConfig",
    "TrainerConfig",
    "WarmupConfig",
    "apply_overrides",
    "dump_config",
    "load_config",
]
