"""The run driver shared by every self-play mode: wiring, iterations, checkpoints, resume.

It owns nothing algorithmic: it builds the seams from the config, asks the algorithm for one
iteration at a time, writes the metrics record, checkpoints, and commits the iteration.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gasp_rl.algorithms.selfplay import SelfPlayKit
from gasp_rl.config import Config
from gasp_rl.errors import GaspError
from gasp_rl.runs import RunStore, budget_spent, keep_weights, replace_dir

log = logging.getLogger("gasp_rl")


def build_seams(cfg: Config):
    """(policy bundle, executor, embedder) for the config: backends are chosen by the factory."""
    from gasp_rl.backends.factory import build_embedder, build_policy
    from gasp_rl.sandbox import make_executor

    policy = build_policy(cfg)
    embedder = policy.embedder
    if cfg.model.backend == "fake" and cfg.gasp.embedder != "policy":
        embedder = build_embedder(cfg)
    return policy, make_executor(cfg), embedder


def load_goalposts(spec: str):
    from gasp_rl.eval.goalposts import load_goalposts as _load

    return _load(spec)


def make_algorithm(cfg: Config, kit: SelfPlayKit):
    if cfg.gasp.mode == "azr":
        from gasp_rl.algorithms.azr import AZR, load_seed_programs

        return AZR(cfg, kit, load_seed_programs(kit.executor, cfg.azr.n_seed_programs))
    from gasp_rl.algorithms.gasp import GASP

    g = cfg.gasp
    pool = load_goalposts(g.goalposts_pool) if g.goalposts_pool else []
    return GASP(cfg, kit, load_goalposts(g.goalposts), pool=pool, judge=build_judge(cfg))


def build_judge(cfg: Config):
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


def _save_checkpoint(
    store: RunStore, learner: Any, algo: Any, kit: SelfPlayKit, it: int, final: bool = False
) -> None:
    """Resume state into checkpoints/last (atomically), weights into iter_NNNNNN when due."""
    tmp = store.path / "checkpoints" / f".last.tmp{os.getpid()}"
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if learner is not None:
        learner.save(tmp)
    state = {"iteration": it, "algorithm": algo.state()}
    (tmp / "loop_state.json").write_text(json.dumps(state))
    np.savez(tmp / "buffers.npz", question=kit.question_buffer.matrix, code=kit.code_buffer.matrix)
    replace_dir(tmp, store.last_checkpoint)
    every = store.cfg.gasp.checkpoint_every
    if final or (it + 1) % every == 0 or it + 1 == store.cfg.gasp.iterations:
        keep_weights(store.last_checkpoint, store.iteration_checkpoint(it))


def _load_checkpoint(store: RunStore, learner: Any, algo: Any, kit: SelfPlayKit) -> None:
    last = store.last_checkpoint
    if not last.exists():
        return
    if learner is not None:
        learner.load(last)
    state = json.loads((last / "loop_state.json").read_text())
    algo.load_state(state.get("algorithm", {}))
    bufs = np.load(last / "buffers.npz")
    if len(bufs["question"]):
        kit.question_buffer.add(bufs["question"], normalized=True)
        kit.code_buffer.add(bufs["code"], normalized=True)


def _progress_line(it: int, total: int, m: dict[str, Any], dt: float, eta: float) -> str:
    p = m.get("proposals", {})
    sr = (m.get("student_reward") or {}).get("all")
    rejected = sorted(((n, r) for r, n in p.get("by_reason", {}).items() if r != "accepted"), reverse=True)
    why = f" (rejected: {', '.join(f'{r} {n}' for n, r in rejected)})" if rejected else ""
    return (
        f"iteration {it + 1}/{total}: accepted {p.get('accepted', 0)}/{p.get('attempted', 0)} proposals"
        f"{why}, student reward {sr if sr is None else round(sr, 3)}, {dt:.1f}s (ETA {eta:.0f}s)"
    )


class _Display:
    """A rich progress bar (iteration, phase, ETA) on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, start: int) -> None:
        self.tty = sys.stderr.isatty()
        self.progress = None
        if self.tty:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[phase]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self.progress.start()
            self.task = self.progress.add_task("iterations", total=total, completed=start, phase="")

    def iteration(self, it: int) -> None:
        if self.progress is None:
            log.info("iteration %d: started", it + 1)

    def phase(self, name: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, phase=name)
        else:
            log.info("  phase %s", name)

    def done(self, line: str) -> None:
        if self.progress is not None:
            self.progress.console.print(line)
            self.progress.advance(self.task)
        else:
            log.info(line)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_selfplay(cfg: Config | None, resume: Path | None = None, overrides: Sequence[str] = ()) -> Path:
    """Run (``cfg``) or resume (``resume``, its config plus resumable ``overrides``) a self-play run."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if resume is not None:
        store = RunStore.open(resume, overrides)
        cfg = store.cfg
    else:
        assert cfg is not None, "a new run needs a config"
        store = RunStore.create(cfg, "train")
    start = int(store.meta.get("last_iteration", -1)) + 1
    if start >= cfg.gasp.iterations:
        log.info("run %s already completed %d iterations", store.path, start)
        return store.path
    policy, executor, embedder = build_seams(cfg)
    loggers = _make_loggers(cfg, store.path)
    display: _Display | None = None
    try:
        kit = SelfPlayKit(
            cfg, policy.generator, policy.learner, executor, embedder, sync=getattr(policy, "sync", None)
        )
        from gasp_rl.algorithms.azr import load_seed_programs
        from gasp_rl.algorithms.warmup import warm_up_run

        with kit.clock.timed("warmup"):
            warm_up_run(cfg, policy, executor, load_seed_programs(executor, cfg.azr.n_seed_programs), store)
        algo = make_algorithm(cfg, kit)
        rl = None
        if cfg.gasp.mode == "gasp_plus_rl":
            from gasp_rl.algorithms.rlvr import make_rl_stepper

            rl = make_rl_stepper(cfg, policy, executor)
        if resume is not None:
            _load_checkpoint(store, policy.learner, algo, kit)
            log.info("resuming %s at iteration %d", store.path, start)
        log.info(
            "%s run in %s (%s)",
            cfg.gasp.mode,
            store.path,
            getattr(executor, "isolation", None) and executor.isolation.describe(),
        )
        t_run = time.perf_counter()
        display = _Display(cfg.gasp.iterations, start)
        kit.clock.on_phase = display.phase
        for it in range(start, cfg.gasp.iterations):
            display.iteration(it)
            kit.clock.seconds.clear()
            t0 = time.perf_counter()
            metrics: dict[str, Any] = {"iteration": it, "mode": cfg.gasp.mode}
            metrics.update(algo.iteration(it, store))
            if rl is not None:
                with kit.clock.timed("rl"):
                    metrics["rl"] = [rl.step(it, store) for _ in range(cfg.gasp.rl_updates_per_iteration)]
            stop = budget_spent(cfg, t_run)
            with kit.clock.timed("checkpoint"):
                _save_checkpoint(store, policy.learner, algo, kit, it, final=stop)
            metrics["time"] = {
                **{k: round(v, 3) for k, v in kit.clock.seconds.items()},
                "total": round(time.perf_counter() - t0, 3),
            }
            store.append("metrics", metrics)
            store.commit_iteration(it)
            for lg in loggers:
                lg.log(metrics, step=it)
            done = it + 1 - start
            elapsed = time.perf_counter() - t_run
            eta = elapsed / done * (cfg.gasp.iterations - it - 1)
            display.done(_progress_line(it, cfg.gasp.iterations, metrics, metrics["time"]["total"], eta))
            if stop:
                log.info("time budget of %.1f min spent after iteration %d", cfg.run.max_minutes, it + 1)
                store.save_meta(stopped="time budget")
                break
        store.close(status="completed")
        return store.path
    except BaseException:
        store.close(status="interrupted")
        raise
    finally:
        if display is not None:
            display.close()
        for lg in loggers:
            lg.close()
        executor.close()
        policy.close()


def _make_loggers(cfg: Config, run_dir: Path) -> list[Any]:
    if not (cfg.run.tensorboard or cfg.run.wandb):
        return []
    try:
        from gasp_rl.loggers import make_loggers
    except ImportError as e:  # pragma: no cover
        raise GaspError(f"metric loggers unavailable: {e}") from None
    return list(make_loggers(cfg.run, run_dir))
