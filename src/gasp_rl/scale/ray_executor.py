"""The sandbox executor fanned out over a Ray cluster (``sandbox.backend: ray``).

Each node of the cluster runs gasp-rl's own local sandbox pool (:class:`~gasp_rl.sandbox.LocalExecutor`,
with its isolation layers and limits) inside a Ray actor pinned to that node.  A call to
:meth:`RayExecutor.run` cuts the batch into one contiguous slice per actor, sized by the actor's
worker count, sends each slice in ONE remote call (so a batch of 512 jobs costs a handful of Ray
round trips, not 512), and puts the verdicts back in job order.  The verdicts are exactly those of
the local pool: the Ray layer only moves jobs and verdicts.

Ray is imported only when this class is built: the local CPU mode never needs Ray (whose start-up
costs seconds and about a gigabyte of memory).  A node actor that dies (node lost, OOM-killed) is
re-created and its slice retried once; a slice that still fails gets ``sandbox_error`` verdicts,
never an exception, as the :class:`~gasp_rl.seams.Executor` protocol requires.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job, Status, Verdict
from gasp_rl.errors import BackendUnavailable

log = logging.getLogger(__name__)


def split_by_capacity(n_jobs: int, capacities: list[int]) -> list[slice]:
    """Contiguous slices of ``range(n_jobs)``, one per capacity, with sizes proportional to it.

    Largest-remainder rounding: sizes differ from the exact share by less than one job, sum to
    ``n_jobs``, and earlier slots win ties, so the split is deterministic.
    """
    if not capacities or any(c <= 0 for c in capacities):
        raise ValueError(f"capacities must be positive, got {capacities}")
    total = sum(capacities)
    exact = [n_jobs * c / total for c in capacities]
    sizes = [int(x) for x in exact]
    by_remainder = sorted(range(len(capacities)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[: n_jobs - sum(sizes)]:
        sizes[i] += 1
    out, start = [], 0
    for s in sizes:
        out.append(slice(start, start + s))
        start += s
    return out


class _NodePool:
    """Body of the Ray actor: a local sandbox pool on one node."""

    def __init__(self, cfg: dict[str, Any], workers: int | None) -> None:
        from gasp_rl.sandbox.pool import LocalExecutor

        self.ex = LocalExecutor(SandboxConfig(**{**cfg, "backend": "local"}), workers=workers, quiet=True)

    def run(self, jobs: list[Job]) -> list[Verdict]:
        return self.ex.run(jobs)

    def check_determinism(self, jobs: list[Job]) -> list[tuple[bool, Verdict]]:
        return self.ex.check_determinism(jobs)

    def describe(self) -> dict[str, Any]:
        import ray

        return {
            "node_id": ray.get_runtime_context().get_node_id(),
            "workers": self.ex.n_workers,
            "isolation": self.ex.isolation.describe(),
        }

    def close(self) -> None:
        self.ex.close()


@dataclass
class _Slot:
    """One node actor and what is needed to re-create it."""

    node_id: str
    workers: int
    actor: Any


class RayExecutor:
    """A sandbox pool per Ray node (implements :class:`gasp_rl.seams.Executor`).

    ``cfg.ray_address``: ``""`` starts a private local Ray instance (``ray_init`` kwargs such as
    ``{"num_cpus": 2}`` go to ``ray.init``), ``"auto"`` or ``"host:port"`` joins a running cluster;
    an already initialised Ray session in this process is used as is.  ``cfg.workers`` is the pool
    size per node (0 = the local pool's default on that node).  ``actors_per_node`` > 1 splits a node's workers over
    several actors (more parallel Ray calls; also lets one machine exercise the multi-node path).
    """

    def __init__(
        self,
        cfg: SandboxConfig | None = None,
        *,
        actors_per_node: int = 1,
        ray_init: dict[str, Any] | None = None,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise BackendUnavailable(
                "sandbox.backend=ray needs Ray: pip install 'gasp-rl[ray]' (or use sandbox.backend=local)"
            ) from None
        if actors_per_node < 1:
            raise ValueError("actors_per_node must be >= 1")
        self.cfg = cfg or SandboxConfig(backend="ray")
        if actors_per_node > 1 and not self.cfg.workers:
            raise ValueError("actors_per_node > 1 needs an explicit sandbox.workers to share")
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.cfg.ray_address:
                kwargs["address"] = self.cfg.ray_address
            kwargs.update(ray_init or {})
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise BackendUnavailable(
                    f"cannot start or join Ray ({self.cfg.ray_address or 'local'}): {e}"
                ) from None
            self._owns_ray = True
        self._actor_cls = ray.remote(_NodePool)
        self._cfg_dict = self.cfg.model_dump()
        self._slots: list[_Slot] = []
        for node in ray.nodes():
            cpus = int(node.get("Resources", {}).get("CPU", 0))
            if not node.get("Alive") or cpus <= 0:
                continue
            per_node = self.cfg.workers
            for k in range(actors_per_node):
                share = per_node // actors_per_node + (1 if k < per_node % actors_per_node else 0)
                self._slots.append(self._spawn(node["NodeID"], max(1, share) if per_node else None))
        if not self._slots:
            raise BackendUnavailable("the Ray cluster has no alive node with CPUs")
        self._closed = False

    # ------------------------------------------------------------------ public API

    @property
    def n_nodes(self) -> int:
        return len({s.node_id for s in self._slots})

    @property
    def n_workers(self) -> int:
        return sum(s.workers for s in self._slots)

    def describe(self) -> list[dict[str, Any]]:
        """Per actor: node id, sandbox workers and the isolation layers active on that node."""
        return self._ray.get([s.actor.describe.remote() for s in self._slots])

    def run(self, jobs: list[Job]) -> list[Verdict]:
        """Verdicts in the order of ``jobs``; never raises for a bad job or a lost node."""
        return self._fan_out("run", list(jobs), lambda reason: Verdict(Status.SANDBOX_ERROR, reason))

    def check_determinism(self, jobs: list[Job]) -> list[tuple[bool, Verdict]]:
        """Each job twice in fresh interpreters, both runs on the same node's pool."""
        return self._fan_out(
            "check_determinism", list(jobs), lambda reason: (False, Verdict(Status.SANDBOX_ERROR, reason))
        )

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        ray = self._ray
        for slot in self._slots:
            try:
                ray.get(slot.actor.close.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead actor has nothing left to close
                pass
            ray.kill(slot.actor)
        self._slots = []
        if self._owns_ray:
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------ internals

    def _spawn(self, node_id: str, workers: int | None) -> _Slot:
        """A pool actor pinned to ``node_id``; ``workers=None`` lets the pool size itself to that
        node as the local pool does on its own machine.  Its real size weights the batch split."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        actor = self._actor_cls.options(
            num_cpus=0,  # the pool's own processes use the cores; the actor only relays
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
        ).remote(self._cfg_dict, workers)
        size = int(self._ray.get(actor.describe.remote())["workers"])
        return _Slot(node_id=node_id, workers=size, actor=actor)

    def _fan_out(self, method: str, jobs: list[Job], failed: Any) -> list[Any]:
        if self._closed:
            raise RuntimeError("executor is closed")
        if not jobs:
            return []
        slices = split_by_capacity(len(jobs), [s.workers for s in self._slots])
        calls = [
            (i, sl, getattr(self._slots[i].actor, method).remote(jobs[sl]))
            for i, sl in enumerate(slices)
            if sl.stop > sl.start
        ]
        out: list[Any] = [None] * len(jobs)
        for i, sl, ref in calls:
            out[sl] = self._collect(i, method, jobs[sl], ref, failed)
        return out

    def _collect(self, i: int, method: str, part: list[Job], ref: Any, failed: Any) -> list[Any]:
        """The results of one slice; on a lost actor, re-create it and retry the slice once."""
        from ray.exceptions import RayActorError, RayTaskError

        for attempt in (1, 2):
            try:
                result = self._ray.get(ref)
                if len(result) != len(part):
                    raise RuntimeError(f"node returned {len(result)} results for {len(part)} jobs")
                return result
            except (RayActorError, RayTaskError, RuntimeError) as e:
                slot = self._slots[i]
                reason = f"ray sandbox node {slot.node_id[:8]} failed: {type(e).__name__}"
                log.warning("%s (attempt %d)", reason, attempt)
                if attempt == 2:
                    return [failed(reason) for _ in part]
                try:
                    self._ray.kill(slot.actor)
                except Exception:  # noqa: BLE001
                    pass
                self._slots[i] = self._spawn(slot.node_id, slot.workers)
                ref = getattr(self._slots[i].actor, method).remote(part)
        raise AssertionError("unreachable")  # pragma: no cover
