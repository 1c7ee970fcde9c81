"""Model path resolution and the one-time GGUF -> safetensors conversion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gasp_rl.backends import embedded
from gasp_rl.backends.embedded import ensure_converted, resolve_model_path
from gasp_rl.errors import ModelLoadError


def test_local_model_directory_is_passed_through_absolute(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    assert resolve_model_path(str(model_dir), str(tmp_path / "cache")) == str(model_dir.resolve())


def test_hub_id_is_passed_through(tmp_path: Path) -> None:
    assert resolve_model_path("Qwen/Qwen2.5-Coder-7B", str(tmp_path)) == "Qwen/Qwen2.5-Coder-7B"


@pytest.mark.parametrize("name", ["./nope/model", "/definitely/not/here", "a/b/c", ""])
def test_missing_path_is_a_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelLoadError, match="not found|empty"):
        resolve_model_path(name, str(tmp_path))


def test_directory_without_config_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="no config.json"):
        resolve_model_path(str(tmp_path), str(tmp_path / "cache"))


def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="GGUF file not found"):
        resolve_model_path(str(tmp_path / "x.gguf"), str(tmp_path))


def test_broken_gguf_is_one_clear_error_and_leaves_no_cache(tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\x00garbage" * 100)
    cache = tmp_path / "cache"
    with pytest.raises(ModelLoadError, match="could not load GGUF file .*broken.gguf"):
        resolve_model_path(str(bad), str(cache))
    leftovers = [p.name for p in (cache / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_conversion_runs_once_and_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"weights")
    calls: list[Path] = []

    def fake_convert(src: Path, out: Path) -> None:
        calls.append(out)
        (out / "config.json").write_text("{}")
        (out / embedded._MARKER).write_text(json.dumps({"source": str(src)}))

    monkeypatch.setattr(embedded, "convert_gguf", fake_convert)
    first = ensure_converted(gguf, tmp_path / "cache", "tiny")
    second = ensure_converted(gguf, tmp_path / "cache", "tiny")
    assert first == second and len(calls) == 1
    assert calls[0] != first  # written elsewhere, then renamed into place
    assert (first / "config.json").is_file()
    # a changed GGUF gets a new fingerprint and a new conversion
    gguf.write_bytes(b"other weights")
    assert ensure_converted(gguf, tmp_path / "cache", "tiny") != first


def test_failed_conversion_replaces_a_stale_partial_directory_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"weights")

    def failing(src: Path, out: Path) -> None:
        (out / "half-written").write_text("x")
        raise ModelLoadError("boom")

    monkeypatch.setattr(embedded, "convert_gguf", failing)
    with pytest.raises(ModelLoadError, match="boom"):
        ensure_converted(gguf, tmp_path / "cache", "tiny")
    assert [p for p in (tmp_path / "cache" / "models").iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.slow
def test_embedded_model_is_cached_safetensors_with_chat_template() -> None:
    path = Path(resolve_model_path("embedded", "~/.cache/gasp-rl"))
    assert (path / "model.safetensors").is_file()
    config = json.loads((path / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    template_files = list(path.glob("chat_template*")) + [path / "tokenizer_config.json"]
    assert any("<|im_start|>" in p.read_text() for p in template_files if p.is_file())
