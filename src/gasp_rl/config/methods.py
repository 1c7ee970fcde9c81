"""The methods' sections: GASP, AZR, RLVR, Sol-Ver, the warm-up, evaluation and goalpost identification."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from gasp_rl.config.base import _Section

Mode = Literal[
    "gasp", "azr", "no_io_axis", "no_rejection_sampling", "one_step_medium", "one_step_hard", "gasp_plus_rl"
]


class RewardShape(_Section):
    """Exponents of the generalised learnability reward r(p; a, b) (method.md §4)."""

    a: float = Field(
        gt=0,
        description="Exponent of p in r(p; a, b) = p^a (1-p)^b / (p*^a (1-p*)^b); the peak is p* = a / (a + b).",
    )
    b: float = Field(gt=0, description="Exponent of (1 - p); a + b sets how sharp the peak is.")


class GaspConfig(_Section):
    """Guided asymmetric self-play (method.md §3-§5) and its ablations."""

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
        1,
        ge=0,
        description="Accepted proposals that end a phase's rejection sampling (CPU demo: 1, so a "
        "second step runs only when the first accepted nothing; paper config: 32 of 64).",
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
    teacher_references: int = Field(
        0,
        ge=0,
        description="Beyond the paper (0, the default, keeps the paper's prompts): lemma and lift "
        "prompts also show this many accepted proposals of the run, drawn at random, and ask for a "
        "different task, as AZR's proposer is shown K reference programs.  Meant for a teacher that "
        "keeps re-proposing programs already in the novelty buffer; the embedded 135M model copies "
        "what it is shown instead, so it made things worse there (README, deviations table).",
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
    """Absolute Zero baseline (method.md §4): unguided proposer with AZR's rewards.

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
    """Real-data RL with GRPO (method.md §6)."""

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
    """pass@k evaluation (method.md §8)."""

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
    """Goalpost identification (method.md §7)."""

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
    """Sol-Ver (method.md §9)."""

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
