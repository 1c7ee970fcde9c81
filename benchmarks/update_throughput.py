"""One learner update of 8 sequences x 384 tokens (128 prompt + 256 completion) on the embedded model.

Prints tokens/s and the process's peak memory for gasp-rl's default (bf16 autocast, micro-batches
of 2) side by side with the references measured in the same run: float32 with micro-batches of 2,
and bf16 with the whole batch in one pass (micro-batch 8).  Each configuration runs in its own
child process so that its peak resident memory is its own; the second of two updates is timed (the
first also allocates the AdamW state).  Target (issue 3): peak memory under 5 GB.

    python benchmarks/update_throughput.py [--seqs 8] [--prompt 128] [--completion 256]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time

CONFIGS = [
    ("ours: bf16 autocast, micro-batch 2", {"bf16_autocast": True, "micro_batch_size": 2}),
    ("ref: float32, micro-batch 2", {"bf16_autocast": False, "micro_batch_size": 2}),
    ("ref: bf16 autocast, micro-batch 8", {"bf16_autocast": True, "micro_batch_size": 8}),
]


def child(settings: dict, seqs: int, prompt: int, completion: int) -> dict:
    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.config import Config
    from gasp_rl.seams import PolicySample

    cfg = Config()
    cfg.trainer.lr = 1e-6
    for k, v in settings.items():
        setattr(cfg.trainer, k, v)
    policy = HFPolicy.from_config(cfg)
    rng = random.Random(0)
    vocab = policy.model.config.vocab_size
    samples = [
        PolicySample(
            prompt_token_ids=[rng.randrange(100, vocab) for _ in range(prompt)],
            completion_token_ids=[rng.randrange(100, vocab) for _ in range(completion)],
            advantage=1.0 if i % 2 == 0 else -1.0,
        )
        for i in range(seqs)
    ]
    policy.update(samples)  # allocates the optimizer state
    t0 = time.perf_counter()
    metrics = policy.update(samples)
    elapsed = time.perf_counter() - t0
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return {
        "seconds": elapsed,
        "tokens_per_s": seqs * (prompt + completion) / elapsed,
        "peak_gb": peak_gb,
        "grad_norm": metrics["grad_norm"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seqs", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--completion", type=int, default=256)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.seqs, args.prompt, args.completion)))
        return
    tokens = args.seqs * (args.prompt + args.completion)
    print(
        f"update of {args.seqs} x {args.prompt + args.completion} tokens ({tokens} tokens), embedded SmolLM2-135M"
    )
    results = {}
    for name, settings in CONFIGS:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            json.dumps(settings),
            "--seqs",
            str(args.seqs),
            "--prompt",
            str(args.prompt),
            "--completion",
            str(args.completion),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        results[name] = r
        print(f"{name:<38} {r['seconds']:6.1f} s  {r['tokens_per_s']:6.1f} tok/s  peak {r['peak_gb']:.2f} GB")
    ours = results[CONFIGS[0][0]]
    for name, _ in CONFIGS[1:]:
        ref = results[name]
        print(
            f"ours vs {name[5:]}: {ref['seconds'] / ours['seconds']:.2f}x faster, "
            f"{ours['peak_gb'] / ref['peak_gb']:.2f}x the peak memory"
        )
    verdict = "meets" if ours["peak_gb"] < 5.0 else "MISSES"
    print(f"peak memory {ours['peak_gb']:.2f} GB {verdict} the < 5 GB target")


if __name__ == "__main__":
    main()
