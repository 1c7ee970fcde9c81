"""RLVR smoke test on the embedded model: the training reward per GRPO update on the demo HumanEval
training half, side by side with the untouched base model on the very same batches.

Each update samples ``rlvr.batch_problems`` problems and ``rlvr.n`` completions each (defaults of the
``rlvr`` config section), grades them in the sandbox (reward 1 iff all tests pass) and, when some
group has mixed rewards, takes one GRPO step.  The reference is a second copy of the base model that
is never updated and samples the same problems with the same seeds: while the trained copy has not
changed (no update yet), both produce identical completions, so the reference is only generated
once the weights differ.  The ratio trained / base over the updates after the first step is what an
RL effect would move; with a 135M model and a handful of updates expect noise around 1 (and many
updates with no mixed group, hence no step at all).

    python benchmarks/rlvr_smoke.py [--updates 4] [key=value ...]     # e.g. trainer.lr=1e-5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass

from gasp_rl import _quiet
from gasp_rl.algorithms.rlvr import RLVRStepper, load_rlvr_problems
from gasp_rl.backends.factory import build_policy
from gasp_rl.config import load_config
from gasp_rl.runs import RunStore
from gasp_rl.seams import PolicySample
from gasp_rl.wiring import make_executor

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered


@dataclass
class FrozenLearner:
    """The reference never learns (its stepper still grades and computes advantages)."""

    def update(self, samples: list[PolicySample]) -> dict[str, float]:
        return {"skipped": 1.0}

    def save(self, path: object) -> None: ...

    def load(self, path: object) -> None: ...


def fmt(x: float | None) -> str:
    return "  n/a" if x is None else f"{x:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--updates", type=int, default=4)
    ap.add_argument("overrides", nargs="*", help="config overrides key=value")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rlvr-smoke-") as tmp:
        cfg = load_config(None, [f"run.dir={tmp}/run", f"rlvr.updates={args.updates}", *args.overrides])
        rc = cfg.rlvr
        problems = load_rlvr_problems(cfg)
        print(
            f"rlvr smoke: {len(problems)} problems ({rc.problems}), {args.updates} updates of "
            f"{rc.batch_problems} problems x {rc.n} completions, T={rc.temperature}, "
            f"max_new_tokens={rc.max_new_tokens}, lr={cfg.trainer.lr}, model={cfg.model.name_or_path}"
        )
        t_load = time.perf_counter()
        policy = build_policy(cfg)
        print(f"model loaded in {time.perf_counter() - t_load:.1f}s")
        reference = None
        executor = make_executor(cfg)
        store = RunStore.create(cfg, "rlvr")
        trained = RLVRStepper(
            cfg, policy.generator, policy.learner, executor, problems, sync=getattr(policy, "sync", None)
        )
        ref_stepper = None
        changed = False  # has the trained copy taken a step yet?
        curve: list[tuple[float, float, bool]] = []  # (trained, base, weights differed)
        try:
            for u in range(args.updates):
                m = trained.step(u, store)
                if changed:
                    if reference is None:
                        reference = build_policy(cfg)
                        ref_stepper = RLVRStepper(
                            cfg, reference.generator, FrozenLearner(), executor, problems
                        )
                    base = ref_stepper.step(u)["reward_mean"]
                    note = "base model regenerated"
                else:
                    base = m["reward_mean"]
                    note = "weights unchanged so far: base = trained"
                curve.append((m["reward_mean"], base, changed))
                stepped = "loss" in m["learner"]
                t = m["time"]
                print(
                    f"update {u + 1}/{args.updates}: train reward {m['reward_mean']:.3f} "
                    f"(solved {m['problems_solved']}/{m['n_problems']} problems, "
                    f"{m['groups_mixed']} mixed groups -> {'step' if stepped else 'no step'}) | "
                    f"base {base:.3f} ({note}) | gen {t['generate']:.0f}s exec {t['exec']:.1f}s "
                    f"update {t['update']:.0f}s | {', '.join(m['problem_ids'])}",
                    flush=True,
                )
                changed = changed or stepped
        finally:
            executor.close()
            store.close("completed")
            policy.close()
            if reference is not None:
                reference.close()
    print(f"train reward per update: {' '.join(fmt(tr) for tr, _, _ in curve)}")
    print(f"base  reward per update: {' '.join(fmt(b) for _, b, _ in curve)}")
    summary("all updates", curve)
    differed = [c for c in curve if c[2]]
    if differed:
        summary("updates after the first step", differed)
    else:
        print("no update had a mixed group before the last one: the policy never changed before sampling")


def summary(label: str, rows: list[tuple[float, float, bool]]) -> None:
    mean_tr = sum(r[0] for r in rows) / len(rows)
    mean_b = sum(r[1] for r in rows) / len(rows)
    ratio = mean_tr / mean_b if mean_b > 0 else None
    print(
        f"{label} ({len(rows)}): mean train reward {mean_tr:.3f}, base model on the same batches {mean_b:.3f}, ratio {fmt(ratio)}"
    )


if __name__ == "__main__":
    main()
