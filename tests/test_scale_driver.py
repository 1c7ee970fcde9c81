"""The CPU-checkable parts of the verl driver: batch building, rollout decoding, sampling-mode
mapping, the dry run and the refusal without GPUs.  The GPU path itself is untested here."""

from __future__ import annotations

import pytest

from _require import importorskip

importorskip(
    "verl.trainer.ppo.core_algos",
    reason="verl's CPU-importable parts are not installed (run scripts/install_verl_cpu.sh)",
)

import torch  # noqa: E402
from verl import DataProto  # noqa: E402
from verl.workers.utils.padding import left_right_2_no_padding  # noqa: E402

from gasp_rl.errors import BackendUnavailable  # noqa: E402
from gasp_rl.scale import verl_driver as vd  # noqa: E402
from gasp_rl.scale.verl_adapter import ScaleError  # noqa: E402
from gasp_rl.seams import PolicySample  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")
SMOKE = "configs/verl/smoke-0.5b.yaml"


def test_samples_become_a_padded_batch_verls_actor_accepts():
    samples = [
        PolicySample([1, 2, 3], [4, 5], 1.5),
        PolicySample([7], [8, 9, 10], [0.1, 0.2, 0.3]),
        PolicySample([6, 6], [], -1.0),
    ]
    data = vd.samples_to_dataproto(samples, pad_id=0, divisor=4)
    assert len(data) == 4  # padded to the data-parallel size
    b = data.batch
    assert b["prompts"].tolist() == [[1, 2, 3], [0, 0, 7], [0, 6, 6], [1, 2, 3]]  # left-padded
    assert b["responses"][1].tolist() == [8, 9, 10]
    assert b["response_mask"].tolist() == [[1, 1, 0], [1, 1, 1], [0, 0, 0], [0, 0, 0]]
    torch.testing.assert_close(
        b["advantages"],
        torch.tensor([[1.5, 1.5, 0], [0.1, 0.2, 0.3], [0, 0, 0], [0, 0, 0]]),
    )
    assert b["position_ids"][1].tolist() == [0, 0, 0, 1, 2, 3]
    assert data.meta_info["global_token_num"] == [5, 4, 2, 5]
    td = left_right_2_no_padding(data.to_tensordict())  # what the learner sends to verl's actor
    assert td["input_ids"].offsets().tolist() == [0, 5, 9, 11, 16]


def test_rollout_output_decodes_to_completions():
    class Tok:
        def decode(self, ids, skip_special_tokens=True):  # noqa: ANN001
            return "".join(chr(96 + i) for i in ids)

    out = DataProto.from_dict(
        tensors={
            "prompts": torch.tensor([[0, 5, 6], [7, 8, 9]]),
            "responses": torch.tensor([[1, 2, 0, 0], [3, 4, 5, 6]]),
            "attention_mask": torch.tensor([[0, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]),
            "rollout_log_probs": torch.tensor([[-0.5, -0.25, 0, 0], [-1.0, -1.0, -1.0, -1.0]]),
        }
    )
    a, b = vd.completions_from_dataproto(out, Tok(), response_length=4)
    assert (a.text, a.token_ids, a.prompt_token_ids, a.finish_reason) == ("ab", [1, 2], [5, 6], "stop")
    assert a.logprobs == [-0.5, -0.25]
    assert (b.text, b.finish_reason) == ("cdef", "length")


def test_generator_maps_temperatures_to_verls_sampling_modes():
    gen = object.__new__(vd.VerlGenerator)
    gen.train_temperature, gen.val_temperature = 1.0, 0.6
    assert [gen._mode(t) for t in (1.0, 0.6, 0.0)] == ["train", "validate", "greedy"]
    with pytest.raises(ScaleError, match="0.8"):
        gen._mode(0.8)


def test_dry_run_prints_the_validated_verl_config(capsys):
    assert vd.main(["rlvr", SMOKE, "verl.n_gpus_per_node=2", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "adv_estimator: grpo" in text and "n_gpus_per_node: 2" in text
    assert vd.main(["train", SMOKE, "verl.nnodes=0", "--dry-run"]) == 1
    assert "verl.nnodes" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without GPUs")
def test_training_without_gpus_is_refused_in_one_line(capsys):
    with pytest.raises(BackendUnavailable, match="CUDA"):
        vd.require_gpus()
    assert vd.main(["train", SMOKE]) == 1
    assert "needs CUDA GPUs" in capsys.readouterr().err


def test_verl_hands_in_its_own_policy_without_touching_the_factory():
    from gasp_rl.backends import factory
    from gasp_rl.config import Config
    from gasp_rl.wiring import Wiring

    cfg = Config()
    before = dict(factory._BUILDERS)
    sentinel = object()
    assert Wiring(policy=sentinel).policy(cfg) is sentinel
    assert before == factory._BUILDERS
