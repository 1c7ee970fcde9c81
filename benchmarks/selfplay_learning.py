"""Does self-play learn?  GASP vs AZR vs RLVR vs GASP + RL at equal wall-clock time, judged on
held-out code reasoning and on the goalposts.

1. One start checkpoint for everyone: the cold-start warm-up of the embedded model (``gasp
   warmup``, cached).
2. Each method trains from it for the same wall-clock budget (``run.max_minutes``; a run stops
   after the iteration in which the budget runs out, so budgets differ by at most one iteration).
3. The start and every method's last checkpoint are evaluated greedily on the held-out reasoning
   benchmark (``gasp eval eval.benchmark=reasoning``: held-out HumanEval solutions + held-out
   program families, >= 200 items) and at pass@k on demo goalposts.

Printed: one table (method, iterations, accepted proposals, held-out accuracy with its 95%
interval, change vs start with the 95% interval of the paired difference, goalposts solved) and a
PNG of held-out accuracy vs wall time (``--plot``).  Runs go to ``--out``; everything is resumable
at the granularity of a finished method (its run and evaluation files are reused).

    python benchmarks/selfplay_learning.py                       # 20 minutes per method
    python benchmarks/selfplay_learning.py --quick               # 3 minutes per method (smoke)
    python benchmarks/selfplay_learning.py --minutes 8 --methods gasp,azr
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from gasp_rl import _quiet
from gasp_rl.config import load_config
from gasp_rl.core.stats import paired_difference
from gasp_rl.runs import read_records

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered

METHODS = {
    "gasp": ["gasp.mode=gasp"],
    "azr": ["gasp.mode=azr"],
    "rlvr": [],
    "gasp_plus_rl": ["gasp.mode=gasp_plus_rl"],
}


def train(method: str, start: Path, minutes: float, out: Path, overrides: list[str]) -> Path:
    run_dir = out / method
    if (run_dir / "run.json").is_file() and json.loads((run_dir / "run.json").read_text()).get(
        "status"
    ) == "completed":
        return run_dir
    common = [
        f"model.name_or_path={start}",
        "warmup.enabled=false",
        f"run.dir={run_dir}",
        f"run.max_minutes={minutes}",
        "gasp.checkpoint_every=1000000",
        *overrides,
    ]
    if method == "rlvr":
        from gasp_rl.driver import run_rlvr

        cfg = load_config(None, [*common, "rlvr.updates=100000", "rlvr.checkpoint_every=1000000"])
        return run_rlvr(cfg)
    from gasp_rl.driver import run_training

    cfg = load_config(None, [*common, *METHODS[method], "gasp.iterations=100000"])
    return run_training(cfg)


def last_checkpoint(run_dir: Path) -> Path:
    from gasp_rl.eval.command import run_checkpoints

    found = run_checkpoints(run_dir)
    if not found:
        raise SystemExit(f"{run_dir} kept no checkpoint")
    return found[-1][1]


def evaluate(model: Path | str, name: str, out: Path, a: argparse.Namespace) -> dict[str, Any]:
    """Reasoning accuracy (+ per-item verdicts) and goalposts solved of one checkpoint."""
    from gasp_rl.eval.command import run_eval, target_of_path
    from gasp_rl.wiring import DEFAULT

    dest = out / "eval" / name
    label = target_of_path(str(model)).name
    res: dict[str, Any] = {}
    summary_file = dest / f"{label}__reasoning.json"
    if not summary_file.is_file():
        cfg = load_config(
            None, ["eval.benchmark=reasoning", *a.overrides] + ([f"eval.limit={a.items}"] if a.items else [])
        )
        run_eval(cfg, [], [str(model)], dest, DEFAULT)
    res["reasoning"] = json.loads(summary_file.read_text())
    res["verdicts"] = {
        r["item_id"]: r["correct"] for r in read_records(dest / f"{label}__reasoning.samples.jsonl")
    }
    gp_file = dest / f"{label}__goalposts.json"
    if a.goalposts and not gp_file.is_file():
        cfg = load_config(
            None,
            [
                "eval.benchmark=goalposts",
                f"eval.n={a.k}",
                f"eval.ks=[{a.k}]",
                "eval.greedy=false",
                f"eval.limit={a.goalposts}",
                f"eval.max_new_tokens={a.goalpost_tokens}",
                *a.overrides,
            ],
        )
        run_eval(cfg, [], [str(model)], dest, DEFAULT)
    res["goalposts"] = json.loads(gp_file.read_text()) if gp_file.is_file() else None
    return res


def run_stats(run_dir: Path) -> dict[str, Any]:
    metrics = list(read_records(run_dir / "metrics.jsonl"))
    accepted = sum((m.get("proposals") or {}).get("accepted", 0) for m in metrics)
    seconds = sum((m.get("time") or {}).get("total", 0.0) for m in metrics)
    meta = json.loads((run_dir / "run.json").read_text())
    return {
        "iterations": len(metrics),
        "accepted": accepted,
        "seconds": seconds,
        "stopped": meta.get("stopped"),
    }


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def table(rows: list[dict[str, Any]], start: dict[str, Any], n_goalposts: int) -> str:
    head = f"{'method':<13} {'iters':>5} {'accepted':>8} {'held-out acc % [95% CI]':>24} {'change vs start [95% CI]':>26} {'goalposts':>9}"
    lines = [head, "-" * len(head)]
    for r in [{"method": "start", "stats": None, "eval": start}, *rows]:
        acc = r["eval"]["reasoning"]["accuracy"]["all"]
        lo, hi = acc["ci95"]
        cell = f"{pct(acc['accuracy'])} [{pct(lo)}, {pct(hi)}]"
        if r["method"] == "start":
            change = "-"
            iters = accepted = "-"
        else:
            items = sorted(start["verdicts"])
            d = paired_difference(
                [r["eval"]["verdicts"][i] for i in items], [start["verdicts"][i] for i in items]
            )
            change = f"{100 * d['diff']:+.1f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}]"
            iters, accepted = str(r["stats"]["iterations"]), str(r["stats"]["accepted"])
            if r["method"] == "rlvr":
                accepted = "n/a"
        gp = r["eval"].get("goalposts")
        solved = "-" if gp is None else f"{gp['n_solved']}/{n_goalposts}"
        lines.append(f"{r['method']:<13} {iters:>5} {accepted:>8} {cell:>24} {change:>26} {solved:>9}")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], start: dict[str, Any], minutes: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = start["reasoning"]["accuracy"]["all"]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for r in rows:
        acc = r["eval"]["reasoning"]["accuracy"]["all"]
        xs, ys = [0.0, r["stats"]["seconds"] / 60], [s["accuracy"], acc["accuracy"]]
        (line,) = ax.plot(xs, [100 * y for y in ys], marker="o", label=r["method"])
        lo, hi = acc["ci95"]
        ax.errorbar(
            xs[-1],
            100 * ys[-1],
            yerr=[[100 * (ys[-1] - lo)], [100 * (hi - ys[-1])]],
            color=line.get_color(),
            capsize=4,
        )
    lo, hi = s["ci95"]
    ax.axhspan(100 * lo, 100 * hi, color="grey", alpha=0.15, label="start, 95% CI")
    ax.set_xlabel("training wall time (minutes)")
    ax.set_ylabel("held-out reasoning accuracy (%)")
    ax.set_title(f"Equal {minutes:g}-minute budgets from the warmed embedded model")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget per method")
    ap.add_argument("--quick", action="store_true", help="3 minutes per method, 60 items, 4 goalposts")
    ap.add_argument("--methods", default="gasp,azr,rlvr,gasp_plus_rl")
    ap.add_argument("--out", type=Path, default=Path("runs/selfplay_learning"))
    ap.add_argument("--plot", type=Path, default=Path("docs/selfplay_learning.png"))
    ap.add_argument("--items", type=int, default=0, help="reasoning items (0 = all)")
    ap.add_argument("--goalposts", type=int, default=16, help="demo goalposts evaluated at pass@k (0 = skip)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--goalpost-tokens", type=int, default=256)
    ap.add_argument("overrides", nargs="*", help="config overrides for training and evaluation")
    a = ap.parse_args()
    if a.quick:
        a.minutes, a.items, a.goalposts = 3.0, a.items or 60, min(a.goalposts, 4)
    a.out.mkdir(parents=True, exist_ok=True)
    from gasp_rl.driver import run_warmup

    t0 = time.perf_counter()
    start_ckpt = run_warmup(load_config(None, list(a.overrides)))
    print(f"start checkpoint (warm-up): {start_ckpt} ({time.perf_counter() - t0:.0f} s)", flush=True)
    start = evaluate(start_ckpt, "start", a.out, a)
    rows = []
    for method in a.methods.split(","):
        t1 = time.perf_counter()
        run_dir = train(method, start_ckpt, a.minutes, a.out, list(a.overrides))
        stats = run_stats(run_dir)
        ev = evaluate(last_checkpoint(run_dir), method, a.out, a)
        rows.append({"method": method, "stats": stats, "eval": ev})
        print(f"{method}: {stats} ({time.perf_counter() - t1:.0f} s with evaluation)", flush=True)
    text = table(rows, start, a.goalposts)
    print(
        f"\nEqual budgets of {a.minutes:g} min per method; held-out reasoning = "
        f"{start['reasoning']['n_items']} items (greedy); goalposts at pass@{a.k}.\n"
    )
    print(text)
    (a.out / "table.txt").write_text(text + "\n")
    plot(rows, start, a.minutes, a.plot)
    print(f"\nplot: {a.plot}")


if __name__ == "__main__":
    main()
