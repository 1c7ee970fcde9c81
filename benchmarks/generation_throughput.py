"""Useful sampling throughput of the HF policy on the embedded SmolLM2-135M, before vs after, both precisions.

Workload (what self-play generates): deduction student prompts over the shipped AZR seed programs
(they share the prompt's system text and worked example), 2 x batch prompts per call so that rows
wait for a free slot, up to 128 new tokens, temperature 1.0, per-row seeds.  Side by side in one
run, same prompts, same seeds:

- before: ``generation.engine=static`` (fixed chunks of ``batch_size`` rows that run until their
  longest row ends, the whole prompt prefilled per prompt, stop checks decoding whole rows);
- after: ``generation.engine=continuous`` (shared-prefix KV caches, finished rows refilled with
  waiting ones, incremental stop checks, a KV cache that grows in place, attention with native
  grouped key/value heads on the CPU, the vocabulary projection on the CPU kernel measured faster
  here, under bf16 autocast a sampling copy with bf16 Linear weights), also with each
  optimisation switched off alone;
- after + int8 sampling (float32 only): the opt-in ``generation.int8_sampling``, which samples from
  an int8 copy of the policy and so from a slightly different distribution;

each in float32 and with bf16 autocast (this machine's CPU capability and what ``auto`` picks are
printed: bf16 only pays where it is native).  "Useful" tokens are those returned (up to and
including the end token; a static batch computes more than that).  llama.cpp single stream is
measured side by side only when llama-cpp-python is installed.

    python benchmarks/generation_throughput.py [--max-new-tokens 128] [--batches 8 32]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import random
import time
from importlib import resources

import torch

from gasp_rl import _quiet
from gasp_rl.backends import cpu_head, hf, hf_sampling, kv_cache
from gasp_rl.backends.hf import HFPolicy
from gasp_rl.config import Config
from gasp_rl.core.prompts import student_prompt
from gasp_rl.core.tasks import ProgramTask
from gasp_rl.precision import resolve as resolve_precision
from gasp_rl.seams import SamplingParams

_quiet.configure()  # library progress bars only on a terminal, dependency warnings filtered

LLAMA_CPP_REFERENCE = (94.0, 115.0)  # MEASUREMENTS.md, single stream on this kind of machine

_AFTER = {
    "engine": "continuous",
    "prefix_cache": True,
    "refill": True,
    "int8_sampling": False,
    "bf16_weights": True,
}
VARIANTS = {
    "before (static)": {"engine": "static", "int8_sampling": False, "bf16_weights": False},
    "after (continuous)": _AFTER,
    # bf16 only: autocast converting the float32 weights at every call, no bf16 sampling copy
    "after, float32 weights": {**_AFTER, "bf16_weights": False},
    "after, no prefix cache": {**_AFTER, "prefix_cache": False},
    "after, no refill": {**_AFTER, "refill": False},
    # benchmark-only switches (not config): transformers' own sdpa attention, which copies the
    # grouped key/value heads of a masked multi-token query (5.25 packs one-token queries as we
    # do; 5.24 copied those too), and its concatenating DynamicCache
    "after, transformers sdpa": {**_AFTER, "attention": "sdpa"},
    "after, concatenating cache": {**_AFTER, "cache": "dynamic"},
    # the vocabulary projection on F.linear's kernel instead of the one measured faster here
    "after, F.linear head": {**_AFTER, "head": "default"},
    # opt-in, float32 only: samples from an int8 copy (not the float32 policy's distribution)
    "after + int8 sampling": {**_AFTER, "int8_sampling": True},
}


def deduction_prompts(n: int) -> list[list[dict[str, str]]]:
    text = resources.files("gasp_rl.data").joinpath("azr_seed_programs.jsonl").read_text(encoding="utf-8")
    tasks = [ProgramTask.from_dict(json.loads(line)) for line in text.splitlines() if line.strip()]
    rng = random.Random(0)
    return [student_prompt(tasks[i % len(tasks)].view("deduction", rng)) for i in range(n)]


def run(policy: HFPolicy, chats, batch: int, max_new: int, bf16: bool, variant: dict) -> tuple[int, float]:
    variant = dict(variant)
    attention, cache = variant.pop("attention", None), variant.pop("cache", None)
    head = variant.pop("head", None)
    policy.gen_cfg = policy.gen_cfg.model_copy(update={"batch_size": batch, "bf16_autocast": bf16, **variant})
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=max_new, seed=batch)
    chosen = policy.model.config._attn_implementation
    if attention:
        policy.model.set_attn_implementation(attention)
    if cache == "dynamic":  # every decode step concatenates the whole cache again
        hf_sampling.growing_cache = hf.growing_cache = _dynamic_cache
    weight = policy.model.get_output_embeddings().weight
    try:
        with cpu_head.forced(weight, head) if head else contextlib.nullcontext():
            t0 = time.perf_counter()
            out = policy.generate(chats, params)
            seconds = time.perf_counter() - t0
    finally:
        policy.model.set_attn_implementation(chosen)
        hf_sampling.growing_cache = hf.growing_cache = kv_cache.growing_cache
    return sum(len(c.token_ids) for row in out for c in row), seconds


def head_decode_steps(policy: HFPolicy, rows: tuple[int, ...] = (1, 8, 32), steps: int = 24) -> None:
    """Decode steps (one token per row, a 120-token cache) with the vocabulary projection on
    ``F.linear`` and on the kernel :mod:`gasp_rl.backends.cpu_head` measured faster here,
    alternating step by step so both see the same machine load; median ms per step."""
    weight = policy.model.get_output_embeddings().weight
    with torch.inference_mode():
        measured = cpu_head.choose(weight)
        print(
            f"\nvocabulary projection {weight.shape[0]} x {weight.shape[1]}: kernel measured faster here: {measured}"
        )
        for b in rows:
            ids = torch.randint(100, 1000, (b, 120))
            mask = torch.ones_like(ids)
            cache = kv_cache.growing_cache()
            positions = torch.arange(120)[None].expand(b, 120)
            policy._logits(ids, mask, positions, keep=1, cache=cache, model=policy.model, sampling=True)
            times: dict[str, list[float]] = {"default": [], measured: []}
            for s in range(steps):
                kernel = ("default", measured)[s % 2]
                mask = torch.cat([mask, mask.new_ones((b, 1))], dim=1)
                with cpu_head.forced(weight, kernel):
                    t0 = time.perf_counter()
                    policy._logits(
                        ids[:, :1],
                        mask,
                        torch.full((b, 1), 120 + s),
                        keep=1,
                        cache=cache,
                        model=policy.model,
                        sampling=True,
                    )
                    if s >= 4:
                        times[kernel].append(time.perf_counter() - t0)
            ms = {k: 1000 * sorted(v)[len(v) // 2] for k, v in times.items()}
            print(
                f"  {b:>2} rows: decode step F.linear {ms['default']:.1f} ms, {measured} {ms[measured]:.1f} ms "
                f"({ms['default'] / ms[measured]:.2f}x)"
            )


def _dynamic_cache(data=None):  # type: ignore[no-untyped-def]
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=data) if data is not None else DynamicCache()


def llama_cpp_single_stream(chats, max_new: int) -> tuple[float, int, int] | None:
    """llama.cpp's useful tok/s over ``chats`` one after another (one stream), tokens, seconds.

    None when llama-cpp-python is not importable.  Same GGUF, same chats, same token cap and
    temperature as the HF runs; a short warm-up call before them is not counted.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    from llama_cpp import Llama

    from gasp_rl.backends.embedded import embedded_gguf_path

    llm = Llama(model_path=str(embedded_gguf_path()), n_ctx=1024, n_threads=2, verbose=False, seed=1)
    # the HF sampler's distribution: temperature 1 over the whole vocabulary (llama.cpp's defaults
    # would truncate it with top-k 40, top-p 0.95, min-p 0.05, and stop answers earlier)
    same = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "repeat_penalty": 1.0}
    llm.create_chat_completion(messages=chats[0], max_tokens=8, **same)  # warm-up
    tokens, seconds = 0, 0.0
    for chat in chats:
        t0 = time.perf_counter()
        out = llm.create_chat_completion(messages=chat, max_tokens=max_new, **same)
        seconds += time.perf_counter() - t0
        tokens += out["usage"]["completion_tokens"]
    return tokens / seconds, tokens, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--prompts-per-batch", type=float, default=2.0, help="prompts per call = this x batch")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--precisions", nargs="+", default=["float32", "bf16"], choices=["float32", "bf16"])
    args = ap.parse_args()
    policy = HFPolicy.from_config(Config())
    auto = resolve_precision("auto", policy.device)
    print(
        f"embedded SmolLM2-135M, deduction prompts, {args.max_new_tokens} new tokens, temperature 1.0, "
        f"torch threads {torch.get_num_threads()}, CPU capability {torch.backends.cpu.get_cpu_capability()}; "
        f"auto picks {auto.name} ({auto.reason})"
    )
    run(policy, deduction_prompts(2), 2, 4, False, VARIANTS["after (continuous)"])  # warm-up
    best_after: dict[int, float] = {}
    int8_top: dict[int, float | None] = {}
    seconds: dict[tuple[int, str, str], float] = {}
    for b in args.batches:
        chats = deduction_prompts(int(b * args.prompts_per_batch))
        prompt_tokens = sum(len(policy.encode_chat(c)) for c in chats)
        print(f"\nbatch {b}: {len(chats)} prompts, {prompt_tokens} prompt tokens")
        print(f"  {'variant':<24} {'precision':<9} {'useful tok':>10} {'seconds':>8} {'tok/s':>7}")
        rates: dict[tuple[str, str], float] = {}
        for name in args.variants:
            for prec in args.precisions:
                if VARIANTS[name]["int8_sampling"] and prec == "bf16":
                    continue  # int8 sampling runs in float32 (bf16 is refused)
                if name == "after, float32 weights" and prec == "float32":
                    continue  # the same run as after (continuous): no copy without autocast
                n, t = run(policy, chats, b, args.max_new_tokens, prec == "bf16", VARIANTS[name])
                rates[(name, prec)] = n / t
                seconds[(b, name, prec)] = t
                stats = policy.last_generation_stats if VARIANTS[name]["engine"] == "continuous" else {}
                where = (
                    f"  [prefill {stats['prefill_s']:.1f}s decode {stats['decode_s']:.1f}s "
                    f"sample+stop {stats['sample_and_stop_s']:.1f}s, {int(stats['decode_steps'])} steps, "
                    f"prefix {int(stats['prefix_tokens'])} tok, refills {int(stats['refills'])}]"
                    if stats
                    else ""
                )
                print(f"  {name:<24} {prec:<9} {n:>10} {t:>8.1f} {n / t:>7.1f}{where}")
        for prec in args.precisions:
            before, after = rates.get(("before (static)", prec)), rates.get(("after (continuous)", prec))
            if before and after:
                print(f"  after / before, {prec}: {after / before:.2f}x")
        copy, no_copy = (
            rates.get(("after (continuous)", "bf16")),
            rates.get(("after, float32 weights", "bf16")),
        )
        if copy and no_copy:
            print(f"  bf16 sampling copy / float32 weights under autocast, bf16: {copy / no_copy:.2f}x")
        int8, after32 = (
            rates.get(("after + int8 sampling", "float32")),
            rates.get(("after (continuous)", "float32")),
        )
        if int8 and after32:
            print(
                f"  int8 sampling / after, float32: {int8 / after32:.2f}x (a different sampling distribution)"
            )
        int8_top[b] = int8
        best_after[b] = (
            max(v for (name, _), v in rates.items() if name.startswith("after ("))
            if any(name.startswith("after (") for name, _ in rates)
            else max(rates.values())
        )
    if "after, F.linear head" in args.variants and "float32" in args.precisions:
        head_decode_steps(policy)
    top_b = max(best_after)
    top = best_after[top_b]
    # the same chats as the largest batch, one after another
    n_chats = int(top_b * args.prompts_per_batch)
    llama = llama_cpp_single_stream(deduction_prompts(n_chats), args.max_new_tokens)
    if llama is not None:
        measured, n_tok, t_llama = llama
        print(
            f"\nllama.cpp single stream (2 threads, same chats and sampling), measured side by side: "
            f"{measured:.1f} tok/s ({n_tok} tokens over {n_chats} chats, {t_llama:.1f} s)"
        )
        print(
            f"batch {top_b} (after, best precision) / llama.cpp single stream = {top / measured:.2f}x tok/s"
        )
        if int8_top.get(top_b):
            print(
                f"batch {top_b} with int8 sampling / llama.cpp single stream = {int8_top[top_b] / measured:.2f}x tok/s"
            )
        t_ours = min(t for (b, name, _), t in seconds.items() if b == top_b and name.startswith("after ("))
        print(
            f"wall time for the same {n_chats} chats: ours {t_ours:.1f} s, llama.cpp {t_llama:.1f} s "
            f"({t_llama / t_ours:.2f}x; tokens per chat differ with the sampled lengths)"
        )
    else:
        lo, hi = LLAMA_CPP_REFERENCE
        print(
            f"\nllama.cpp single stream: NOT MEASURED (llama-cpp-python not installed); reference "
            f"{lo:.0f}-{hi:.0f} tok/s from MEASUREMENTS.md -> batch {top_b} after = "
            f"{top / hi:.2f}x-{top / lo:.2f}x of it"
        )


if __name__ == "__main__":
    main()
