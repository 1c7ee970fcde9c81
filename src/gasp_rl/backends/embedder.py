"""Text embedders for the novelty filter and buffer dissimilarity (method.md §5, §8).

- :class:`PolicyEmbedder`  mean-pooled last hidden states of the policy itself (``gasp.embedder:
  policy``, the default): no extra model, and for code it separates programs well enough for a
  0.95 cosine threshold.  It reads the live weights, so embeddings drift as the policy trains.
- :class:`HashingEmbedder`  character n-gram feature hashing: model-free, deterministic, used when
  the policy's hidden states are not reachable (a remote OpenAI-compatible server).
- :class:`SentenceTransformerEmbedder`  ``gasp.embedder: <path>``, the optional extra.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from gasp_rl.errors import BackendUnavailable, ModelLoadError


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (cosine 0 with everything)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1.0, norms)).astype(np.float32)


class PolicyEmbedder:
    """Mean of the policy's last hidden states over the text's tokens (no chat template)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int = 512, batch_size: int = 16) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        body = self.model.get_decoder()
        device = next(self.model.parameters()).device
        dim = int(self.model.config.hidden_size)
        rows: list[np.ndarray] = []
        # sort by length so each batch pads little; restore the order at the end
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = [texts[i] or " " for i in order[start : start + self.batch_size]]
                enc = self.tokenizer(
                    chunk,
                    add_special_tokens=False,
                    truncation=True,
                    max_length=self.max_length,
                    padding=True,
                    return_tensors="pt",
                ).to(device)
                attn = enc["attention_mask"]
                # explicit positions: the same text embeds the same whatever the padding side
                positions = (attn.cumsum(dim=1) - 1).clamp(min=0)
                hidden = body(
                    input_ids=enc["input_ids"], attention_mask=attn, position_ids=positions
                ).last_hidden_state
                mask = attn[:, :, None].to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
                rows.append(pooled.float().cpu().numpy())
        if not rows:
            return np.zeros((0, dim), dtype=np.float32)
        stacked = np.concatenate(rows, axis=0)
        out = np.empty_like(stacked)
        out[order] = stacked
        return l2_normalize(out)


class HashingEmbedder:
    """Bag of hashed character n-grams (``n`` in ``ngrams``) in ``dim`` buckets, L2-normalised.

    Whitespace runs are collapsed first, so re-indenting or re-wrapping a program does not make it
    look new.  A stable hash (blake2b) keeps embeddings identical across processes.
    """

    def __init__(self, dim: int = 1024, ngrams: Sequence[int] = (3, 4, 5)) -> None:
        self.dim = dim
        self.ngrams = tuple(ngrams)

    def _bucket(self, gram: str) -> int:
        return int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little") % self.dim

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            t = " ".join(text.split())
            for n in self.ngrams:
                for j in range(max(len(t) - n + 1, 0)):
                    out[i, self._bucket(t[j : j + n])] += 1.0
        return l2_normalize(out)


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local path (the ``embeddings`` extra)."""

    def __init__(self, path: str, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise BackendUnavailable(
                f"gasp.embedder={path!r} needs sentence-transformers: pip install 'gasp-rl[embeddings]'"
            ) from None
        try:
            self.model = SentenceTransformer(path, device=device)
        except Exception as e:
            raise ModelLoadError(f"could not load sentence-transformers model {path!r}: {e}") from None

    def embed(self, texts: list[str]) -> np.ndarray:
        vecs = self.model.encode(texts, convert_to_numpy=True, normalize_embeddings=False)
        return l2_normalize(np.asarray(vecs, dtype=np.float32).reshape(len(texts), -1))
