"""Sampling throughput of the HF policy on the embedded SmolLM2-135M, batch 1 / 8 / 32.

Side by side in the same run: gasp-rl's decoding loop (float32, and with bf16 autocast) and the
plain ``transformers`` ``model.generate`` on the same prompts, weights and token budget.  The issue's
target compares batch-32 throughput with llama.cpp's *single stream*; llama-cpp-python is not
installed here (it compiles for ~9 minutes), so unless it is importable that ratio is against the
reference figure in /work/shared/MEASUREMENTS.md (94-115 tok/s, midpoint 104.5) and is labelled
"not measured side by side".  Tokens/s counts generated tokens (up to and including the end token).

    python benchmarks/generation_throughput.py [--max-new-tokens 128] [--batches 1 8 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import torch

from gasp_rl.backends.hf import HFPolicy
from gasp_rl.config import Config
from gasp_rl.precision import resolve as resolve_precision
from gasp_rl.seams import SamplingParams

LLAMA_CPP_REFERENCE = (94.0, 115.0)  # MEASUREMENTS.md, single stream on this kind of machine

TOPICS = [
    "a stack",
    "binary search",
    "a linked list",
    "merge sort",
    "a hash map",
    "recursion",
    "a queue",
    "memoization",
]


def prompts(n: int) -> list[list[dict[str, str]]]:
    return [
        [{"role": "user", "content": f"Explain {TOPICS[i % len(TOPICS)]} in Python with a short example."}]
        for i in range(n)
    ]


def ours(policy: HFPolicy, batch: int, max_new: int, bf16: bool) -> tuple[int, float]:
    policy.gen_cfg = policy.gen_cfg.model_copy(update={"batch_size": batch, "bf16_autocast": bf16})
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=max_new, seed=batch)
    t0 = time.perf_counter()
    out = policy.generate(prompts(batch), params)
    return sum(len(c.token_ids) for row in out for c in row), time.perf_counter() - t0


def hf_generate(policy: HFPolicy, batch: int, max_new: int) -> tuple[int, float]:
    tok = policy.tokenizer
    tok.padding_side = "left"
    texts = [tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True) for c in prompts(batch)]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(batch)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = policy.model.generate(
            **enc,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            max_new_tokens=max_new,
            pad_token_id=tok.pad_token_id,
        )
    elapsed = time.perf_counter() - t0
    new = out[:, enc["input_ids"].shape[1] :]
    tokens = 0
    for row in new.tolist():
        n = len(row)
        for j, t in enumerate(row):
            if t in policy.eos_ids:
                n = j + 1
                break
        tokens += n
    return tokens, elapsed


def llama_cpp_single_stream(max_new: int) -> float | None:
    """Measured llama.cpp tok/s when llama-cpp-python is importable, else None."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    from gasp_rl.backends.embedded import embedded_gguf_path

    llm = Llama(model_path=str(embedded_gguf_path()), n_ctx=1024, verbose=False, seed=1)
    t0 = time.perf_counter()
    out = llm.create_chat_completion(messages=prompts(1)[0], max_tokens=max_new, temperature=1.0)
    return out["usage"]["completion_tokens"] / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    args = ap.parse_args()
    policy = HFPolicy.from_config(Config())
    ours(policy, 2, 8, False)  # warm-up
    print(
        f"embedded SmolLM2-135M, {args.max_new_tokens} new tokens, temperature 1.0, torch threads {torch.get_num_threads()}"
    )
    auto = resolve_precision("auto", policy.device)
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}; auto picks {auto.name} ({auto.reason})")
    print(f"{'batch':>5} | {'ours fp32':>10} | {'ours bf16':>10} | {'hf generate':>11} | ours best / hf")
    best: dict[int, float] = {}
    for b in args.batches:
        n32, t32 = ours(policy, b, args.max_new_tokens, False)
        n16, t16 = ours(policy, b, args.max_new_tokens, True)
        nh, th = hf_generate(policy, b, args.max_new_tokens)
        r32, r16, rh = n32 / t32, n16 / t16, nh / th
        best[b] = max(r32, r16)
        print(f"{b:>5} | {r32:>6.1f} tok/s | {r16:>6.1f} tok/s | {rh:>7.1f} tok/s | {best[b] / rh:.2f}x")
    top = best[max(best)]
    measured = llama_cpp_single_stream(args.max_new_tokens)
    if measured is not None:
        print(f"llama.cpp single stream, measured side by side: {measured:.1f} tok/s")
        print(
            f"batch {max(best)} (ours, best) / llama.cpp single stream = {top / measured:.2f}x (target >= 1.5x)"
        )
    else:
        lo, hi = LLAMA_CPP_REFERENCE
        mid = (lo + hi) / 2
        print(
            f"llama.cpp single stream: NOT MEASURED SIDE BY SIDE (llama-cpp-python not installed); "
            f"reference {lo:.0f}-{hi:.0f} tok/s from MEASUREMENTS.md"
        )
        print(
            f"batch {max(best)} (ours, best) / llama.cpp reference = {top / mid:.2f}x at the midpoint "
            f"({top / hi:.2f}x-{top / lo:.2f}x over the range; target >= 1.5x)"
        )


if __name__ == "__main__":
    main()
