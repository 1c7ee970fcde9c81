"""``gasp eval``: pass@k of a model, of every checkpoint of one or more runs, or of an endpoint.

Targets
-------
``gasp eval [cfg] [k=v ...]``                 the model of ``model.name_or_path`` (or the
                                               OpenAI-compatible endpoint of ``model.backend``)
``gasp eval --checkpoint DIR [--checkpoint ...]``  those checkpoints / model paths
``gasp eval --run RUN [--run ...]``            the base model of each run as iteration 0 (unless
                                               ``eval.include_base=false``) and every
                                               ``RUN/checkpoints/iter_NNNNNN``

Outputs (``--out`` or ``RUN/eval`` or ``eval-out``)
---------------------------------------------------
``<checkpoint>__<benchmark>.json``            summary: {checkpoint, iteration, benchmark, model, n,
                                               temperature, ks, pass_at_k {"1": ..}, greedy_pass_at_1,
                                               n_problems, n_solved, per_problem_file, ...}
``<checkpoint>__<benchmark>.samples.jsonl``   per-problem records (resume from here)
``selection.json`` (runs)                     best checkpoint per benchmark by ``eval.select_by``

With ``eval.benchmark=goalposts`` the goalpost progress of the runs (solved per seed, union,
first solve) is written too, see :mod:`gasp_rl.eval.progress`.
"""

from __future__ import annotations

import gc
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gasp_rl.config import Config
from gasp_rl.core.tasks import Problem
from gasp_rl.errors import GaspError
from gasp_rl.eval.datasets import load_benchmark
from gasp_rl.eval.grading import grading_limits
from gasp_rl.eval.runner import EvalOutcome, EvalRunner, EvalSettings, read_records
from gasp_rl.runs import write_json
from gasp_rl.seams import Chat, Completion, Executor, Generator, SamplingParams, SeamSource

_ITER_DIR = re.compile(r"^iter_(\d+)$")


# ------------------------------------------------------------------------------ targets


@dataclass(frozen=True)
class Target:
    """One model to evaluate: a display name, its training iteration (if known), where it loads from."""

    name: str
    model: str
    iteration: int | None = None
    run_dir: Path | None = None


def run_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """``(iteration, path)`` of every ``RUN/checkpoints/iter_NNNNNN`` directory, by iteration."""
    found = []
    for p in (run_dir / "checkpoints").glob("iter_*"):
        m = _ITER_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    return sorted(found)


def run_base_model(run_dir: Path, default: str) -> str:
    """The model a run started from (its resolved ``config.yaml``), else ``default``."""
    cfg_file = run_dir / "config.yaml"
    if not cfg_file.is_file():
        return default
    from gasp_rl.runs import load_run_config

    return load_run_config(run_dir).model.name_or_path


def targets_of_run(run_dir: Path, cfg: Config) -> list[Target]:
    if not run_dir.is_dir():
        raise GaspError(f"run directory {run_dir} does not exist")
    targets = []
    if cfg.eval.include_base:
        targets.append(Target("base", run_base_model(run_dir, cfg.model.name_or_path), 0, run_dir))
    targets += [Target(p.name, str(p), it, run_dir) for it, p in run_checkpoints(run_dir)]
    if not targets:
        raise GaspError(f"run {run_dir} has no checkpoints/iter_* and eval.include_base is false")
    return targets


def target_name(model: str) -> str:
    """A file-name-safe label for a checkpoint path or model id (``runs/x/checkpoints/iter_000004``
    -> ``iter_000004``)."""
    base = Path(model.rstrip("/")).name or model
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-") or "model"


def target_of_path(model: str) -> Target:
    m = _ITER_DIR.match(Path(model.rstrip("/")).name)
    return Target(target_name(model), model, int(m.group(1)) if m else None)


# ------------------------------------------------------------------------------ wiring


def build_generator(cfg: Config, model: str, wiring: SeamSource) -> Any:
    """The policy for ``model`` (a path, model id or endpoint model name) from the wiring:
    a :class:`~gasp_rl.seams.Generator`, or a bundle holding one as ``.generator``."""
    return wiring.policy(cfg, model)


class LazyGenerator:
    """Builds the policy on first use, so a fully resumed evaluation never loads a model."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._policy: Any = None

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        if self._policy is None:
            self._policy = self._factory()
        generator: Generator = getattr(self._policy, "generator", self._policy)
        return generator.generate(prompts, params)

    def close(self) -> None:
        """Drop the model (and its memory) before the next checkpoint is loaded."""
        if self._policy is not None and hasattr(self._policy, "close"):
            self._policy.close()
        self._policy = None
        gc.collect()


def build_executor(cfg: Config, problems: list[Problem], wiring: SeamSource) -> Executor:
    """The sandbox, from the wiring.  (Each grading job carries its own input-size limit, the
    benchmark's test data plus ``sandbox.max_input_bytes``: :func:`gasp_rl.eval.grading.grading_limits`.)"""
    return wiring.executor(cfg)


def eval_settings(cfg: Config) -> EvalSettings:
    e = cfg.eval
    return EvalSettings(
        n=e.n,
        ks=tuple(e.ks),
        temperature=e.temperature,
        top_p=e.top_p,
        max_new_tokens=e.max_new_tokens,
        greedy=e.greedy,
        seed=cfg.run.seed,
    )


def load_eval_problems(cfg: Config) -> list[Problem]:
    e = cfg.eval
    return load_benchmark(
        e.benchmark,
        e.path,
        release_version=e.release_version,
        start_date=e.start_date,
        end_date=e.end_date,
        limit=e.limit,
    )


# ------------------------------------------------------------------------------ summaries


def summary_record(
    target: Target, benchmark: str, settings: EvalSettings, outcome: EvalOutcome, samples_file: Path
) -> dict[str, Any]:
    """The ``<checkpoint>__<benchmark>.json`` content."""
    return {
        "checkpoint": target.name,
        "iteration": target.iteration,
        "model": target.model,
        "benchmark": benchmark,
        "n": settings.n,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "max_new_tokens": settings.max_new_tokens,
        "ks": list(settings.ks),
        "pass_at_k": {str(k): v for k, v in outcome.pass_at_k.items()},
        "greedy_pass_at_1": outcome.greedy_pass_at_1,
        "n_problems": outcome.n_problems,
        "n_solved": len(outcome.solved),
        "per_problem_file": samples_file.name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def select_checkpoint(summaries: list[dict[str, Any]], select_by: str) -> dict[str, Any]:
    """The best checkpoint by pass@1 or by pass@k (largest k evaluated); ties go to the earlier one."""
    if not summaries:
        raise GaspError("no evaluated checkpoint to select from")
    k = "1" if select_by == "pass@1" else str(max(summaries[0]["ks"]))
    cands = [
        {"checkpoint": s["checkpoint"], "iteration": s["iteration"], "value": s["pass_at_k"][k]}
        for s in summaries
    ]
    best = max(enumerate(cands), key=lambda ic: (ic[1]["value"], -ic[0]))[1]
    return {"select_by": select_by, "metric": f"pass@{k}", "best": best, "candidates": cands}


def summary_table(summaries: list[dict[str, Any]], title: str) -> Table:
    """The rich table printed after an evaluation (one row per checkpoint; the benchmark is in the
    title, since one ``gasp eval`` evaluates one benchmark)."""
    ks = sorted({k for s in summaries for k in s["ks"]})
    table = Table(title=title)
    table.add_column("checkpoint")
    for col in ("iter", "problems", "n", *(f"pass@{k}" for k in ks), "greedy pass@1"):
        table.add_column(col, justify="right", no_wrap=True)
    for s in summaries:
        cells = [
            s["checkpoint"],
            "-" if s["iteration"] is None else str(s["iteration"]),
            str(s["n_problems"]),
            str(s["n"]),
        ]
        cells += [_pct(s["pass_at_k"].get(str(k))) for k in ks]
        cells.append(_pct(s["greedy_pass_at_1"]))
        table.add_row(*cells)
    return table


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


# ------------------------------------------------------------------------------ the command


def evaluate_with(
    cfg: Config,
    target: Target,
    problems: list[Problem],
    executor: Executor,
    samples_file: Path,
    settings: EvalSettings,
    console: Console,
    wiring: SeamSource,
) -> EvalOutcome:
    """Run ``target`` on ``problems`` with resumable records in ``samples_file``.  The model is
    only loaded if some problem still needs answers, and released afterwards."""
    gen = LazyGenerator(lambda: build_generator(cfg, target.model, wiring))
    runner = EvalRunner(
        gen, executor, settings, limits_for=grading_limits(cfg), chunk_problems=cfg.eval.chunk_problems
    )
    done = len(read_records(samples_file))
    console.print(
        f"[bold]{target.name}[/] ({target.model}): {len(problems)} problems, n={settings.n}"
        + (f", resuming after {done}" if done else ""),
        highlight=False,
    )
    t0 = time.monotonic()

    def progress(k: int, total: int, partial: EvalOutcome) -> None:
        scores = ", ".join(f"pass@{kk} {100 * v:.1f}%" for kk, v in partial.pass_at_k.items())
        console.print(f"  {k}/{total} problems  {scores}  ({time.monotonic() - t0:.0f}s)", highlight=False)

    try:
        return runner.run(problems, samples_file, progress)
    finally:
        gen.close()


def evaluate_target(
    cfg: Config,
    target: Target,
    problems: list[Problem],
    executor: Executor,
    out_dir: Path,
    console: Console,
    wiring: SeamSource,
) -> dict[str, Any]:
    """Evaluate one target on the configured benchmark, write and return its summary."""
    settings = eval_settings(cfg)
    bench = cfg.eval.benchmark
    samples_file = out_dir / f"{target.name}__{bench}.samples.jsonl"
    outcome = evaluate_with(cfg, target, problems, executor, samples_file, settings, console, wiring)
    summary = summary_record(target, bench, settings, outcome, samples_file)
    write_json(out_dir / f"{target.name}__{bench}.json", summary)
    return summary


def run_eval(
    cfg: Config, run_dirs: list[Path], checkpoints: list[str], out: Path | None, wiring: SeamSource
) -> list[dict[str, Any]]:
    """Entry point of ``gasp eval`` (see the module docstring); ``wiring`` builds the policy of
    each target and the sandbox (:class:`gasp_rl.wiring.Wiring`).  Returns the summaries."""
    from gasp_rl.eval.reasoning import REASONING_BENCHMARKS

    if cfg.eval.benchmark in REASONING_BENCHMARKS:
        return run_reasoning_eval(cfg, run_dirs, checkpoints, out, wiring)
    console = Console(stderr=True)
    problems = load_eval_problems(cfg)
    eval_settings(cfg)  # validates ks against n before any model is loaded
    plan = eval_plan(cfg, run_dirs, checkpoints, out)
    summaries: list[dict[str, Any]] = []
    executor = build_executor(cfg, problems, wiring)
    try:
        for target, out_dir in plan:
            summaries.append(evaluate_target(cfg, target, problems, executor, out_dir, console, wiring))
    finally:
        executor.close()
    for rd in run_dirs:
        rd = Path(rd)
        mine = [s for (t, _), s in zip(plan, summaries) if t.run_dir == rd]
        sel_file = run_eval_dir(rd, out, len(run_dirs)) / "selection.json"
        sel = _read_json(sel_file)
        sel[cfg.eval.benchmark] = select_checkpoint(mine, cfg.eval.select_by)
        write_json(sel_file, sel)
        best = sel[cfg.eval.benchmark]["best"]
        console.print(
            f"{rd}: best checkpoint by {cfg.eval.select_by}: {best['checkpoint']} ({100 * best['value']:.2f}%)",
            highlight=False,
        )
    if cfg.eval.benchmark == "goalposts" and run_dirs:
        from gasp_rl.eval.progress import write_goalpost_progress

        runs = [(Path(rd), run_eval_dir(Path(rd), out, len(run_dirs))) for rd in run_dirs]
        dest = write_goalpost_progress(
            runs, None if len(runs) == 1 else (out or Path("goalpost-progress")), k=cfg.goalposts.k
        )
        if cfg.eval.n < cfg.goalposts.k:
            console.print(
                f"[yellow]eval.n={cfg.eval.n} < goalposts.k={cfg.goalposts.k}: no checkpoint can show "
                f"pass@{cfg.goalposts.k}, so none counts as goalpost progress[/]",
                highlight=False,
            )
        console.print(f"goalpost progress: {dest}", highlight=False)
    Console().print(summary_table(summaries, f"gasp eval: {cfg.eval.benchmark}"))
    return summaries


def eval_plan(
    cfg: Config, run_dirs: list[Path], checkpoints: list[str], out: Path | None
) -> list[tuple[Target, Path]]:
    """(target, output directory) of every model ``gasp eval`` was asked about."""
    plan: list[tuple[Target, Path]] = []
    for rd in run_dirs:
        rd = Path(rd)
        plan += [(t, run_eval_dir(rd, out, len(run_dirs))) for t in targets_of_run(rd, cfg)]
    plan += [(target_of_path(c), out or Path("eval-out")) for c in checkpoints]
    if not plan:
        plan = [(target_of_path(cfg.model.name_or_path), out or Path("eval-out"))]
    return plan


def run_reasoning_eval(
    cfg: Config, run_dirs: list[Path], checkpoints: list[str], out: Path | None, wiring: SeamSource
) -> list[dict[str, Any]]:
    """``gasp eval`` on a held-out code-reasoning benchmark (:mod:`gasp_rl.eval.reasoning`):
    accuracy with a 95% interval per target, overall and per task type."""
    from gasp_rl.eval.reasoning import evaluate_reasoning, load_reasoning_items

    console = Console(stderr=True)
    bench = cfg.eval.benchmark
    summaries = []
    executor = wiring.executor(cfg)
    try:
        items = load_reasoning_items(bench, executor, cfg.eval.path, cfg.eval.limit, seed=0)
        for target, out_dir in eval_plan(cfg, run_dirs, checkpoints, out):
            console.print(f"[bold]{target.name}[/] ({target.model}): {len(items)} items", highlight=False)
            t0 = time.monotonic()
            gen = LazyGenerator(lambda t=target: build_generator(cfg, t.model, wiring))
            try:
                outcome = evaluate_reasoning(gen, executor, items, cfg.eval.reasoning_max_new_tokens)
            finally:
                gen.close()
            summary = {
                "checkpoint": target.name,
                "iteration": target.iteration,
                "model": target.model,
                "benchmark": bench,
                "greedy": True,
                "n_items": len(items),
                "accuracy": outcome.summary(),
                "seconds": round(time.monotonic() - t0, 1),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            from gasp_rl.core.tasks import write_jsonl

            write_jsonl(
                out_dir / f"{target.name}__{bench}.samples.jsonl",
                [
                    {"item_id": i, "task_type": outcome.types[i], "correct": c, "answer": outcome.answers[i]}
                    for i, c in outcome.correct.items()
                ],
            )
            write_json(out_dir / f"{target.name}__{bench}.json", summary)
            summaries.append(summary)
    finally:
        executor.close()
    Console().print(reasoning_table(summaries, f"gasp eval: {bench} (greedy accuracy, 95% interval)"))
    return summaries


def reasoning_table(summaries: list[dict[str, Any]], title: str) -> Table:
    types = sorted({t for s in summaries for t in s["accuracy"] if t != "all"})
    table = Table(title=title)
    table.add_column("checkpoint")
    for col in ("iter", "items", "all", *types):
        table.add_column(col, justify="right", no_wrap=True)

    def cell(a: dict[str, Any] | None) -> str:
        if not a or a["accuracy"] is None:
            return "-"
        lo, hi = a["ci95"]
        return f"{100 * a['accuracy']:.1f}% [{100 * lo:.0f}, {100 * hi:.0f}]"

    for s in summaries:
        acc = s["accuracy"]
        row = [s["checkpoint"], "-" if s["iteration"] is None else str(s["iteration"]), str(s["n_items"])]
        table.add_row(*row, cell(acc.get("all")), *(cell(acc.get(t)) for t in types))
    return table


def run_eval_dir(run_dir: Path, out: Path | None, n_runs: int) -> Path:
    """Where a run's results go: ``RUN/eval``, or ``--out`` (``--out/<run name>`` for several runs,
    whose checkpoint names would otherwise collide)."""
    if out is None:
        return run_dir / "eval"
    return out / run_dir.name if n_runs > 1 else out


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
