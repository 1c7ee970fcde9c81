"""One learner update of 8 sequences x 384 tokens (128 prompt + 256 completion) on the embedded model.

Prints tokens/s and the process's peak memory, side by side in one run, in float32 and with bf16
autocast (the CPU capability and what ``trainer.bf16_autocast=auto`` picks are printed): micro-batches
of 2 rows (before), micro-batches by a 1024-token budget (after, the default), and LoRA rank 16
through peft (``trainer.lora_rank``) on top.  Each configuration runs in its own child process so
that its peak resident memory is its own; the second of two updates is timed (the first also
allocates the AdamW state).  Targets: peak memory under 5 GB, no update of minutes.

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

from gasp_rl import _quiet

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered

CONFIGS = [
    (
        "before: 2 rows/micro-batch, float32",
        {"bf16_autocast": False, "micro_batch_tokens": 0, "micro_batch_size": 2},
    ),
    (
        "before: 2 rows/micro-batch, bf16",
        {"bf16_autocast": True, "micro_batch_tokens": 0, "micro_batch_size": 2},
    ),
    ("after: 1024-token budget, float32", {"bf16_autocast": False, "micro_batch_tokens": 1024}),
    ("after: 1024-token budget, bf16", {"bf16_autocast": True, "micro_batch_tokens": 1024}),
    ("after + LoRA r=16, float32", {"bf16_autocast": False, "micro_batch_tokens": 1024, "lora_rank": 16}),
    ("after + LoRA r=16, bf16", {"bf16_autocast": True, "micro_batch_tokens": 1024, "lora_rank": 16}),
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
    import torch

    from gasp_rl.precision import resolve

    auto = resolve("auto", torch.device("cpu"))
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}; auto picks {auto.name} ({auto.reason})")
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
    for prec in ("float32", "bf16"):
        before = results[f"before: 2 rows/micro-batch, {prec}"]
        after = results[f"after: 1024-token budget, {prec}"]
        lora = results[f"after + LoRA r=16, {prec}"]
        print(
            f"{prec}: token budget {before['seconds'] / after['seconds']:.2f}x faster than 2-row micro-batches "
            f"(peak {after['peak_gb']:.2f} vs {before['peak_gb']:.2f} GB); LoRA {after['seconds'] / lora['seconds']:.2f}x "
            f"the full fine-tune's speed, peak {lora['peak_gb']:.2f} vs {after['peak_gb']:.2f} GB"
        )
    worst = max(r["peak_gb"] for r in results.values())
    print(f"largest peak memory {worst:.2f} GB {'meets' if worst < 5.0 else 'MISSES'} the < 5 GB target")


if __name__ == "__main__":
    main()
