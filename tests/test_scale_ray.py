"""The Ray-backed sandbox pool gives the local pool's verdicts, on a local Ray cluster of 2 CPUs.

The verdict and bad-input cases are the local pool's own (``tests/test_sandbox.py``).  The pool is
built with two actors on the one node, so every batch is really split, shipped and reassembled as
it would be across two nodes.  Skipped with a printed reason when Ray is not installed.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from _require import importorskip
from gasp_rl.config import SandboxConfig
from gasp_rl.core.jobs import Job, Status
from gasp_rl.scale.ray_executor import split_by_capacity
from test_sandbox import ADD, BAD_INPUT, VERDICT_CASES

S = Status


# ---------------------------------------------------------------- pure: no Ray needed


@pytest.mark.parametrize(
    "n,caps,sizes",
    [
        (10, [1, 1], [5, 5]),
        (11, [1, 1], [6, 5]),
        (10, [3, 1], [8, 2]),  # 7.5 / 2.5: the tie of remainders goes to the earlier slot
        (2, [1, 1, 1, 1], [1, 1, 0, 0]),
        (0, [2, 2], [0, 0]),
        (100, [8, 8, 16], [25, 25, 50]),
    ],
)
def test_split_by_capacity(n, caps, sizes):
    slices = split_by_capacity(n, caps)
    assert [s.stop - s.start for s in slices] == sizes
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))


def test_split_rejects_empty_or_zero_capacity():
    with pytest.raises(ValueError):
        split_by_capacity(3, [])
    with pytest.raises(ValueError):
        split_by_capacity(3, [2, 0])


def test_local_mode_never_imports_ray():
    code = (
        "import sys, gasp_rl.sandbox, gasp_rl.scale.ray_executor, gasp_rl.scale.verl_adapter\n"
        "from gasp_rl.config import Config\n"
        "from gasp_rl.wiring import make_executor\n"
        "ex = make_executor(Config())\n"
        "ex.close()\n"
        "assert type(ex).__name__ == 'LocalExecutor'\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------- on a local Ray cluster


@pytest.fixture(scope="module")
def rex():
    importorskip("ray", reason="Ray is not installed (pip install 'gasp-rl[ray]')")
    from gasp_rl.scale.ray_executor import RayExecutor

    cfg = SandboxConfig(backend="ray", workers=2, cpu_time=2.0)
    with RayExecutor(cfg, actors_per_node=2, ray_init={"num_cpus": 2}) as ex:
        yield ex


def test_pool_shape(rex):
    assert (rex.n_nodes, rex.n_workers) == (1, 2)
    info = rex.describe()
    assert len(info) == 2 and all(i["workers"] == 1 for i in info)
    assert all("rlimits" in i["isolation"] for i in info)


def test_same_verdicts_as_local_pool(rex):
    verdicts = rex.run([c[1] for c in VERDICT_CASES])
    for (name, _, status, outputs), v in zip(VERDICT_CASES, verdicts):
        assert v.status == status, f"{name}: {v.status.value} {v.reason}"
        if outputs is not None:
            assert v.outputs == outputs, name


@pytest.mark.parametrize("name,job,needle", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gets_clear_verdict(rex, name, job, needle):
    [v] = rex.run([job])
    assert v.status == S.INVALID_INPUT, (name, v)
    assert needle in v.reason


def test_job_ids_and_order_preserved_across_actors(rex):
    jobs = [Job("call", code=f"def f():\n    return {i}", cases=[""], id=f"j{i}") for i in range(41)]
    verdicts = rex.run(jobs)
    assert [v.outputs for v in verdicts] == [[str(i)] for i in range(41)]
    assert [v.job_id for v in verdicts] == [j.id for j in jobs]
    assert rex.run([]) == []


def test_determinism_check(rex):
    det = Job("call", code="def f(x):\n    return sorted(set(x))", cases=["'hello'"])
    nondet = Job("call", code="import os\ndef f():\n    return os.urandom(8).hex()", cases=[""])
    results = rex.check_determinism([det, nondet, det])
    assert [same for same, _ in results] == [True, False, True]
    assert results[0][1].status == S.PASSED


def test_lost_actor_is_recreated_and_its_slice_retried(rex):
    import ray

    ray.kill(rex._slots[1].actor)  # a node's pool dies (node lost, OOM kill, ...)
    jobs = [Job("call", code=ADD, cases=[f"{i}, 1"], expected=[str(i + 1)]) for i in range(6)]
    verdicts = rex.run(jobs)
    assert [v.status for v in verdicts] == [S.PASSED] * 6
    assert rex.describe()[1]["workers"] == 1


def test_splitting_a_node_needs_an_explicit_pool_size():
    importorskip("ray", reason="Ray is not installed (pip install 'gasp-rl[ray]')")
    from gasp_rl.scale.ray_executor import RayExecutor

    with pytest.raises(ValueError, match="sandbox.workers"):
        RayExecutor(SandboxConfig(backend="ray"), actors_per_node=2)
