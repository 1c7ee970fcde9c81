"""Golden run records: the three run drivers on deterministic models, normalised for comparison.

Used by ``tests/test_golden_runs.py`` and, to (re)write the fixtures under
``tests/fixtures/golden_runs/``, by ``python tests/golden_runs.py`` (only when a record is *meant*
to change; say so in the commit).

Runs (all on a fixed seed):

- ``gasp``          ``gasp train`` (mode gasp), fake backend, 2 iterations;
- ``azr``           ``gasp train`` (mode azr), fake backend, 1 iteration;
- ``gasp_plus_rl``  ``gasp train`` (mode gasp_plus_rl), fake backend, 1 iteration;
- ``rlvr``          ``gasp rlvr``, fake backend, 3 updates;
- ``solver_verifier`` ``gasp solver-verifier``: TRL needs a real transformers model, so the
  policy is a 2-layer random Llama (the embedded model's tokenizer) behind a scripted generator
  (the Sol-Ver tests' script); 2 iterations.

What is compared: every JSONL record stream, ``run.json``, ``config.yaml``, the checkpoint
directory listing with the contents of its JSON state files, and ``eval/*.json``.

Normalised (volatile, replaced by ``"<volatile>"``), and nothing else:

- wall-clock values: any key named ``time`` (per-phase seconds), ``seconds``,
  ``executions_per_s``; ``run.json``'s ``created``;
- paths of the temporary run directory (replaced by ``<RUN>``) and of the test's temporary files
  (``<TMP>``);
- Sol-Ver's TRL training metrics ``sft`` / ``dpo``: their floating-point values (losses, grad
  norms, learning rates, reward margins) depend on the CPU's floating-point kernels, so floats
  there become ``"<float>"`` (keys, integers such as ``steps`` stay).

Checkpoint files are listed; the contents compared are those of :data:`STATE_FILES` only (resume
state and the fake learner's JSON), not weights or tokenizer files.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures" / "golden_runs"
SRC = Path(__file__).resolve().parents[1] / "src"
VOLATILE_KEYS = {"time", "seconds", "executions_per_s", "created"}
FLOAT_ONLY_KEYS = {"sft", "dpo"}
#: Checkpoint files whose content is compared (resume state, the fake learner); weights,
#: tokenizer and model config files are only listed.
STATE_FILES = {"loop_state.json", "state.json", "fake_learner.json"}
RUNS = ("gasp", "azr", "gasp_plus_rl", "rlvr", "solver_verifier")


# ------------------------------------------------------------------ running


def _goalposts(tmp: Path) -> Path:
    from gasp_rl.core.tasks import write_jsonl
    from gasp_rl.eval.datasets import load_humaneval

    path = tmp / "goalposts.jsonl"
    if not path.exists():
        write_jsonl(path, load_humaneval(parity="even")[:6])
    return path


def _selfplay_cfg(tmp: Path, mode: str, iterations: int):
    from gasp_rl.config import load_config

    return load_config(
        None,
        [
            "model.backend=fake",
            "gasp.embedder=hash",
            f"gasp.goalposts={_goalposts(tmp)}",
            f"run.dir={tmp / mode}",
            f"mode={mode}",
            f"gasp.iterations={iterations}",
            "gasp.lemmas_per_step=6",
            "gasp.min_accepted=2",  # the default when the fixtures were recorded (now 1)
            "sandbox.workers=2",
            "rlvr.problems=humaneval-train",
            "rlvr.batch_problems=2",
            "rlvr.n=2",
        ],
    )


def _rlvr_cfg(tmp: Path):
    from gasp_rl.config import load_config

    return load_config(
        None,
        [
            "model.backend=fake",
            f"run.dir={tmp / 'rlvr'}",
            "rlvr.problems=humaneval-train",
            "rlvr.limit=6",
            "rlvr.updates=3",
            "rlvr.checkpoint_every=2",
            "rlvr.batch_problems=2",
            "rlvr.n=3",
            "rlvr.drop_zero_variance=false",
            "sandbox.workers=2",
        ],
    )


def _sv_cfg(tmp: Path):
    from gasp_rl.config import load_config

    return load_config(
        overrides=[
            f"run.dir={tmp / 'solver_verifier'}",
            "solver_verifier.iterations=2",
            "solver_verifier.problems_per_iteration=1",
            "solver_verifier.m=4",
            "solver_verifier.sft_max_steps=1",
            "solver_verifier.dpo_max_steps=1",
            "solver_verifier.eval_limit=1",
            "solver_verifier.verifier_prefill=false",
            "trainer.bf16_autocast=false",
            "sandbox.workers=2",
        ]
    )


def sv_bundle():
    """The Sol-Ver policy: a tiny random Llama (TRL trains it) behind the scripted generator."""
    import torch

    from gasp_rl.backends import factory
    from gasp_rl.backends.embedder import HashingEmbedder
    from gasp_rl.backends.hf import HFPolicy

    sys.path.insert(0, str(Path(__file__).parent))
    from _tiny_model import tiny_llama
    from test_solver_verifier import ProblemAwareGenerator, _script

    model, tok = tiny_llama()
    policy = HFPolicy(model, tok, torch.device("cpu"))
    return factory.PolicyBundle(
        generator=ProblemAwareGenerator(_script()), learner=policy, embedder=HashingEmbedder(), tokenizer=tok
    )


def run(name: str, tmp: Path, patch: Any = None, resume: bool = False) -> Path:
    """Run golden run ``name`` under ``tmp`` (``resume``: continue the one there);
    ``patch(target, attr, value)`` (a monkeypatch's ``setattr``) wires the Sol-Ver policy."""
    from gasp_rl import driver

    where = tmp / name
    if name in ("gasp", "azr", "gasp_plus_rl"):
        cfg = _selfplay_cfg(tmp, name, 2 if name == "gasp" else 1)
        return driver.run_training(None, resume=where) if resume else driver.run_training(cfg)
    if name == "rlvr":
        return driver.run_rlvr(None, resume=where) if resume else driver.run_rlvr(_rlvr_cfg(tmp))
    if name == "solver_verifier":
        from gasp_rl.backends import factory

        bundle = sv_bundle()
        patch(factory, "build_policy", lambda cfg: bundle)
        if resume:
            return driver.run_solver_verifier(None, resume=where)
        return driver.run_solver_verifier(_sv_cfg(tmp))
    raise KeyError(name)


# ------------------------------------------------------------------ normalising


def _norm(value: Any, key: str | None, subs: list[tuple[str, str]], floats_only: bool = False) -> Any:
    if key in VOLATILE_KEYS:
        return "<volatile>"
    floats_only = floats_only or key in FLOAT_ONLY_KEYS
    if isinstance(value, dict):
        return {k: _norm(v, k, subs, floats_only) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v, None, subs, floats_only) for v in value]
    if isinstance(value, float) and floats_only:
        return "<float>"
    if isinstance(value, str):
        for old, new in subs:
            value = value.replace(old, new)
    return value


def within_float_noise(got: Any, want: Any, rel: float = 1e-4, abs_tol: float = 1e-6) -> Any:
    """``got`` with each float that is within (rel, abs_tol) of the float at the same place in
    ``want`` replaced by that one, so an equality assert still shows every real difference:
    embedding similarities come from float32 matmuls whose last bits differ between CPUs (AVX2 and
    AVX-512 kernels sum in another order), which is not a change of behaviour."""
    if isinstance(got, dict) and isinstance(want, dict):
        return {k: within_float_noise(v, want[k], rel, abs_tol) if k in want else v for k, v in got.items()}
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [within_float_noise(g, w, rel, abs_tol) for g, w in zip(got, want)]
    if (
        isinstance(got, float)
        and isinstance(want, float)
        and math.isclose(got, want, rel_tol=rel, abs_tol=abs_tol)
    ):
        return want
    return got


def snapshot(run_dir: Path, tmp: Path) -> dict[str, Any]:
    """File name -> normalised content of everything compared in a run directory."""
    run_dir = Path(run_dir)
    subs = [(str(run_dir), "<RUN>"), (str(tmp), "<TMP>")]
    out: dict[str, Any] = {}
    for f in sorted(run_dir.rglob("*")):
        rel = f.relative_to(run_dir).as_posix()
        if f.is_dir() or rel.startswith("work/"):
            continue
        if rel.startswith("checkpoints/"):
            out.setdefault("checkpoints/", []).append(rel)
            if f.name not in STATE_FILES:
                continue
        if f.suffix == ".jsonl":
            out[rel] = [_norm(json.loads(line), None, subs) for line in f.read_text().splitlines()]
        elif f.suffix == ".json":
            out[rel] = _norm(json.loads(f.read_text()), None, subs)
        elif f.suffix == ".yaml":
            out[rel] = _norm(yaml.safe_load(f.read_text()), None, subs)
    return out


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.json"


def main() -> None:  # pragma: no cover - regenerates fixtures
    import tempfile

    names = sys.argv[1:] or list(RUNS)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    patches: list[tuple[Any, str, Any]] = []

    def patch(target: Any, attr: str, value: Any) -> None:
        patches.append((target, attr, getattr(target, attr)))
        setattr(target, attr, value)

    for name in names:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            try:
                snap = snapshot(run(name, tmp, patch), tmp)
            finally:
                for target, attr, old in reversed(patches):
                    setattr(target, attr, old)
                patches.clear()
        fixture_path(name).write_text(json.dumps(snap, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
        print(f"wrote {fixture_path(name)}")


if __name__ == "__main__":
    main()
