"""The pure math of the clipped policy-gradient step."""

from __future__ import annotations

import math

import pytest
import torch

from gasp_rl.backends.policy_loss import clipped_surrogate, kl_k3, token_weights


def test_surrogate_at_ratio_one_is_minus_advantage_with_reinforce_gradient() -> None:
    logp = torch.tensor([-1.0, -2.0], requires_grad=True)
    adv = torch.tensor([2.0, -1.0])
    loss, ratio, clipped = clipped_surrogate(logp, logp.detach(), adv, 0.2, 0.28)
    assert torch.allclose(loss, -adv)
    assert torch.allclose(ratio, torch.ones(2))
    assert clipped.sum() == 0
    loss.sum().backward()
    assert torch.allclose(logp.grad, -adv)  # d(-rho A)/d logp = -A at rho = 1


def test_surrogate_clips_asymmetrically() -> None:
    old = torch.zeros(4)
    # ratios 1.5, 1.5, 0.5, 0.5
    logp = torch.log(torch.tensor([1.5, 1.5, 0.5, 0.5])).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss, _, clipped = clipped_surrogate(logp, old, adv, clip_low=0.2, clip_high=0.28)
    expected = torch.tensor([-1.28, 1.5, -0.5, 0.8])
    assert torch.allclose(loss, expected, atol=1e-6)
    assert clipped.tolist() == [1.0, 0.0, 0.0, 1.0]
    loss.sum().backward()
    # clipped tokens carry no gradient, the others do
    assert logp.grad[0] == 0 and logp.grad[3] == 0
    assert logp.grad[1] != 0 and logp.grad[2] != 0


def test_kl_k3_is_zero_at_equality_and_positive_otherwise() -> None:
    logp = torch.tensor([-1.0, -0.5, -3.0])
    assert torch.allclose(kl_k3(logp, logp), torch.zeros(3))
    assert (kl_k3(logp, logp + torch.tensor([0.3, -0.3, 1.0])) > 0).all()
    d = 0.3
    assert math.isclose(float(kl_k3(torch.tensor(0.0), torch.tensor(d))), math.exp(d) - d - 1, rel_tol=1e-6)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("token-mean", [1 / 6, 1 / 6, 0.0]),
        ("seq-mean-token-sum", [1 / 3, 1 / 3, 0.0]),
        ("seq-mean-token-mean", [1 / 6, 1 / 12, 0.0]),
    ],
)
def test_token_weights(mode: str, expected: list[float]) -> None:
    lengths = [2, 4, 0]
    w = token_weights(lengths, mode)  # type: ignore[arg-type]
    assert w == pytest.approx(expected)


def test_token_mean_weights_give_the_mean_over_all_tokens() -> None:
    lengths = [3, 1, 4]
    w = token_weights(lengths, "token-mean")
    assert sum(wi * n for wi, n in zip(w, lengths)) == pytest.approx(1.0)
    assert token_weights([], "token-mean") == []
    with pytest.raises(ValueError):
        token_weights([1], "bogus")  # type: ignore[arg-type]
