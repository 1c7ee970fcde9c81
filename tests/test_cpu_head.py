"""The sampler's CPU vocabulary projection: same product as ``F.linear``, kernel chosen once by
measurement, never inside autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gasp_rl.backends import cpu_head

pytestmark = pytest.mark.skipif(not cpu_head.onednn_available(), reason="this torch build has no oneDNN")


@pytest.fixture(autouse=True)
def _fresh_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_head, "_choice", {})


def test_both_kernels_compute_the_linear_product() -> None:
    torch.manual_seed(0)
    weight = torch.randn(3000, 64) * 0.1
    for shape in ((1, 64), (7, 64), (2, 5, 64)):
        x = torch.randn(*shape)
        want = F.linear(x, weight)
        for name, kernel in cpu_head.KERNELS.items():
            got = kernel(x.reshape(-1, 64), weight).view(want.shape)
            assert torch.allclose(got, want, rtol=1e-5, atol=1e-5), name
        with torch.inference_mode():
            assert torch.allclose(cpu_head.project(x, weight), want, rtol=1e-5, atol=1e-5)


def test_the_kernel_is_measured_once_per_head_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    timed: list[str] = []
    seconds = {"default": 2.0, "onednn": 1.0}

    def fake_time(kernel, weight):  # type: ignore[no-untyped-def]
        name = next(n for n, k in cpu_head.KERNELS.items() if k is kernel)
        timed.append(name)
        return seconds[name]

    monkeypatch.setattr(cpu_head, "_time", fake_time)
    weight = torch.randn(500, 32)
    with torch.inference_mode():
        for _ in range(3):
            cpu_head.project(torch.randn(4, 32), weight)
    assert cpu_head.choose(weight) == "onednn"
    assert sorted(timed) == ["default", "onednn"]  # timed once, not per call
    seconds.update(default=0.5)
    assert cpu_head.choose(torch.randn(600, 32)) == "default"  # another shape is measured anew


def test_inside_autograd_the_model_head_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args):  # type: ignore[no-untyped-def]
        raise AssertionError("the measured kernel ran inside autograd")

    monkeypatch.setattr(cpu_head, "KERNELS", {"default": refuse, "onednn": refuse})
    weight = torch.randn(100, 16, requires_grad=True)
    x = torch.randn(3, 16)
    out = cpu_head.project(x, weight)
    out.sum().backward()
    assert weight.grad is not None and torch.allclose(weight.grad, x.sum(0).expand(100, 16))
    assert not cpu_head.eligible(weight.detach().double(), None)
    assert not cpu_head.eligible(weight.detach(), torch.zeros(100))


def test_a_kernel_that_disagrees_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_head, "_onednn", lambda x, w: F.linear(x, w) + 1.0)
    monkeypatch.setattr(cpu_head, "_time", lambda kernel, weight: pytest.fail("timed a wrong kernel"))
    assert cpu_head.choose(torch.randn(200, 8)) == "default"
