"""The sandbox executor: model-written code runs here and nowhere else.

``LocalExecutor`` (a warm fork pool, one worker per core) is the default; ``gasp_rl.scale`` adds a
Ray-backed pool, and :mod:`gasp_rl.wiring` picks one from ``sandbox.backend``.  See
:mod:`gasp_rl.sandbox.isolation` for the layers and :mod:`gasp_rl.core.jobs` for job kinds and
comparison semantics.
"""

from gasp_rl.sandbox.pool import LocalExecutor, limits_from_config

__all__ = ["LocalExecutor", "limits_from_config"]
