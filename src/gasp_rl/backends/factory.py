"""Wire the policy seams from the config: the one place that knows the concrete backends.

``model.backend`` selects:

- ``hf``      one in-process transformers model is generator, learner and (policy) embedder;
- ``openai``  an OpenAI-compatible server generates; no learner (evaluation, or a policy trained
              elsewhere); embeddings from a hashing embedder unless a sentence-transformers path is set;
- ``vllm``    vLLM generates on the GPU, an HF learner trains a copy of the weights, and
              :meth:`PolicyBundle.sync` pushes the learner's weights into vLLM;
- ``fake``    the scripted test double of :mod:`gasp_rl.backends.fake`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gasp_rl.config import Config
from gasp_rl.seams import Embedder, Finetuner, Generator, Learner


def approximate_token_count(text: str) -> int:
    """About four characters per token: the fallback when no tokenizer is available."""
    return max(1, (len(text) + 3) // 4) if text else 0


@dataclass
class PolicyBundle:
    """What the algorithms receive: the policy behind its seams, plus small utilities."""

    generator: Generator
    learner: Learner | None
    embedder: Embedder
    tokenizer: Any = None
    sync_fn: Callable[[], None] | None = None
    finetuner: Finetuner | None = None
    close_fns: list[Callable[[], None]] = field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` under the policy's tokenizer (an estimate when there is none)."""
        if self.tokenizer is None:
            return approximate_token_count(text)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def sync(self) -> None:
        """Make the generator sample from the learner's current weights.  A no-op when both are the
        same in-process model (``hf``); a weight copy for ``vllm``."""
        if self.sync_fn is not None:
            self.sync_fn()

    def close(self) -> None:
        for fn in reversed(self.close_fns):
            fn()
        self.close_fns.clear()

    def __enter__(self) -> PolicyBundle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sentence_transformer_embedder(path: str) -> Embedder:
    """A sentence-transformers model from a local path (raises BackendUnavailable without the extra)."""
    from gasp_rl.backends.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(path)


def build_embedder(cfg: Config, policy_model: Any = None, tokenizer: Any = None) -> Embedder:
    """``gasp.embedder``: ``policy`` -> mean-pooled policy hidden states when the weights are in this
    process, else (and for ``hash``) character n-gram hashing; anything else is a
    sentence-transformers model path."""
    from gasp_rl.backends.embedder import HashingEmbedder, PolicyEmbedder

    if cfg.gasp.embedder not in ("policy", "hash"):
        return sentence_transformer_embedder(cfg.gasp.embedder)
    if cfg.gasp.embedder == "policy" and policy_model is not None and tokenizer is not None:
        return PolicyEmbedder(policy_model, tokenizer)
    return HashingEmbedder()


def _build_hf(cfg: Config) -> PolicyBundle:
    import tempfile
    from pathlib import Path

    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.backends.trl_finetune import PolicyFinetuner, TrlSFTFinetuner

    policy = HFPolicy.from_config(cfg)
    return PolicyBundle(
        generator=policy,
        learner=policy,
        embedder=build_embedder(cfg, policy.model, policy.tokenizer),
        tokenizer=policy.tokenizer,
        finetuner=(PolicyFinetuner if cfg.warmup.engine == "policy" else TrlSFTFinetuner)(
            policy, Path(tempfile.gettempdir()) / "gasp-rl-sft"
        ),
        close_fns=[policy.close],
    )


def _build_openai(cfg: Config) -> PolicyBundle:
    from gasp_rl.backends.openai_compat import OpenAICompatGenerator, try_load_tokenizer

    tokenizer = try_load_tokenizer(cfg.model)
    generator = OpenAICompatGenerator.from_config(cfg, tokenizer=tokenizer)
    return PolicyBundle(
        generator=generator,
        learner=None,
        embedder=build_embedder(cfg),
        tokenizer=tokenizer,
        close_fns=[generator.close],
    )


def _build_vllm(cfg: Config) -> PolicyBundle:
    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.backends.vllm_backend import VLLMGenerator

    generator = VLLMGenerator.from_config(cfg)
    learner = HFPolicy.from_config(cfg)
    return PolicyBundle(
        generator=generator,
        learner=learner,
        embedder=build_embedder(cfg, learner.model, learner.tokenizer),
        tokenizer=learner.tokenizer,
        sync_fn=lambda: generator.load_weights(learner.model),
        close_fns=[learner.close, generator.close],
    )


def _build_fake(cfg: Config) -> Any:
    from gasp_rl.backends.fake import build_fake_policy

    return build_fake_policy(cfg.run.seed)


_BUILDERS: dict[str, Callable[[Config], Any]] = {
    "hf": _build_hf,
    "openai": _build_openai,
    "vllm": _build_vllm,
    "fake": _build_fake,
}


def build_policy(cfg: Config) -> PolicyBundle:
    """The policy for ``cfg.model.backend`` (``fake`` returns the test double's look-alike bundle).  Raises :class:`~gasp_rl.errors.ModelLoadError` /
    :class:`~gasp_rl.errors.BackendUnavailable` with a one-line reason.

    Backends with torch weights in this process (``hf``, ``vllm``) seed torch's global RNG with
    ``trainer.seed`` first (weight init of anything new, dropout if enabled)."""
    if cfg.model.backend in ("hf", "vllm"):
        import torch

        torch.manual_seed(cfg.trainer.seed)
    return _BUILDERS[cfg.model.backend](cfg)
