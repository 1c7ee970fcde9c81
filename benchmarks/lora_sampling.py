"""Sampling with LoRA on the CPU: through peft's unmerged adapters vs a merged copy, side by side.

With ``trainer.lora_rank > 0`` every adapted Linear of a peft model computes ``x W`` plus
``s (x A) B``: three matmuls and their overhead instead of one.  On the CPU the sampler therefore
runs on a plain copy with the adapters merged (``hf_sampling.MergedLoraSampler``), refreshed in
place after each update.  This script trains LoRA adapters (rank 16) for one step on the embedded
model so they are not zero, then samples the same deduction chats with the same seeds from the
merged copy and from the peft model itself, alternating, and prints useful tok/s, the ratio, how
many completions came out token-identical (the two compute the same function up to float rounding),
and the refresh time of the copy.

    python benchmarks/lora_sampling.py [--batch 32] [--rounds 2] [--lora-rank 16]
"""

from __future__ import annotations

import argparse
import time

import torch

from gasp_rl import _quiet
from gasp_rl.backends.hf import HFPolicy
from gasp_rl.config import Config
from gasp_rl.seams import PolicySample, SamplingParams
from generation_throughput import deduction_prompts  # same workload as generation_throughput.py

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lora-rank", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    args = ap.parse_args()
    cfg = Config()
    cfg.trainer.lora_rank = args.lora_rank
    cfg.trainer.lr = 1e-3  # one visible step, so the adapters change the function
    cfg.generation.batch_size = args.batch
    policy = HFPolicy.from_config(cfg)
    print(
        f"embedded SmolLM2-135M, LoRA rank {args.lora_rank}, precision {policy.gen_precision.name}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, torch threads {torch.get_num_threads()}"
    )
    chats = deduction_prompts(2 * args.batch)
    warm = policy.generate(chats[:8], SamplingParams(n=1, temperature=1.0, max_new_tokens=32, seed=0))
    policy.update(
        [PolicySample(c.prompt_token_ids, c.token_ids, 1.0 - 0.5 * i) for i, [c] in enumerate(warm)]
    )
    t0 = time.perf_counter()
    policy.sampling_model()  # refresh after the update
    print(f"merged copy refreshed in place after the update: {time.perf_counter() - t0:.2f} s")
    merged_fn = policy.sampling_model
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=1)
    rates: dict[str, list[float]] = {"merged copy": [], "peft, unmerged": []}
    outs = {}
    for r in range(args.rounds):
        for name in rates if r % 2 == 0 else reversed(list(rates)):
            policy.sampling_model = merged_fn if name == "merged copy" else (lambda: policy.model)
            t0 = time.perf_counter()
            out = policy.generate(chats, params)
            seconds = time.perf_counter() - t0
            n = sum(len(c.token_ids) for row in out for c in row)
            rates[name].append(n / seconds)
            outs[name] = [c.token_ids for row in out for c in row]
            print(
                f"  round {r + 1} {name:<15} {n:>6} useful tokens {seconds:>6.1f} s {n / seconds:>6.1f} tok/s"
            )
    best = {k: max(v) for k, v in rates.items()}
    same = sum(a == b for a, b in zip(outs["merged copy"], outs["peft, unmerged"]))
    print(
        f"batch {args.batch}, {len(chats)} chats: merged copy {best['merged copy']:.1f} tok/s, peft unmerged "
        f"{best['peft, unmerged']:.1f} tok/s, ratio {best['merged copy'] / best['peft, unmerged']:.2f}x (best of "
        f"{args.rounds}); {same}/{len(chats)} completions token-identical"
    )


if __name__ == "__main__":
    main()
