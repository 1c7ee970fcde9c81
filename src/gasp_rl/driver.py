"""The one run driver of every training command: ``gasp train`` (GASP, its ablations, AZR,
GASP + RL), ``gasp rlvr`` and ``gasp solver-verifier``.

It owns nothing algorithmic.  For a :class:`RunSpec` (which algorithm, how many iterations) it

1. creates the run directory (or reopens it to resume: records after the last committed
   iteration are dropped, the weights and the algorithm's state come from ``checkpoints/last``);
2. builds the seams through the :class:`~gasp_rl.wiring.Wiring` and hands them to the algorithm;
3. runs the cold-start warm-up before iteration 1 (``warmup.enabled``; self-play and RLVR);
4. asks the algorithm for one :meth:`~RunAlgorithm.iteration` at a time, timing its phases;
5. checkpoints atomically: ``checkpoints/last`` (weights + optimizer + ``state.json`` + the
   algorithm's files) after every iteration, swapped in whole; every ``checkpoint_every``
   iterations and after the last one the weights are kept as ``checkpoints/iter_NNNNNN``
   (hard links, no resume-only files);
6. appends the iteration's ``metrics`` record, then commits the iteration in ``run.json``;
7. shows progress (a rich bar on a terminal, one plain line per iteration otherwise) and feeds
   the metric loggers (TensorBoard, W&B);
8. stops at the end, or when ``run.max_minutes`` is spent, and records the final status:
   ``completed``, ``interrupted`` (Ctrl-C) or ``failed`` (an error).

``state.json`` is ``{"mode", "iteration", "algorithm": <the algorithm's state>}``; runs written
before it was unified (self-play's ``loop_state.json``) still resume.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gasp_rl.algorithms.selfplay import PhaseClock
from gasp_rl.config import Config
from gasp_rl.errors import GaspError
from gasp_rl.runs import RunStore, atomic_write_text, budget_spent, keep_weights, replace_dir
from gasp_rl.wiring import DEFAULT, Wiring

log = logging.getLogger("gasp_rl")

#: The resume state in ``checkpoints/last``.
STATE_FILE = "state.json"
#: Where older runs kept it (read on resume only).
LEGACY_STATE_FILES = ("loop_state.json",)


class RunAlgorithm(Protocol):
    """What the driver asks of an algorithm (GASP / AZR self-play, RLVR, Sol-Ver)."""

    clock: PhaseClock

    def iteration(self, it: int, store: RunStore) -> dict[str, Any]:
        """Run iteration ``it``, appending its proposals / students records; its metrics record."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON state a resume needs besides the weights."""
        ...

    def load_state(self, state: dict[str, Any], checkpoint: Path) -> None: ...

    def save_files(self, checkpoint: Path) -> None:
        """Extra resume files (arrays) written into the checkpoint being made."""
        ...

    def start(self, store: RunStore, first: int) -> None:
        """Called once before iteration ``first`` (after a resume's state is loaded)."""
        ...

    def intro(self, first: int, total: int, store: RunStore) -> str: ...

    def summary(self, it: int, total: int, metrics: dict[str, Any], eta: float) -> str: ...


@dataclass
class Seams:
    """The policy bundle (generator, learner, embedder, finetuner, ``sync``) and the sandbox."""

    policy: Any
    executor: Any
    embedder: Any


@dataclass(frozen=True)
class RunSpec:
    """One training command: its run-directory name, length and how its algorithm is built."""

    command: str
    total: Callable[[Config], int]
    checkpoint_every: Callable[[Config], int]
    #: Loads the command's data (fails before a run directory is made).
    load_data: Callable[[Config], Any]
    #: (cfg, seams, data, store, wiring) -> the algorithm.
    build: Callable[[Config, Seams, Any, RunStore, Wiring], RunAlgorithm]
    warmup: bool = True


# ---------------------------------------------------------------------------- checkpoints


def save_checkpoint(store: RunStore, learner: Any, algo: RunAlgorithm, it: int, keep: bool) -> None:
    """``checkpoints/last`` (written beside it, swapped in atomically); ``iter_NNNNNN`` if ``keep``."""
    last = store.last_checkpoint
    tmp = last.with_name(f".{last.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    if learner is not None:
        learner.save(tmp)
    algo.save_files(tmp)
    state = {"mode": store.meta.get("mode"), "iteration": it, "algorithm": algo.state()}
    atomic_write_text(tmp / STATE_FILE, json.dumps(state) + "\n")
    replace_dir(tmp, last)
    if keep:
        keep_weights(last, store.iteration_checkpoint(it))


def read_state(checkpoint: Path) -> dict[str, Any]:
    for name in (STATE_FILE, *LEGACY_STATE_FILES):
        if (checkpoint / name).is_file():
            return json.loads((checkpoint / name).read_text(encoding="utf-8"))
    return {}


def load_checkpoint(store: RunStore, seams: Seams, algo: RunAlgorithm, start: int) -> None:
    """Weights and the algorithm's state of the last committed iteration (``start - 1``)."""
    last = store.last_checkpoint
    if not last.is_dir():
        raise GaspError(f"cannot resume {store.path}: no checkpoints/last (iteration {start - 1})")
    learner = getattr(seams.policy, "learner", None)
    if learner is not None:
        learner.load(last)
    algo.load_state(read_state(last).get("algorithm", {}), last)
    sync = getattr(seams.policy, "sync", None)
    if callable(sync):
        sync()


# ---------------------------------------------------------------------------- display


def say(msg: str) -> None:
    print(msg, flush=True)


class Display:
    """A rich progress bar (iteration, phase, ETA) on a terminal; plain lines otherwise."""

    def __init__(self, label: str, total: int, start: int) -> None:
        self.progress = None
        if sys.stdout.isatty():
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
            self.task = self.progress.add_task(label, total=total, completed=start, phase="")

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
            say(line)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def make_loggers(cfg: Config, run_dir: Path) -> list[Any]:
    if not (cfg.run.tensorboard or cfg.run.wandb):
        return []
    try:
        from gasp_rl.loggers import make_loggers as _make
    except ImportError as e:  # pragma: no cover
        raise GaspError(f"metric loggers unavailable: {e}") from None
    return list(_make(cfg.run, run_dir))


# ---------------------------------------------------------------------------- the run


def _article(word: str) -> str:
    return "an" if word == "rlvr" or word[:1] in "aeiou" else "a"  # "an rlvr run": read letter by letter


def open_store(spec: RunSpec, cfg: Config | None, resume: Path | None, overrides: Sequence[str]):
    """(store, cfg, data): the run reopened, or (data loaded first) created."""
    if resume is not None:
        store = RunStore.open(resume, overrides)
        if store.meta.get("command") != spec.command:
            store.close()
            raise GaspError(
                f"{store.path} is a '{store.meta.get('command')}' run, "
                f"not {_article(spec.command)} {spec.command} run"
            )
        cfg = store.cfg
        return store, cfg, spec.load_data(cfg)
    assert cfg is not None, "a new run needs a config"
    data = spec.load_data(cfg)  # bad data fails here, before a run directory is made
    return RunStore.create(cfg, spec.command), cfg, data


def run(
    spec: RunSpec,
    cfg: Config | None,
    resume: Path | None = None,
    overrides: Sequence[str] = (),
    wiring: Wiring = DEFAULT,
) -> Path:
    """Run (``cfg``) or resume (``resume``, its config plus resumable ``overrides``) one run."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    store, cfg, data = open_store(spec, cfg, resume, overrides)
    total = spec.total(cfg)
    start = int(store.meta.get("last_iteration", -1)) + 1
    if start >= total:
        say(f"{store.path}: all {total} iterations are done")
        store.close()
        return store.path
    status = "failed"
    seams: Seams | None = None
    loggers: list[Any] = []
    display: Display | None = None
    try:
        policy = wiring.policy(cfg)
        seams = Seams(policy, None, None)
        seams.executor = wiring.executor(cfg)
        seams.embedder = wiring.embedder(cfg, policy)
        if spec.warmup and start == 0:
            _warm_up(cfg, seams, store)
        algo = spec.build(cfg, seams, data, store, wiring)
        if start > 0:
            load_checkpoint(store, seams, algo, start)
            log.info("resuming %s at iteration %d", store.path, start)
        loggers = make_loggers(cfg, store.path)
        say(algo.intro(start, total, store))
        algo.start(store, start)
        _iterate(
            spec,
            cfg,
            store,
            seams,
            algo,
            start,
            total,
            loggers,
            display := Display(spec.command, total, start),
        )
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if display is not None:
            display.close()
        for lg in loggers:
            lg.close()
        if seams is not None:
            if seams.executor is not None:
                seams.executor.close()
            close = getattr(seams.policy, "close", None)
            if callable(close):
                close()
        store.close(status)
    say(f"{spec.command} finished: {store.path}")
    return store.path


def _iterate(
    spec: RunSpec,
    cfg: Config,
    store: RunStore,
    seams: Seams,
    algo: RunAlgorithm,
    start: int,
    total: int,
    loggers: list[Any],
    display: Display,
) -> None:
    clock = algo.clock
    clock.on_phase = display.phase
    every = spec.checkpoint_every(cfg)
    learner = getattr(seams.policy, "learner", None)
    t_run = time.perf_counter()
    for it in range(start, total):
        display.iteration(it)
        clock.seconds.clear()
        t0 = time.perf_counter()
        metrics = algo.iteration(it, store)
        stop = budget_spent(cfg, t_run)
        with clock.timed("checkpoint"), _quiet(algo):
            keep = stop or (it + 1) % every == 0 or it + 1 == total
            save_checkpoint(store, learner, algo, it, keep)
        metrics["time"] = {
            **(metrics.get("time") or {}),
            **{k: round(v, 3) for k, v in clock.seconds.items()},
            "total": round(time.perf_counter() - t0, 3),
        }
        store.append("metrics", metrics)
        store.commit_iteration(it)
        for lg in loggers:
            lg.log(metrics, step=it)
        elapsed = time.perf_counter() - t_run
        eta = elapsed / (it + 1 - start) * (total - it - 1)
        if cfg.run.max_minutes:  # a time budget ends the run first when it is the shorter
            eta = max(0.0, min(eta, cfg.run.max_minutes * 60 - elapsed))
        display.done(algo.summary(it, total, metrics, eta))
        if stop:
            say(f"{spec.command}: time budget of {cfg.run.max_minutes} min spent after iteration {it + 1}")
            store.save_meta(stopped="time budget")
            break


def _quiet(algo: Any) -> contextlib.AbstractContextManager[Any]:
    """The algorithm's context for writing a checkpoint (Sol-Ver silences TRL's libraries)."""
    fn = getattr(algo, "checkpoint_context", None)
    return fn() if callable(fn) else contextlib.nullcontext()


def _warm_up(cfg: Config, seams: Seams, store: RunStore) -> None:
    from gasp_rl.algorithms.azr import load_seed_programs
    from gasp_rl.algorithms.warmup import warm_up_run

    if not cfg.warmup.enabled:
        return
    seeds = load_seed_programs(seams.executor, cfg.azr.n_seed_programs)
    warm_up_run(cfg, seams.policy, seams.executor, seeds, store)


# ---------------------------------------------------------------------------- the commands


def _selfplay_data(cfg: Config) -> tuple[list[Any], list[Any] | None, list[Any]]:
    """(goalposts, the RL problems of GASP + RL, the promotion pool of dynamic goalposts)."""
    from gasp_rl.algorithms import rlvr
    from gasp_rl.eval.datasets import load_goalposts

    g = cfg.gasp
    goalposts = [] if g.mode == "azr" else load_goalposts(g.goalposts)
    problems = rlvr.load_rlvr_problems(cfg) if g.mode == "gasp_plus_rl" else None
    pool = load_goalposts(g.goalposts_pool) if g.goalposts_pool and g.mode != "azr" else []
    return goalposts, problems, pool


def _build_selfplay(cfg: Config, seams: Seams, data: Any, store: RunStore, wiring: Wiring) -> RunAlgorithm:
    from gasp_rl.algorithms.loop import make_selfplay

    goalposts, problems, pool = data
    return make_selfplay(
        cfg, seams.policy, seams.executor, seams.embedder, goalposts, problems, pool, wiring.judge(cfg)
    )


def _rlvr_data(cfg: Config) -> list[Any]:
    from gasp_rl.algorithms import rlvr

    return rlvr.load_rlvr_problems(cfg)


def _build_rlvr(cfg: Config, seams: Seams, problems: Any, store: RunStore, wiring: Wiring) -> RunAlgorithm:
    from gasp_rl.algorithms.rlvr import RLVR, make_rl_stepper

    return RLVR(cfg, make_rl_stepper(cfg, seams.policy, seams.executor, problems))


def _sv_data(cfg: Config) -> tuple[list[Any], list[Any]]:
    from gasp_rl.eval.datasets import load_problems

    sv = cfg.solver_verifier
    seeds = load_problems(sv.seed_problems, sv.seed_problems_path)
    heldout = (
        load_problems(cfg.eval.benchmark, cfg.eval.path, limit=sv.eval_limit) if sv.eval_limit != 0 else []
    )
    return seeds, heldout


def _build_sv(cfg: Config, seams: Seams, data: Any, store: RunStore, wiring: Wiring) -> RunAlgorithm:
    from gasp_rl.algorithms import solver_verifier as sv

    policy = seams.policy
    sv_seams = sv.Seams(
        generator=policy.generator,
        trainer=wiring.sol_ver_trainer(cfg, policy, store.path / "work"),
        executor=seams.executor,
        embedder=wiring.dedup_embedder(cfg, policy),
        sync=getattr(policy, "sync", None),
    )
    seeds, heldout = data
    return sv.SolVer(cfg, sv_seams, seeds, heldout)


TRAIN_RUN = RunSpec(
    "train", lambda c: c.gasp.iterations, lambda c: c.gasp.checkpoint_every, _selfplay_data, _build_selfplay
)
RLVR_RUN = RunSpec(
    "rlvr", lambda c: c.rlvr.updates, lambda c: c.rlvr.checkpoint_every, _rlvr_data, _build_rlvr
)
#: Sol-Ver keeps the weights of every iteration and has no cold start.
SOLVER_VERIFIER_RUN = RunSpec(
    "solver-verifier", lambda c: c.solver_verifier.iterations, lambda c: 1, _sv_data, _build_sv, warmup=False
)


def run_training(
    cfg: Config | None, resume: Path | None = None, overrides: Sequence[str] = (), wiring: Wiring = DEFAULT
) -> Path:
    """``gasp train``: GASP (default), an ablation, GASP + real-data RL, or the AZR baseline."""
    return run(TRAIN_RUN, cfg, resume, overrides, wiring)


def run_rlvr(
    cfg: Config | None, resume: Path | None = None, overrides: Sequence[str] = (), wiring: Wiring = DEFAULT
) -> Path:
    """``gasp rlvr``: ``rlvr.updates`` GRPO updates on real problems."""
    return run(RLVR_RUN, cfg, resume, overrides, wiring)


def run_solver_verifier(
    cfg: Config | None, resume: Path | None = None, overrides: Sequence[str] = (), wiring: Wiring = DEFAULT
) -> Path:
    """``gasp solver-verifier``: ``solver_verifier.iterations`` Sol-Ver iterations."""
    return run(SOLVER_VERIFIER_RUN, cfg, resume, overrides, wiring)


def run_warmup(cfg: Config, wiring: Wiring = DEFAULT) -> Path:
    """``gasp warmup``: fine-tune (or find in the cache) the warmed weights of ``cfg``'s model."""
    from gasp_rl.algorithms.azr import load_seed_programs
    from gasp_rl.algorithms.warmup import warm_up
    from gasp_rl.eval.datasets import load_goalposts

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    policy, executor = wiring.policy(cfg), wiring.executor(cfg)
    try:
        if getattr(policy, "finetuner", None) is None or policy.learner is None:
            raise GaspError(
                f"model.backend={cfg.model.backend} has no in-process finetuner: warm-up needs hf"
            )
        res = warm_up(
            cfg,
            policy.learner,
            policy.finetuner,
            executor,
            load_goalposts(cfg.gasp.goalposts),
            load_seed_programs(executor, cfg.azr.n_seed_programs),
            cfg.model.name_or_path,
        )
        return res.path
    finally:
        executor.close()
        policy.close()
