"""Goalpost progress of runs (method.md §7; the paper's Table 4 and Figure 5).

A goalpost counts as *solved* in a run if pass@k > 0 at an evaluated checkpoint OF THAT RUN, with
k = ``goalposts.k`` sampled answers as in goalpost identification: at least one of the checkpoint's
``n >= k`` samples passes.  A greedy answer does not count (identification never used one), a
checkpoint evaluated with fewer than k samples cannot show pass@k and is listed but not counted, and
the base model (``gasp eval --run`` evaluates it as ``base``, iteration 0) is not a checkpoint of the
run: what it solves is reported separately (``base_solved``), never as progress.  Each run is one
seed.  From the ``gasp eval eval.benchmark=goalposts`` results of every checkpoint this module
derives

- per checkpoint: pass@k and the goalposts solved there;
- per run (seed): the goalposts solved at any checkpoint and the iteration each was first solved;
- across runs: the union of solved goalposts and the earliest iteration over seeds;

and writes them as ``progress.json`` plus a plot (``progress.png`` / ``progress.svg``) of the
cumulative number solved against the training iteration, one line per seed and one for the union.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gasp_rl.errors import DataError
from gasp_rl.eval.runner import read_records

BENCHMARK = "goalposts"


def _run_seed(run_dir: Path, index: int) -> int | str:
    """The seed of a run (``run.json``), else its position in the list."""
    meta = run_dir / "run.json"
    if meta.is_file():
        try:
            seed = json.loads(meta.read_text(encoding="utf-8")).get("seed")
            if seed is not None:
                return seed
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            pass
    return index


#: The checkpoint name ``gasp eval --run`` gives the run's base model (not a checkpoint of the run).
BASE_CHECKPOINT = "base"


def checkpoint_results(eval_dir: Path, k: int, benchmark: str = BENCHMARK) -> list[dict[str, Any]]:
    """Every evaluated model of one run on ``benchmark``: its summary, the goalposts with pass@k > 0
    (``solved``: n >= k samples, at least one passing; greedy answers ignored), whether it counts
    as progress (``counted``: a checkpoint of the run, evaluated with at least k samples), ordered
    by iteration (results without an iteration are left out)."""
    out = []
    for f in sorted(eval_dir.glob(f"*__{benchmark}.json")):
        try:
            summary = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DataError(f"{f}: not a JSON evaluation summary") from None
        if summary.get("iteration") is None:
            continue
        records = read_records(eval_dir / summary["per_problem_file"])
        solved = sorted(pid for pid, r in records.items() if r.n >= k and r.c > 0)
        is_base = summary.get("checkpoint") == BASE_CHECKPOINT
        enough = min((r.n for r in records.values()), default=0) >= k
        note = "the base model, not a checkpoint of the run" if is_base else ""
        if not enough and not is_base:
            note = f"evaluated with fewer than k={k} samples: pass@{k} unknown"
        out.append(
            {
                **summary,
                "solved": solved,
                "problem_ids": sorted(records),
                "counted": not is_base and enough,
                "note": note,
            }
        )
    return sorted(out, key=lambda s: s["iteration"])


def run_progress(run_dir: Path, eval_dir: Path, index: int = 0, k: int = 100) -> dict[str, Any]:
    """Progress of one run (one seed): goalposts with pass@k > 0 at a checkpoint of the run."""
    checkpoints = checkpoint_results(eval_dir, k)
    first: dict[str, int] = {}
    for ck in checkpoints:
        if ck["counted"]:
            for pid in ck["solved"]:
                first.setdefault(pid, ck["iteration"])
    base = [ck for ck in checkpoints if ck["checkpoint"] == BASE_CHECKPOINT]
    return {
        "run": str(run_dir),
        "seed": _run_seed(run_dir, index),
        "k": k,
        "checkpoints": [
            {
                "checkpoint": ck["checkpoint"],
                "iteration": ck["iteration"],
                "pass_at_k": ck["pass_at_k"],
                "n_solved": len(ck["solved"]),
                "solved": ck["solved"],
                "counted": ck["counted"],
                **({"note": ck["note"]} if ck["note"] else {}),
            }
            for ck in checkpoints
            if ck["checkpoint"] != BASE_CHECKPOINT
        ],
        "base_solved": base[0]["solved"] if base else None,
        "n_goalposts": max((len(ck["problem_ids"]) for ck in checkpoints), default=0),
        "solved": sorted(first),
        "n_solved": len(first),
        "first_solve": dict(sorted(first.items())),
    }


def goalpost_progress(runs: Sequence[tuple[Path, Path]], k: int = 100) -> dict[str, Any]:
    """Progress of several runs (``(run_dir, eval_dir)`` pairs, one per seed) and their union, at
    pass@``k`` (``goalposts.k``)."""
    per_run = [run_progress(rd, ed, i, k) for i, (rd, ed) in enumerate(runs)]
    union: dict[str, int] = {}
    for r in per_run:
        for pid, it in r["first_solve"].items():
            union[pid] = min(it, union.get(pid, it))
    return {
        "benchmark": BENCHMARK,
        "k": k,
        "n_goalposts": max((r["n_goalposts"] for r in per_run), default=0),
        "runs": per_run,
        "union": {
            "n_solved": len(union),
            "solved": sorted(union),
            "first_solve": dict(sorted(union.items())),
        },
    }


def cumulative_curve(first_solve: dict[str, int], iterations: Sequence[int]) -> list[int]:
    """Number of goalposts first solved at or before each iteration."""
    return [sum(1 for it in first_solve.values() if it <= x) for x in iterations]


def plot_progress(progress: dict[str, Any], path_stem: Path) -> list[Path]:
    """Cumulative goalposts solved vs iteration (per seed and union) as PNG and SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    all_iters: set[int] = set()
    for r in progress["runs"]:
        iters = [c["iteration"] for c in r["checkpoints"]]
        all_iters.update(iters)
        if iters:
            ax.step(iters, cumulative_curve(r["first_solve"], iters), where="post", label=f"seed {r['seed']}")
    if len(progress["runs"]) > 1 and all_iters:
        xs = sorted(all_iters)
        ax.step(
            xs,
            cumulative_curve(progress["union"]["first_solve"], xs),
            where="post",
            color="black",
            linewidth=2,
            label="union",
        )
    ax.set_xlabel("training iteration")
    ax.set_ylabel(f"goalposts solved (of {progress['n_goalposts']})")
    ax.set_title(f"Goalpost progress (pass@{progress.get('k', 'k')} > 0 at a checkpoint so far)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    if all_iters:
        ax.legend()
    fig.tight_layout()
    paths = [path_stem.with_suffix(".png"), path_stem.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths


def write_goalpost_progress(
    runs: Sequence[tuple[Path, Path]], out_dir: Path | None = None, k: int = 100
) -> Path:
    """Write ``progress.json`` + plots into ``out_dir`` (default ``RUN/goalposts`` of a single run)."""
    if out_dir is None:
        if len(runs) != 1:
            raise ValueError("out_dir is required for several runs")
        out_dir = runs[0][0] / "goalposts"
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = goalpost_progress(runs, k)
    from gasp_rl.runs import write_json

    path = out_dir / "progress.json"
    write_json(path, progress)
    plot_progress(progress, out_dir / "progress")
    return path
