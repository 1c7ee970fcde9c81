"""What the cold-start warm-up buys on the embedded model: proposal validity and learnability.

Samples ``--prompts`` lemma proposals (random goalpost + axis, the run's prefill, temperature and
token budget) and validates them exactly as a run does (parse, safety, sandbox execution,
determinism); each valid lemma gets ``gasp.n_student`` student induction attempts, and the
printout counts how many land in the lemma band and how many valid ones are *distinct* (not within
the run's novelty threshold of an earlier one: what a run's novelty filter would let through).  Then it runs the warm-up (ignoring the cache)
and measures again, on the same prompts and seeds, side by side (``--retrain`` ignores a cached
warm-up; its fine-tune time is printed either way).

    python benchmarks/warmup_effect.py                 # 32 prompts, default warm-up
    python benchmarks/warmup_effect.py --prompts 8 warmup.demos.lemma=8   # quick look
"""

from __future__ import annotations

import argparse
import random
import time

from gasp_rl import _quiet
from gasp_rl.algorithms.azr import load_seed_programs
from gasp_rl.algorithms.selfplay import Candidate, SelfPlayKit
from gasp_rl.algorithms.warmup import warm_up
from gasp_rl.config import load_config
from gasp_rl.core import prompts
from gasp_rl.core.novelty import VectorBuffer
from gasp_rl.core.rewards import in_band, pass_rate
from gasp_rl.eval.goalposts import load_goalposts
from gasp_rl.wiring import DEFAULT

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered


def distinct(kit: SelfPlayKit, codes: list[str], threshold: float) -> int:
    """How many programs are not near-duplicates (code cosine > ``threshold``, the novelty test of a
    run) of an earlier one in the list: the diversity a run's novelty filter would let through."""
    kept = VectorBuffer()
    for v in kit.embedder.embed(codes) if codes else []:
        if len(kept) == 0 or kept.max_similarity(v[None, :])[0] <= threshold:
            kept.add(v[None, :])
    return len(kept)


def measure(kit: SelfPlayKit, cfg, goalposts, n: int, seed: int) -> dict:
    g = cfg.gasp
    rng = random.Random(seed)
    n_io = g.n_public_io + g.n_private_io
    cands, chats = [], []
    for j in range(n):
        gp, axis = rng.choice(goalposts), rng.choice(prompts.AXES)
        chats.append(prompts.lemma_prompt(gp.prompt, axis, n_io))
        cands.append(
            Candidate(f"probe-{j}", 0, "lemma", 0, completion=None, goalpost_id=gp.problem_id, axis=axis)
        )  # type: ignore[arg-type]
    t0 = time.perf_counter()
    outs = kit.sample(chats, "lemma", 1, cfg.generation.max_new_tokens, seed=seed, prefill=g.proposal_prefill)
    for c, o in zip(cands, outs):
        c.completion = o[0]
    kit.validate(cands, n_io, novelty=True)
    valid = [c for c in cands if c.valid]
    results = kit.attempt(
        [(c.task, "induction") for c in valid], g.n_student, cfg.generation.max_new_tokens, seed, rng
    )
    rates = [pass_rate(p) for *_, p in results]
    reasons: dict[str, int] = {}
    for c in cands:
        if not c.valid:
            reasons[c.rejection_reason or "?"] = reasons.get(c.rejection_reason or "?", 0) + 1
    return {
        "valid": len(valid),
        "in_band": sum(in_band(p, g.lemma_band) for p in rates),
        "distinct": distinct(kit, [c.task.code for c in valid], g.novelty_threshold),
        "pass_rates": [round(p, 2) for p in rates],
        "families": sorted({c.task.code.splitlines()[1].strip()[:40] for c in valid}),
        "rejected": reasons,
        "seconds": time.perf_counter() - t0,
    }


def report(name: str, r: dict, n: int) -> None:
    print(
        f"{name}: valid {r['valid']}/{n} ({r['distinct']} distinct), in the lemma band {r['in_band']}/{n}, "
        f"{r['seconds']:.0f} s",
        flush=True,
    )
    print(f"  rejected {r['rejected']}", flush=True)
    print(f"  pass rates of the valid ones {r['pass_rates']}", flush=True)
    print(f"  programs {r['families'][:12]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--retrain", action="store_true", help="fine-tune again even if the warm-up is cached")
    ap.add_argument("overrides", nargs="*")
    a = ap.parse_args()
    cfg = load_config(None, [*a.overrides, *(["warmup.cache=false"] if a.retrain else [])])
    policy, executor = DEFAULT.policy(cfg), DEFAULT.executor(cfg)
    embedder = DEFAULT.embedder(cfg, policy)
    kit = SelfPlayKit(cfg, policy.generator, policy.learner, executor, embedder)
    goalposts = load_goalposts(cfg.gasp.goalposts)
    n = a.prompts
    before = measure(kit, cfg, goalposts, n, a.seed)
    report("before", before, n)
    t0 = time.perf_counter()
    res = warm_up(
        cfg,
        policy.learner,
        policy.finetuner,
        executor,
        goalposts,
        load_seed_programs(executor, cfg.azr.n_seed_programs),
        cfg.model.name_or_path,
    )
    warm_s = time.perf_counter() - t0
    after = measure(kit, cfg, goalposts, n, a.seed)
    m = res.metrics
    print(
        f"warm-up: {m.get('examples')} demonstrations, {m.get('steps')} steps, "
        f"loss {m.get('loss_first')} -> {m.get('loss_last')}, {warm_s:.0f} s (demonstrations {m.get('demonstrations')})"
    )
    print(f"{'':>8} {'valid':>9} {'distinct':>9} {'in band':>9} {'sample s':>9}  rejected")
    for name, r in (("before", before), ("after", after)):
        print(
            f"{name:>8} {r['valid']:>4}/{n:<4} {r['distinct']:>4}/{n:<4} {r['in_band']:>4}/{n:<4} "
            f"{r['seconds']:>9.1f}  {r['rejected']}"
        )
        print(f"{'':>8} pass rates {r['pass_rates']}")
        print(f"{'':>8} programs {r['families'][:12]}")
    executor.close()
    policy.close()


if __name__ == "__main__":
    main()
