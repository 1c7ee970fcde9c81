"""Seconds per phase of one default GASP iteration on the embedded model.

Runs ``gasp train`` with the default config (plus any ``key=value`` overrides given on the command
line) for one iteration into a temporary run directory and prints the time per phase from the
run's metrics record, and the share of the executor and the novelty filter.

    python benchmarks/iteration_time.py [key=value ...]     # e.g. gasp.iterations=4
    python benchmarks/iteration_time.py --run RUN_DIR       # the same figures for a finished run

Targets (issues 4 and 14), on a 2-core CPU: iterations that accept nothing < 20 s, those that accept
proposals < 90 s, mean < 60 s; executor + novelty < 10%.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from gasp_rl import _quiet
from gasp_rl.config import load_config
from gasp_rl.driver import run_training

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered


def main() -> None:
    args = sys.argv[1:]
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return
    if args[:1] == ["--run"]:  # a run made by `gasp train`: its records and config
        run = Path(args[1])
        cfg = load_config(str(run / "config.yaml"), [])
        records = _records(run)
        wall = None
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = load_config(None, [f"run.dir={tmp}/run", "gasp.iterations=1", *args])
            t0 = time.perf_counter()
            run = run_training(cfg)
            wall = time.perf_counter() - t0
            records = _records(Path(run))
    report(cfg, records, wall)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def report(cfg, records: list[dict], wall: float | None) -> None:
    g = cfg.generation
    print(
        f"mode {cfg.gasp.mode}, model {cfg.model.name_or_path}, temperature {g.temperature}, "
        f"max_new_tokens {g.max_new_tokens}, lemmas_per_step {cfg.gasp.lemmas_per_step}, "
        f"min_accepted {cfg.gasp.min_accepted}, max_attempts {cfg.gasp.max_attempts}, "
        f"n_student {cfg.gasp.n_student}, solver_samples {cfg.gasp.solver_samples}"
    )
    totals, shares, idle, busy = [], [], [], []
    for m in records:
        t = m["time"]
        total = t["total"]
        share = (t.get("exec", 0.0) + t.get("novelty", 0.0)) / total
        totals.append(total)
        shares.append(share)
        p = m["proposals"]
        (busy if p["accepted"] else idle).append(total)
        print(
            f"iteration {m['iteration']}: {total:.1f} s; "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(t.items()))
        )
        print(
            f"  executor {t.get('exec', 0.0):.2f} s + novelty {t.get('novelty', 0.0):.2f} s = "
            f"{100 * share:.1f}%; proposals {p['accepted']}/{p['attempted']} accepted {p['by_reason']}; "
            f"tokens {m.get('tokens')}"
        )
    print(
        f"per iteration: mean {sum(totals) / len(totals):.1f} s, max {max(totals):.1f} s over "
        f"{len(totals)} (target < 60 s); executor + novelty at most {100 * max(shares):.1f}% "
        f"(target < 10%)" + (f"; process wall incl. model load {wall:.1f} s" if wall is not None else "")
    )
    print(
        f"issue-14 targets: nothing accepted {_span(idle)} (target < 20 s); proposals accepted "
        f"{_span(busy)} (target < 90 s); mean {sum(totals) / len(totals):.1f} s (target < 60 s); "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )


def _span(times: list[float]) -> str:
    if not times:
        return "in no iteration"
    return f"in {len(times)}: {min(times):.1f}-{max(times):.1f} s"


if __name__ == "__main__":
    main()
