"""A self-play run as the run driver sees it: one iteration of GASP (or an ablation, or AZR),
then, in ``mode=gasp_plus_rl``, ``gasp.rl_updates_per_iteration`` RLVR updates.

:func:`make_selfplay` picks the algorithm from ``gasp.mode``; :class:`SelfPlay` adds the
resume state the driver checkpoints (the algorithm's own, and the novelty buffers).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gasp_rl.algorithms.azr import AZR, load_seed_programs
from gasp_rl.algorithms.gasp import GASP
from gasp_rl.algorithms.rlvr import RLVRStepper, make_rl_stepper
from gasp_rl.algorithms.selfplay import PhaseClock, SelfPlayKit
from gasp_rl.config import Config
from gasp_rl.core.tasks import Problem
from gasp_rl.seams import Embedder, Executor, RecordStore

#: The novelty buffers in a checkpoint.
BUFFERS_FILE = "buffers.npz"


def make_selfplay(
    cfg: Config,
    policy: Any,
    executor: Executor,
    embedder: Embedder,
    goalposts: Sequence[Problem],
    rl_problems: Sequence[Problem] | None = None,
    pool: Sequence[Problem] | None = None,
    judge: Any = None,
) -> SelfPlay:
    """The self-play run of ``gasp.mode`` on a policy bundle (generator, learner, ``sync``)."""
    kit = SelfPlayKit(
        cfg, policy.generator, policy.learner, executor, embedder, sync=getattr(policy, "sync", None)
    )
    if cfg.gasp.mode == "azr":
        algo: Any = AZR(cfg, kit, load_seed_programs(executor, cfg.azr.n_seed_programs))
    else:
        algo = GASP(cfg, kit, list(goalposts), pool=list(pool or []), judge=judge)
    rl = None
    if cfg.gasp.mode == "gasp_plus_rl":
        rl = make_rl_stepper(cfg, policy, executor, rl_problems)
    return SelfPlay(cfg, kit, algo, rl)


class SelfPlay:
    """One self-play iteration (the algorithm's, then the RL updates) and its resume state."""

    def __init__(self, cfg: Config, kit: SelfPlayKit, algo: Any, rl: RLVRStepper | None = None) -> None:
        self.cfg, self.kit, self.algo, self.rl = cfg, kit, algo, rl

    @property
    def clock(self) -> PhaseClock:
        return self.kit.clock

    def iteration(self, it: int, store: RecordStore) -> dict[str, Any]:
        metrics: dict[str, Any] = {"iteration": it, "mode": self.cfg.gasp.mode}
        metrics.update(self.algo.iteration(it, store))
        if self.rl is not None:
            with self.clock.timed("rl"):
                metrics["rl"] = [
                    self.rl.step(it, store) for _ in range(self.cfg.gasp.rl_updates_per_iteration)
                ]
        return metrics

    # ------------------------------------------------------------------ resume state

    def state(self) -> dict[str, Any]:
        return self.algo.state()

    def save_files(self, checkpoint: Path) -> None:
        np.savez(
            checkpoint / BUFFERS_FILE,
            question=self.kit.question_buffer.matrix,
            code=self.kit.code_buffer.matrix,
        )

    def load_state(self, state: dict[str, Any], checkpoint: Path) -> None:
        self.algo.load_state(state)
        bufs = np.load(checkpoint / BUFFERS_FILE)
        if len(bufs["question"]):
            self.kit.question_buffer.add(bufs["question"], normalized=True)
            self.kit.code_buffer.add(bufs["code"], normalized=True)

    # ------------------------------------------------------------------ display

    def start(self, store: RecordStore, first: int) -> None:
        pass

    def intro(self, first: int, total: int, store: RecordStore) -> str:
        isolation = getattr(self.kit.executor, "isolation", None)
        return f"{self.cfg.gasp.mode} run in {store.path} ({isolation and isolation.describe()})"

    def summary(self, it: int, total: int, metrics: dict[str, Any], eta: float) -> str:
        return _progress_line(it, total, metrics, metrics["time"]["total"], eta)


def _progress_line(it: int, total: int, m: dict[str, Any], dt: float, eta: float) -> str:
    p = m.get("proposals", {})
    sr = (m.get("student_reward") or {}).get("all")
    rejected = sorted(((n, r) for r, n in p.get("by_reason", {}).items() if r != "accepted"), reverse=True)
    why = f" (rejected: {', '.join(f'{r} {n}' for n, r in rejected)})" if rejected else ""
    return (
        f"iteration {it + 1}/{total}: accepted {p.get('accepted', 0)}/{p.get('attempted', 0)} proposals"
        f"{why}, student reward {sr if sr is None else round(sr, 3)}, {dt:.1f}s (ETA {eta:.0f}s)"
    )
