"""CI cannot go green with its verl / Ray / browser tests skipped (issue 15 item 11)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

import _require

ROOT = Path(__file__).resolve().parents[1]


def test_missing_dependency_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_require.ENV, raising=False)
    with pytest.raises(pytest.skip.Exception):
        _require.importorskip("gasp_rl_no_such_module", "not installed")


def test_missing_dependency_fails_under_gasp_require_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_require.ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="not installed"):
        _require.importorskip("gasp_rl_no_such_module", "not installed")
    with pytest.raises(pytest.fail.Exception, match="chromium"):
        _require.missing("needs chromium")


def test_ci_run_requires_all_and_runs_the_readme_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "export GASP_REQUIRE_ALL=1" in ci
    assert "bash scripts/install.sh --dev && python -m pytest" in readme
    assert "bash scripts/install.sh --dev && python -m pytest" in ci


def test_verl_cpu_install_names_cloudpickle_and_orjson() -> None:
    script = (ROOT / "scripts" / "install_verl_cpu.sh").read_text()
    assert '"cloudpickle' in script and '"orjson' in script


def test_dev_install_fails_when_the_verl_install_fails(tmp_path: Path) -> None:
    """install.sh --dev exits non-zero (not a warning) when install_verl_cpu.sh fails."""
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "install.sh").write_text((ROOT / "scripts" / "install.sh").read_text())
    (scripts / "install_verl_cpu.sh").write_text("echo verl install broke >&2\nexit 3\n")
    fake_py = tmp_path / "fakepython"
    fake_py.write_text("#!/bin/sh\nexit 0\n")  # every `python -m pip install` "succeeds"
    fake_py.chmod(fake_py.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PYTHON": str(fake_py), "GASP_SKIP_TORCH": "1"}
    proc = subprocess.run(
        ["bash", str(scripts / "install.sh"), "--dev"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "install_verl_cpu.sh failed" in proc.stderr
