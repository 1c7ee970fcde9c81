"""Generation through any OpenAI-compatible server (vLLM serve, SGLang, llama.cpp server, hosted APIs).

Generation only: there is no learner behind a server.  Each of the ``n`` samples of a prompt is its
own request with ``n=1`` (not every server implements ``n``), run concurrently up to
``model.max_concurrency``.  Transient failures (connection refused or reset, timeouts, HTTP 429 and
5xx) are retried with exponential backoff (``model.retry_backoff * 2**attempt``, or the server's
``Retry-After``); anything else fails at once with one clear message:

- server down                -> :class:`ModelLoadError` "... is unreachable ... is it running?"
- garbage (not JSON / no choices) -> :class:`ModelLoadError` "... returned an unexpected response"
- prompt too long (HTTP 400 naming the context) -> :class:`ContextLengthError`
- any other 4xx              -> :class:`ModelLoadError` with the status and the server's message.

Token ids are not part of the OpenAI API and stay empty; log-probs are the server's own (for vLLM,
of the raw model distribution).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from gasp_rl.backends import chat_prompt_text
from gasp_rl.config import Config, ModelConfig
from gasp_rl.errors import ContextLengthError, GaspError, ModelLoadError
from gasp_rl.seams import Chat, Completion, SamplingParams

log = logging.getLogger(__name__)

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_CONTEXT_WORDS = ("context length", "context window", "maximum context", "too long", "exceeds the")


class _Retryable(Exception):
    """A failure worth another attempt; carries the message used if attempts run out."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def try_load_tokenizer(cfg: ModelConfig) -> Any:
    """The tokenizer of ``cfg.name_or_path`` if it can be had locally (for token counting and for the
    ``completions`` API's chat rendering), else None."""
    try:
        from transformers import AutoTokenizer

        from gasp_rl.backends.embedded import resolve_model_path

        return AutoTokenizer.from_pretrained(
            resolve_model_path(cfg.name_or_path, cfg.cache_dir),
            trust_remote_code=cfg.trust_remote_code,
            local_files_only=True,  # optional: never wait on the network for it
        )
    except Exception as e:  # no local copy: fine for the chat API
        log.info("no local tokenizer for %s (%s)", cfg.name_or_path, e)
        return None


def _seed(base: int, prompt: int, sample: int) -> int:
    """Per-request seed, kept within int32 because some servers reject larger ones."""
    return (base * 1_000_003 + prompt * 7_919 + sample) % (2**31 - 1)


class OpenAICompatGenerator:
    """:class:`~gasp_rl.seams.Generator` over HTTP."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        api: str = "chat",
        max_concurrency: int = 8,
        timeout: float = 120.0,
        max_retries: int = 3,
        retry_backoff: float = 0.5,
        tokenizer: Any = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if api not in ("chat", "completions"):
            raise ValueError(f"api must be 'chat' or 'completions', got {api!r}")
        if api == "completions" and (tokenizer is None or tokenizer.chat_template is None):
            raise ModelLoadError(
                "model.api=completions renders chats with the model's chat template, but no local "
                f"tokenizer with a template was found for {model!r}; use model.api=chat"
            )
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api = api
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.tokenizer = tokenizer
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency),
        )

    @classmethod
    def from_config(cls, cfg: Config, tokenizer: Any = None) -> OpenAICompatGenerator:
        m = cfg.model
        return cls(
            base_url=m.base_url,
            model=m.server_model or m.name_or_path,
            api_key=m.api_key,
            api=m.api,
            max_concurrency=m.max_concurrency,
            timeout=m.request_timeout,
            max_retries=m.max_retries,
            retry_backoff=m.retry_backoff,
            tokenizer=tokenizer,
        )

    # ------------------------------------------------------------------------------ requests
    def _payload(self, chat: Chat, params: SamplingParams, seed: int | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": 1,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if seed is not None:
            body["seed"] = seed
        if self.api == "chat":
            body["messages"] = chat
            if chat and chat[-1]["role"] == "assistant":  # prefill: continue it (vLLM's server
                body["continue_final_message"] = True  # needs these two; llama.cpp does it anyway)
                body["add_generation_prompt"] = False
            if params.logprobs:
                body["logprobs"] = True
        else:
            body["prompt"] = chat_prompt_text(self.tokenizer, chat)
            if params.logprobs:
                body["logprobs"] = 1
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST with retries; the parsed JSON body of a 200 answer."""
        path = "/chat/completions" if self.api == "chat" else "/completions"
        last = ""
        for attempt in range(self.max_retries + 1):
            try:
                return self._post_once(path, body)
            except _Retryable as e:
                last = str(e)
                if attempt == self.max_retries:
                    break
                wait = e.wait if e.wait is not None else self.retry_backoff * 2**attempt
                log.warning(
                    "%s (attempt %d/%d), retrying in %.1fs", last, attempt + 1, self.max_retries + 1, wait
                )
                time.sleep(wait)
        raise ModelLoadError(f"{last} (gave up after {self.max_retries + 1} attempts)")

    def _post_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            resp = self._client.post(path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            raise _Retryable(
                f"OpenAI-compatible server at {url} is unreachable ({e}); is it running?"
            ) from None
        except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as e:
            raise _Retryable(f"request to {url} failed: {type(e).__name__}: {e}") from None
        if resp.status_code in _RETRY_STATUS:
            wait = _retry_after(resp)
            raise _Retryable(f"server at {url} answered HTTP {resp.status_code}: {_snippet(resp.text)}", wait)
        if resp.status_code >= 400:
            message = _snippet(resp.text)
            if resp.status_code in (400, 413) and any(w in message.lower() for w in _CONTEXT_WORDS):
                raise ContextLengthError(f"server at {url} rejected the prompt as too long: {message}")
            raise ModelLoadError(
                f"server at {url} rejected the request with HTTP {resp.status_code}: {message}"
            )
        try:
            data = resp.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            raise ModelLoadError(
                f"server at {url} returned an unexpected response (not JSON): {_snippet(resp.text)}"
            ) from None
        if not isinstance(data, dict):
            raise ModelLoadError(f"server at {url} returned an unexpected response: {_snippet(resp.text)}")
        return data

    def _parse(self, data: dict[str, Any]) -> Completion:
        try:
            choice = data["choices"][0]
            if self.api == "chat":
                text = choice["message"]["content"] or ""
                content = (choice.get("logprobs") or {}).get("content") or []
                logprobs = [float(t["logprob"]) for t in content] or None
            else:
                text = choice["text"]
                logprobs = (choice.get("logprobs") or {}).get("token_logprobs") or None
                logprobs = [float(x) for x in logprobs] if logprobs else None
            finish = choice.get("finish_reason") or "stop"
        except (KeyError, IndexError, TypeError, ValueError) as e:
            raise ModelLoadError(
                f"server at {self.base_url} returned an unexpected response ({type(e).__name__}: {e}): "
                f"{_snippet(json.dumps(data))}"
            ) from None
        if not isinstance(text, str):
            raise ModelLoadError(
                f"server at {self.base_url} returned non-text content: {_snippet(str(text))}"
            )
        return Completion(
            text=text, logprobs=logprobs, finish_reason="length" if finish == "length" else "stop"
        )

    # ------------------------------------------------------------------------------ seam
    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        """``params.n`` completions per prompt, requested concurrently; order is preserved."""
        jobs = [(p, s) for p in range(len(prompts)) for s in range(params.n)]

        def run(job: tuple[int, int]) -> Completion:
            p, s = job
            seed = None if params.seed is None else _seed(params.seed, p, s)
            completion = self._parse(self._post(self._payload(prompts[p], params, seed)))
            if not params.logprobs:
                completion.logprobs = None
            return completion

        results: list[list[Completion]] = [[] for _ in prompts]
        if not jobs:
            return results
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(jobs))) as pool:
            futures = [pool.submit(run, job) for job in jobs]
            try:
                for (p, _), fut in zip(jobs, futures):
                    results[p].append(fut.result())
            except GaspError:
                for f in futures:
                    f.cancel()
                raise
        return results

    def check(self) -> list[str]:
        """The model names the server lists at ``/models`` (raises :class:`ModelLoadError` if down)."""
        try:
            resp = self._client.get("/models")
            resp.raise_for_status()
            return [m["id"] for m in resp.json()["data"]]
        except httpx.HTTPError as e:
            raise ModelLoadError(f"OpenAI-compatible server at {self.base_url} is unreachable: {e}") from None
        except (ValueError, KeyError, TypeError) as e:
            raise ModelLoadError(
                f"server at {self.base_url} returned an unexpected /models answer: {e}"
            ) from None

    def close(self) -> None:
        self._client.close()


def _snippet(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return min(float(value), 30.0) if value is not None else None
    except ValueError:
        return None
