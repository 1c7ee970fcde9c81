"""Goalpost identification (method.md §7): real training questions that no model stage can solve.

``gasp goalposts`` samples ``k`` answers (``goalposts.k``, 100 by default; a small k such as 8 for
the CPU demo) for every question of the training split (``goalposts.split``) under each *stage* in
order -- ``goalposts.stages`` (``base`` = ``model.name_or_path``, or checkpoint paths) then every
``--checkpoint`` -- and keeps the questions with zero passing answers at every stage (pass@k = 0).
A stage only evaluates the questions still unsolved after the stages before it.

Resumable per stage: each stage's per-question records go to ``<output stem>.stages/`` next to the
output file and a rerun skips what is already there.  Outputs:

``<output>``               JSONL of :class:`~gasp_rl.core.tasks.Problem` dicts, each with
                           ``meta["goalpost"] = {"k", "stages": [{"stage", "model", "n", "c"}]}``
``<output stem>.summary.json``  per-stage counts and each question's passes per stage

:func:`load_goalposts` reads such a file; ``builtin:humaneval-demo`` is the file shipped in
``gasp_rl/data`` (made by running this pipeline on the embedded model over ``humaneval-train``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.console import Console

from gasp_rl.config import Config
from gasp_rl.core.tasks import Problem, write_jsonl
from gasp_rl.errors import GaspError
from gasp_rl.eval.command import (
    Target,
    build_executor,
    evaluate_with,
    target_name,
    write_json,
)
from gasp_rl.eval.datasets import (  # noqa: F401 - the goalpost files are read in datasets
    BUILTIN_GOALPOSTS,
    DATA_DIR,
    DEMO_COMMAND,
    goalpost_path,
    iter_jsonl,
    load_benchmark,
    load_goalposts,
)
from gasp_rl.eval.runner import EvalSettings
from gasp_rl.seams import SeamSource

# ------------------------------------------------------------------------------ the pipeline


def goalpost_settings(cfg: Config) -> EvalSettings:
    g = cfg.goalposts
    return EvalSettings(
        n=g.k,
        ks=(g.k,),
        temperature=g.temperature,
        top_p=cfg.eval.top_p,
        max_new_tokens=g.max_new_tokens,
        greedy=False,
        seed=cfg.run.seed,
    )


def stage_targets(cfg: Config, checkpoints: list[str]) -> list[Target]:
    """The filter stages in order: ``goalposts.stages`` then the ``--checkpoint`` arguments."""
    targets = []
    for i, s in enumerate([*cfg.goalposts.stages, *checkpoints]):
        model = cfg.model.name_or_path if s == "base" else s
        name = "base" if s == "base" else target_name(s)
        targets.append(Target(f"stage{i}_{name}", model))
    if not targets:
        raise GaspError("no goalpost stages: set goalposts.stages or give --checkpoint")
    return targets


def run_goalposts(cfg: Config, checkpoints: list[str], out: Path | None, wiring: SeamSource) -> list[Problem]:
    """Entry point of ``gasp goalposts`` (see the module docstring); ``wiring`` builds each stage's
    policy and the sandbox.  Returns the goalposts."""
    console = Console(stderr=True)
    g = cfg.goalposts
    out = Path(out or g.output)
    work = out.with_name(out.name.split(".")[0] + ".stages")
    problems = load_benchmark(g.split, g.path, limit=g.limit)
    settings = goalpost_settings(cfg)
    stages = stage_targets(cfg, checkpoints)
    remaining = list(problems)
    passes: dict[str, dict[str, int]] = {p.problem_id: {} for p in problems}
    stage_rows: list[dict[str, Any]] = []
    executor = build_executor(cfg, problems, wiring)
    try:
        for target in stages:
            if not remaining:
                console.print(f"{target.name}: nothing left to filter", highlight=False)
                break
            outcome = evaluate_with(
                cfg, target, remaining, executor, work / f"{target.name}.jsonl", settings, console, wiring
            )
            for rec in outcome.records:
                passes[rec.problem_id][target.name] = rec.c
            kept = [p for p, rec in zip(remaining, outcome.records) if rec.c == 0]
            stage_rows.append(
                {
                    "stage": target.name,
                    "model": target.model,
                    "evaluated": len(remaining),
                    "solved": len(remaining) - len(kept),
                    "kept": len(kept),
                }
            )
            console.print(
                f"{target.name}: {len(remaining) - len(kept)} of {len(remaining)} solved at pass@{g.k}, "
                f"{len(kept)} remain",
                highlight=False,
            )
            remaining = kept
    finally:
        executor.close()
    goalposts = [_with_stage_meta(p, stages, g.k, passes[p.problem_id]) for p in remaining]
    write_jsonl(out, goalposts)
    summary = {
        "split": g.split,
        "k": g.k,
        "temperature": g.temperature,
        "max_new_tokens": g.max_new_tokens,
        "n_candidates": len(problems),
        "n_goalposts": len(goalposts),
        "stages": stage_rows,
        "passes": passes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(out.with_name(out.name.split(".")[0] + ".summary.json"), summary)
    Console().print(
        f"{len(goalposts)} goalposts of {len(problems)} {g.split} questions (pass@{g.k} = 0 at "
        f"{len(stage_rows)} stage(s)) -> {out}",
        highlight=False,
    )
    return goalposts


def _with_stage_meta(problem: Problem, stages: list[Target], k: int, passes: dict[str, int]) -> Problem:
    meta = dict(problem.meta)
    meta["goalpost"] = {
        "k": k,
        "stages": [
            {"stage": t.name, "model": t.model, "n": k, "c": passes[t.name]}
            for t in stages
            if t.name in passes
        ],
    }
    d = problem.to_dict()
    d["meta"] = meta
    return Problem.from_dict(d)
