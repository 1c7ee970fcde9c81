#!/usr/bin/env bash
# Install the CPU-importable part of gasp-rl's `verl` extra: Ray, verl 0.9.1 WITHOUT its
# dependencies, and the few pinned packages that `verl.trainer.ppo.core_algos`,
# `verl.trainer.ppo.ray_trainer`, the reward-loop managers and the trainer config schema need on a
# CPU.  A plain `pip install verl` would pull a multi-GB CUDA torch stack, so every package that
# could drag torch is installed with --no-deps, one by one, and the script fails if torch changed.
#
# Usage: bash scripts/install_verl_cpu.sh            (idempotent; ~1 min with a warm pip cache)
#        GASP_SKIP_RAY=1 bash scripts/install_verl_cpu.sh   (verl parts only)
# Used by .ci/run so the tests/test_scale_*.py checks against verl's own code run in CI; without
# it those tests skip with a printed reason (and fail under GASP_REQUIRE_ALL=1, which .ci/run sets).
set -euo pipefail

PY=${PYTHON:-python}
PIP=("$PY" -m pip install --disable-pip-version-check -q)

torch_before=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)

if [[ "${GASP_SKIP_RAY:-0}" != "1" ]]; then
  # ray[default] does not depend on torch (checked with `pip install --dry-run "ray[default]"`).
  "${PIP[@]}" "ray[default]>=2.41"
fi

# verl and the packages whose metadata names torch: no dependency resolution at all.
"${PIP[@]}" --no-deps \
  "verl==0.9.1" \
  "tensordict==0.10.0" \
  "torchdata==0.11.0" \
  "peft==0.21.2" \
  "hydra-core==1.3.2"

# Pure-Python dependencies of the modules above (none of them requires torch).
"${PIP[@]}" --no-deps \
  "omegaconf==2.3.0" \
  "antlr4-python3-runtime==4.9.3" \
  "codetiming==1.4.0" \
  "pyvers==0.1.0" \
  "importlib_metadata>=6" \
  "cachetools>=5" \
  "fastapi>=0.110" \
  "starlette>=0.37" \
  "uvicorn>=0.29" \
  "cloudpickle>=3,<4" \
  "orjson>=3.9,<4"

torch_after=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)
if [[ "$torch_before" != "$torch_after" ]]; then
  echo "install_verl_cpu.sh: torch changed from $torch_before to $torch_after; refusing to continue" >&2
  exit 1
fi

"$PY" - <<'PY'
import importlib

for mod in (
    "tensordict",
    "verl.trainer.ppo.core_algos",
    "verl.trainer.ppo.ray_trainer",
    "verl.utils.config",
    "verl.workers.utils.padding",
):
    importlib.import_module(mod)
print("install_verl_cpu.sh: verl", importlib.import_module("verl").__version__, "CPU parts import")
PY
