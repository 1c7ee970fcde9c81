"""The sandbox executor: model-written code runs here and nowhere else.

``LocalExecutor`` (a warm fork pool, one worker per core) is the default; ``gasp_rl.scale`` adds a
Ray-backed pool.  See :mod:`gasp_rl.sandbox.isolation` for the layers and
:mod:`gasp_rl.core.jobs` for job kinds and comparison semantics.
"""

from gasp_rl.sandbox.pool import LocalExecutor, limits_from_config

__all__ = ["LocalExecutor", "limits_from_config", "make_executor"]


def make_executor(cfg):  # noqa: ANN001, ANN201 - cfg is a gasp_rl.config.Config
    """The executor selected by ``cfg.sandbox.backend``."""
    if cfg.sandbox.backend == "ray":
        from gasp_rl.scale.ray_executor import RayExecutor

        return RayExecutor(cfg.sandbox)
    return LocalExecutor(cfg.sandbox)
