"""gasp-rl's advantages, reward adapter and config translation checked against verl's own code.

Runs on a CPU when the CPU-importable part of verl is installed (``scripts/install_verl_cpu.sh``);
otherwise every test here is skipped with the reason printed in pytest's summary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from _require import importorskip

importorskip(
    "verl.trainer.ppo.core_algos",
    reason="verl's CPU-importable parts are not installed (run scripts/install_verl_cpu.sh)",
)

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.trainer.config import AlgoConfig  # noqa: E402
from verl.trainer.ppo import core_algos  # noqa: E402

from gasp_rl.config import Config, ConfigError, SandboxConfig  # noqa: E402
from gasp_rl.core.advantages import grpo, trr_plus_plus  # noqa: E402
from gasp_rl.core.tasks import Problem  # noqa: E402
from gasp_rl.core.tasks import TestCase as IOTest  # noqa: E402
from gasp_rl.scale import verl_adapter as va  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# verl announces every optional engine it cannot find on a CPU machine; that is expected here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
TASK_TYPES = ("induction", "deduction", "abduction")
ROLES = ("student", "teacher-lemma", "teacher-lift")


# ---------------------------------------------------------------- helpers


def token_rewards(rewards: np.ndarray, lengths: np.ndarray, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's layout: the outcome reward on the last valid token of a right-padded response."""
    n = len(rewards)
    mask = torch.zeros(n, width)
    scores = torch.zeros(n, width)
    for i, (r, ln) in enumerate(zip(rewards, lengths)):
        mask[i, :ln] = 1.0
        scores[i, ln - 1] = float(r)
    return scores, mask


def self_play_batch(seed: int, n: int = 96) -> tuple[np.ndarray, list[str], list[str]]:
    """Rewards of a mixed TRR++ batch: binary student rewards, learnability-shaped teacher rewards
    (with -1 format penalties), plus one group whose rewards are all equal (zero variance)."""
    rng = np.random.default_rng(seed)
    types = [TASK_TYPES[i] for i in rng.integers(0, 3, n)]
    roles = [ROLES[i] for i in rng.integers(0, 3, n)]
    rewards = np.where(
        np.array(roles) == "student",
        rng.integers(0, 2, n).astype(float),
        np.where(rng.random(n) < 0.2, -1.0, rng.random(n)),
    )
    types += ["deduction"] * 4
    roles += ["teacher-const"] * 4
    rewards = np.concatenate([rewards, [0.5] * 4])
    return rewards, types, roles


def assert_every_group_has_two(keys: list[str]) -> None:
    _, counts = np.unique(keys, return_counts=True)
    assert counts.min() >= 2, "singleton groups are compared in their own test"


# ---------------------------------------------------------------- advantages


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trr_plus_plus_equals_verl_grpo_grouped_by_task_and_role(seed):
    rewards, types, roles = self_play_batch(seed)
    keys = [va.trr_group_key(t, r) for t, r in zip(types, roles)]
    assert_every_group_has_two(keys)
    lengths = np.random.default_rng(seed + 10).integers(1, 17, len(rewards))
    scores, mask = token_rewards(rewards, lengths, 16)

    ours = trr_plus_plus(rewards, types, roles, eps=1e-6)
    verl_adv, verl_ret = core_algos.compute_grpo_outcome_advantage(
        scores, mask, np.array(keys, dtype=object), epsilon=1e-6
    )
    vec_adv, _ = core_algos.compute_grpo_vectorized_outcome_advantage(
        scores, mask, np.array(keys, dtype=object), epsilon=1e-6
    )
    expected = torch.as_tensor(ours, dtype=torch.float32).unsqueeze(-1) * mask
    torch.testing.assert_close(verl_adv, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(verl_ret, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(vec_adv, expected, rtol=1e-5, atol=1e-5)
    # padding carries no advantage, and the all-equal group gets exactly zero
    assert torch.all(verl_adv[mask == 0] == 0)
    assert np.allclose(ours[-4:], 0.0)


@pytest.mark.parametrize("scale_by_std", [True, False])
def test_grpo_equals_verl_grpo(scale_by_std):
    rng = np.random.default_rng(7)
    n_prompts, n = 12, 8
    rewards = rng.integers(0, 2, n_prompts * n).astype(float)
    rewards[:n] = 1.0  # one solved-by-all group: zero advantage
    prompt_ids = [f"p{i // n}" for i in range(n_prompts * n)]
    scores, mask = token_rewards(rewards, rng.integers(1, 33, len(rewards)), 32)

    ours = grpo(rewards, prompt_ids, eps=1e-6, scale_by_std=scale_by_std)
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(
        scores, mask, np.array(prompt_ids, dtype=object), epsilon=1e-6, norm_adv_by_std_in_grpo=scale_by_std
    )
    torch.testing.assert_close(
        verl_adv, torch.as_tensor(ours, dtype=torch.float32).unsqueeze(-1) * mask, rtol=1e-5, atol=1e-5
    )


def test_registered_estimator_runs_inside_verls_compute_advantage():
    """TRR++ registered through ``register_adv_est`` and called by verl's trainer-side
    ``compute_advantage`` on a DataProto gives the same tensor as verl's GRPO with the same uid."""
    from verl.trainer.ppo.ray_trainer import compute_advantage

    assert va.register_verl_estimators() == va.TRR_ESTIMATOR
    assert va.register_verl_estimators() == va.TRR_ESTIMATOR  # idempotent
    assert core_algos.get_adv_estimator_fn("trr_plus_plus") is va.compute_trr_plus_plus_advantage

    rewards, types, roles = self_play_batch(3)
    keys = np.array([va.trr_group_key(t, r) for t, r in zip(types, roles)], dtype=object)
    scores, mask = token_rewards(rewards, np.random.default_rng(4).integers(1, 9, len(rewards)), 8)

    def batch() -> DataProto:
        return DataProto.from_dict(
            tensors={"token_level_rewards": scores.clone(), "response_mask": mask.clone()},
            non_tensors={"uid": keys.copy()},
        )

    ours = compute_advantage(batch(), adv_estimator="trr_plus_plus", config=AlgoConfig())
    theirs = compute_advantage(batch(), adv_estimator="grpo", config=AlgoConfig())
    torch.testing.assert_close(ours.batch["advantages"], theirs.batch["advantages"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours.batch["returns"], theirs.batch["returns"], rtol=1e-5, atol=1e-5)
    assert ours.batch["advantages"].abs().sum() > 0


def test_estimator_honours_norm_adv_by_std_and_needs_uid():
    rewards = np.array([1.0, 0.0, 0.0, 0.0])
    scores, mask = token_rewards(rewards, np.array([2, 2, 2, 2]), 2)
    keys = np.array(["a|s"] * 4, dtype=object)
    unscaled, _ = va.compute_trr_plus_plus_advantage(
        scores, mask, keys, config=AlgoConfig(norm_adv_by_std_in_grpo=False)
    )
    assert unscaled[:, 0].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])
    with pytest.raises(ValueError, match="uid"):
        va.compute_trr_plus_plus_advantage(scores, mask, None)


def test_singleton_groups_differ_from_verl_by_design():
    """A lone sample has no baseline: gasp-rl gives it 0, verl's GRPO passes ``r / (1 + eps)``."""
    rewards = np.array([1.0, 0.0, 1.0])
    keys = ["induction|student", "induction|student", "abduction|student"]
    scores, mask = token_rewards(rewards, np.array([3, 3, 3]), 3)
    ours, _ = va.compute_trr_plus_plus_advantage(scores, mask, np.array(keys, dtype=object))
    verl_adv, _ = core_algos.compute_grpo_outcome_advantage(scores, mask, np.array(keys, dtype=object))
    torch.testing.assert_close(ours[:2], verl_adv[:2])
    assert ours[2].abs().sum() == 0
    assert verl_adv[2, 0] == pytest.approx(1.0, abs=1e-5)


def test_group_key_rejects_separator():
    with pytest.raises(ValueError):
        va.trr_group_key("a|b", "student")


# ---------------------------------------------------------------- rewards

ADD_OK = "Here it is:\n```python\ndef add(a, b):\n    return a + b\n```"
ADD_WRONG = "```python\ndef add(a, b):\n    return b\n```"
NO_CODE = "I think the answer is to add them."


class CharTokenizer:
    """A stand-in for a Hugging Face tokenizer: one token per character, 0 = padding."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids, skip_special_tokens: bool = True) -> str:  # noqa: ANN001 - verl passes tensors
        return "".join(chr(int(i)) for i in ids if int(i) != 0)


def make_dataproto(responses: list[str], truths: list[str], sources: list[str]) -> DataProto:
    """A rollout batch as verl builds it: left-padded prompts, right-padded responses."""
    tok = CharTokenizer()
    prompt = tok.encode("Write add.")
    width = max(len(r) for r in responses) + 3
    n = len(responses)
    prompts = torch.tensor([prompt] * n)
    resp = torch.zeros(n, width, dtype=torch.long)
    mask = torch.zeros(n, len(prompt) + width, dtype=torch.long)
    mask[:, : len(prompt)] = 1
    for i, r in enumerate(responses):
        ids = tok.encode(r)
        resp[i, : len(ids)] = torch.tensor(ids)
        mask[i, len(prompt) : len(prompt) + len(ids)] = 1
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": resp, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(sources, dtype=object),
            "reward_model": np.array([{"ground_truth": t, "style": "rule"} for t in truths], dtype=object),
            "extra_info": np.array([{} for _ in truths], dtype=object),
        },
    )


@pytest.fixture(scope="module")
def executor():
    from gasp_rl.sandbox import LocalExecutor

    with LocalExecutor(SandboxConfig(workers=2), quiet=True) as ex:
        va.set_shared_executor(ex)
        yield ex
        va.set_shared_executor(None)


@pytest.fixture(scope="module")
def add_problem_spec() -> str:
    problem = Problem(
        problem_id="add",
        prompt="Write add(a, b).",
        kind="functional",
        entry_point="add",
        public_tests=[IOTest("1, 2", "3", "functional")],
        private_tests=[IOTest("-1, 1", "0", "functional"), IOTest("[1], [2]", "[1, 2]", "functional")],
    )
    return va.problem_spec(problem).to_json()


def test_score_dataproto_matches_verls_reward_loop_output(executor, add_problem_spec):
    from verl.trainer.ppo.reward import extract_reward

    responses = [ADD_OK, ADD_WRONG, NO_CODE, ADD_OK, ADD_OK]
    truths = [add_problem_spec] * 4 + ["{not json"]
    sources = [va.DATA_SOURCE, va.DATA_SOURCE, va.DATA_SOURCE, "gsm8k", va.DATA_SOURCE]
    data = make_dataproto(responses, truths, sources)

    out = va.score_dataproto(data, CharTokenizer(), executor)
    rm_scores, extra = extract_reward(out)  # verl's own reader of the reward-loop output
    assert rm_scores.shape == data.batch["responses"].shape
    assert rm_scores.dtype == torch.float32
    assert rm_scores.sum(dim=-1).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    valid = data.batch["attention_mask"][:, data.batch["prompts"].shape[1] :].sum(-1)
    assert rm_scores[0].nonzero().flatten().tolist() == [int(valid[0]) - 1]  # on the last valid token
    assert list(extra["status"]) == [
        "passed",
        "wrong_answer",
        "no_code",
        "foreign_data_source",
        "bad_ground_truth",
    ]
    assert list(extra["acc"]) == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_compute_score_through_verls_naive_reward_manager(executor, add_problem_spec):
    """verl's ``NaiveRewardManager`` with our ``compute_score`` as its custom reward function gives,
    sample by sample, the same ``rm_scores`` as the one-call batch adapter."""
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    responses = [ADD_WRONG, ADD_OK, NO_CODE]
    data = make_dataproto(responses, [add_problem_spec] * 3, [va.DATA_SOURCE] * 3)
    manager = NaiveRewardManager(OmegaConf.create({}), CharTokenizer(), va.compute_score)

    async def all_rows() -> list[dict]:
        return [await manager.run_single(data[i : i + 1]) for i in range(len(data))]

    outputs = manager.loop.run_until_complete(all_rows())  # verl runs it on the manager's loop
    assert [o["reward_score"] for o in outputs] == [0.0, 1.0, 0.0]
    assert outputs[1]["reward_extra_info"]["status"] == "passed"
    per_sample = NaiveRewardManager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    batched = va.score_dataproto(data, CharTokenizer(), executor).batch["rm_scores"]
    torch.testing.assert_close(per_sample, batched)


def test_verl_loads_our_reward_function_and_manager_from_the_config(executor, add_problem_spec):
    """The translated config's ``custom_reward_function`` (pkg:// path) resolves, through verl's
    ``load_reward_manager``, to our grader; our registered reward manager grades the same way."""
    from verl.trainer.ppo.reward import load_reward_manager

    import gasp_rl.scale.verl_plugin  # noqa: F401 - registers the estimator and reward manager

    cfg = Config.model_validate({"model": {"name_or_path": "Qwen/Qwen2.5-Coder-7B"}})
    config = va.compose_verl_config(va.verl_overrides(cfg, va.VerlScaleConfig()))
    data = make_dataproto([ADD_OK, ADD_WRONG], [add_problem_spec] * 2, [va.DATA_SOURCE] * 2)
    for name in ("naive", "gasp_rl"):
        config.reward.reward_manager.name = name
        manager = load_reward_manager(config, CharTokenizer())
        scores = [
            manager.loop.run_until_complete(manager.run_single(data[i : i + 1]))["reward_score"]
            for i in range(2)
        ]
        assert scores == [1.0, 0.0], name


def test_grading_is_the_evaluation_harness_grading(executor):
    """stdin, functional and check problems graded through the adapter agree with
    ``gasp_rl.eval.runner.grade_answers`` (the verdicts ``gasp eval`` reports)."""
    from gasp_rl.eval.runner import grade_answers

    stdin = Problem(
        "s", "double", "stdin", public_tests=[IOTest("4\n", "8\n")], private_tests=[IOTest("0", "0")]
    )
    check = Problem(
        "c",
        'def inc(x):\n    """Add one."""\n',
        "check",
        entry_point="inc",
        check_code="def check(c):\n    assert c(1) == 2",
    )
    answers = [
        (stdin, "```python\nprint(int(input()) * 2)\n```"),
        (stdin, "```python\nprint(int(input()) + 2)\n```"),
        (check, "```python\ndef inc(x):\n    return x + 1\n```"),
        (check, "    return x + 1\n"),  # a body continuation, as completion APIs answer
        (check, "no idea"),
    ]
    graded = va.grade_responses(
        [a for _, a in answers], [va.problem_spec(p).to_json() for p, _ in answers], executor
    )
    reference = grade_answers(executor, answers)
    assert [g.score for g in graded] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert [(g.score == 1.0, g.status) for g in graded] == [(r.passed, r.status) for r in reference]
    spec = va.problem_spec(stdin)
    assert va.GradingSpec.from_json(spec.to_json()) == spec


def test_compute_score_ignores_foreign_rows():
    assert va.compute_score("gsm8k", ADD_OK, "{}")["status"] == "foreign_data_source"


# ---------------------------------------------------------------- config

QWEN = {"model": {"name_or_path": "Qwen/Qwen2.5-Coder-7B"}}


@pytest.mark.parametrize("command,estimator", [("train", "trr_plus_plus"), ("rlvr", "grpo")])
def test_translation_is_accepted_by_verls_schema(command, estimator):
    cfg = Config.model_validate(QWEN)
    config = va.compose_verl_config(va.verl_overrides(cfg, va.VerlScaleConfig(), command))
    sections = va.validate_verl_config(config)
    algo, actor, rollout = sections["algorithm"], sections["actor"], sections["rollout"]
    assert type(algo).__name__ == "AlgoConfig" and algo.adv_estimator == estimator
    assert type(actor).__name__ == "FSDPActorConfig"
    assert (actor.optim.lr, actor.clip_ratio_low, actor.clip_ratio_high) == (cfg.trainer.lr, 0.2, 0.28)
    assert actor.use_kl_loss is False and actor.loss_agg_mode == "token-mean"
    assert actor.ppo_mini_batch_size == 64
    n = cfg.rlvr.n if command == "rlvr" else cfg.gasp.n_student
    temperature = cfg.rlvr.temperature if command == "rlvr" else cfg.generation.temperature
    assert rollout.temperature == temperature and rollout.n == n and rollout.name == "vllm"
    assert rollout.val_kwargs.temperature == 0.6
    assert config.data.train_batch_size == 64
    assert config.actor_rollout_ref.model.external_lib == va.PLUGIN_MODULE
    assert config.reward.custom_reward_function.path == va.REWARD_FN_PATH


def test_verl_rejects_an_impossible_cluster_shape():
    cfg = Config.model_validate(QWEN)
    # 64 prompts x 8 samples = 512 sequences cannot be split evenly over 3 x 7 = 21 GPUs
    scale = va.VerlScaleConfig(nnodes=3, n_gpus_per_node=7)
    with pytest.raises(va.ScaleError, match="divisible"):
        va.build_verl_config(cfg, scale)
    with pytest.raises(va.ScaleError, match="rejected"):
        va.compose_verl_config(["actor_rollout_ref.no_such_key=1"])


def test_translation_refuses_the_cpu_model():
    with pytest.raises(va.ScaleError, match="embedded"):
        va.verl_overrides(Config(), va.VerlScaleConfig())


SHIPPED = sorted((REPO / "configs" / "verl").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
@pytest.mark.parametrize("command", ["train", "rlvr"])
def test_shipped_verl_configs_validate(path, command):
    cfg, scale = va.load_scale_config(path)
    config = va.build_verl_config(cfg, scale, command)
    assert config.trainer.nnodes == scale.nnodes


def test_shipped_configs_exist_and_use_paper_settings():
    assert {p.stem for p in SHIPPED} >= {"qwen2.5-coder-7b-1x4", "qwen2.5-coder-7b-multinode", "smoke-0.5b"}
    cfg, scale = va.load_scale_config(REPO / "configs" / "verl" / "qwen2.5-coder-7b-1x4.yaml")
    assert (scale.train_batch_size, cfg.trainer.lr, cfg.generation.temperature) == (64, 1e-6, 1.0)
    assert (scale.nnodes, scale.n_gpus_per_node) == (1, 4)


def test_load_scale_config_overrides_and_errors(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("model:\n  name_or_path: m\nverl:\n  nnodes: 2\n")
    cfg, scale = va.load_scale_config(p, ["verl.n_gpus_per_node=8", "trainer.lr=2e-6"])
    assert (scale.nnodes, scale.n_gpus_per_node, cfg.trainer.lr) == (2, 8, 2e-6)
    with pytest.raises(ConfigError, match="verl.gpus"):
        va.load_scale_config(p, ["verl.gpus=8"])
    with pytest.raises(ConfigError, match="not found"):
        va.load_scale_config(tmp_path / "missing.yaml")


def test_grading_spec_rejects_garbage():
    with pytest.raises(ValueError, match="grading spec"):
        va.GradingSpec.from_json('{"problem": {"problem_id": "x"}}')
    with pytest.raises(ValueError, match="grading spec"):
        va.GradingSpec.from_json("[1, 2]")
