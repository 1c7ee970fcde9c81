"""vLLM generation (the ``vllm`` extra, GPU only): offline ``LLM.generate`` plus weight refresh.

The learner stays the HF one (:class:`~gasp_rl.backends.hf.HFPolicy` on the GPU); after each
update :meth:`VLLMGenerator.load_weights` copies its parameters into the vLLM engine, which is what
:meth:`~gasp_rl.backends.factory.PolicyBundle.sync` calls.  Log-probs are vLLM's, of the raw model
distribution, so they play the same role as the HF generator's.
"""

from __future__ import annotations

from typing import Any

from gasp_rl.backends import chat_prompt_text
from gasp_rl.backends.embedded import resolve_model_path
from gasp_rl.config import Config
from gasp_rl.errors import BackendUnavailable, ContextLengthError, ModelLoadError
from gasp_rl.seams import Chat, Completion, SamplingParams


def _vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise BackendUnavailable(
            "model.backend=vllm needs vLLM and a CUDA GPU: pip install 'gasp-rl[vllm]'"
        ) from None
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable("model.backend=vllm needs a CUDA GPU; none is visible")
    return vllm


class VLLMGenerator:
    """:class:`~gasp_rl.seams.Generator` over an in-process ``vllm.LLM``."""

    def __init__(
        self, model_path: str, max_context: int, dtype: str = "auto", seed: int = 0, **engine: Any
    ) -> None:
        vllm = _vllm()
        self._vllm = vllm
        try:
            self.llm = vllm.LLM(model=model_path, max_model_len=max_context, dtype=dtype, seed=seed, **engine)
        except Exception as e:
            raise ModelLoadError(f"vLLM could not load {model_path}: {type(e).__name__}: {e}") from None
        self.tokenizer = self.llm.get_tokenizer()
        self.max_context = max_context

    @classmethod
    def from_config(cls, cfg: Config) -> VLLMGenerator:
        path = resolve_model_path(cfg.model.name_or_path, cfg.model.cache_dir)
        dtype = "auto" if cfg.model.dtype == "auto" else cfg.model.dtype
        return cls(path, cfg.model.max_context, dtype=dtype, seed=cfg.run.seed)

    def _sampling(self, params: SamplingParams) -> Any:
        return self._vllm.SamplingParams(
            n=params.n,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            seed=params.seed,
            logprobs=0 if params.logprobs else None,
        )

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        texts = [chat_prompt_text(self.tokenizer, c) for c in prompts]
        for i, t in enumerate(texts):
            n = len(self.tokenizer(t, add_special_tokens=False)["input_ids"])
            if n >= self.max_context:
                raise ContextLengthError(
                    f"prompt {i} has {n} tokens but the context window is {self.max_context}"
                )
        outputs = self.llm.generate(texts, self._sampling(params), use_tqdm=False)
        return [[_completion(o, out) for o in out.outputs] for out in outputs]

    def load_weights(self, model: Any) -> None:
        """Copy a torch model's parameters (same architecture) into the engine."""
        weights = list(model.state_dict().items())

        def load(m: Any) -> None:
            m.load_weights(weights)

        if hasattr(self.llm, "apply_model"):  # vLLM >= 0.9
            self.llm.apply_model(load)
        else:  # older single-process engines
            load(self.llm.llm_engine.model_executor.driver_worker.model_runner.model)
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()

    def close(self) -> None:
        del self.llm


def _completion(o: Any, out: Any) -> Completion:
    logprobs = None
    if o.logprobs is not None:
        logprobs = [float(step[tok].logprob) for tok, step in zip(o.token_ids, o.logprobs)]
    return Completion(
        text=o.text,
        token_ids=list(o.token_ids),
        logprobs=logprobs,
        prompt_token_ids=list(out.prompt_token_ids or []),
        finish_reason="length" if o.finish_reason == "length" else "stop",
    )
