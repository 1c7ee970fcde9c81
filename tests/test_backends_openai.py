"""The OpenAI-compatible generator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from gasp_rl.backends import openai_compat as openai_mod
from gasp_rl.backends.openai_compat import OpenAICompatGenerator
from gasp_rl.backends.serve import serve_in_thread
from gasp_rl.errors import ContextLengthError, ModelLoadError
from gasp_rl.seams import Chat, Completion, Generator, SamplingParams

CHAT: Chat = [{"role": "user", "content": "What is 2 + 2?"}]
Responder = Callable[[dict[str, Any], int], tuple[int, bytes]]


@pytest.fixture
def http_server() -> Iterator[Callable[[Responder], str]]:
    """Start a real HTTP server whose answers come from a responder(body, request_number)."""
    servers: list[HTTPServer] = []

    def start(responder: Responder) -> str:
        count = {"n": 0}
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    count["n"] += 1
                    n = count["n"]
                status, data = responder(body, n)
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        server = HTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


def _ok(text: str, finish: str = "stop") -> bytes:
    return json.dumps(
        {"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": finish}]}
    ).encode()


def _gen(url: str, **kw: Any) -> OpenAICompatGenerator:
    kw.setdefault("retry_backoff", 0.01)
    return OpenAICompatGenerator(url, "m", **kw)


def test_round_trip_sends_the_request_and_keeps_order(http_server) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any], n: int) -> tuple[int, bytes]:
        seen.append(body)
        return 200, _ok(f"{body['messages'][0]['content']}|{body['seed']}", "length")

    gen = _gen(http_server(responder), max_concurrency=3)
    assert isinstance(gen, Generator)
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    params = SamplingParams(n=2, temperature=0.7, max_new_tokens=9, stop=["\n"], seed=4)
    out = gen.generate(chats, params)
    assert [[c.text.split("|")[0] for c in row] for row in out] == [["q0", "q0"], ["q1", "q1"], ["q2", "q2"]]
    assert all(c.finish_reason == "length" for row in out for c in row)
    # the two samples of a prompt get distinct seeds; the request carries the sampling parameters
    assert out[0][0].text != out[0][1].text
    assert len(seen) == 6
    assert {(b["temperature"], b["max_tokens"], b["n"], tuple(b["stop"])) for b in seen} == {
        (0.7, 9, 1, ("\n",))
    }
    gen.close()


def test_a_prefilled_chat_asks_the_server_to_continue_it(http_server) -> None:  # type: ignore[no-untyped-def]
    seen: list[dict[str, Any]] = []

    def responder(body: dict[str, Any], n: int) -> tuple[int, bytes]:
        seen.append(body)
        return 200, _ok("x):")

    gen = _gen(http_server(responder))
    user = [{"role": "user", "content": "q"}]
    prefilled = [*user, {"role": "assistant", "content": "```python\ndef f("}]
    gen.generate([user, prefilled], SamplingParams(n=1))
    plain, cont = sorted(seen, key=lambda b: len(b["messages"]))
    assert "continue_final_message" not in plain and "add_generation_prompt" not in plain
    assert cont["messages"] == prefilled
    assert (cont["continue_final_message"], cont["add_generation_prompt"]) == (True, False)
    gen.close()


def test_retries_transient_errors_then_succeeds(http_server) -> None:  # type: ignore[no-untyped-def]
    def responder(body: dict[str, Any], n: int) -> tuple[int, bytes]:
        return (503, b"busy") if n <= 2 else (200, _ok("fine"))

    out = _gen(http_server(responder), max_retries=3).generate([CHAT], SamplingParams())
    assert out[0][0].text == "fine"


def test_gives_up_after_retries_with_a_clear_error(http_server) -> None:  # type: ignore[no-untyped-def]
    url = http_server(lambda body, n: (500, b"internal trouble"))
    with pytest.raises(ModelLoadError, match=r"HTTP 500: internal trouble \(gave up after 3 attempts\)"):
        _gen(url, max_retries=2).generate([CHAT], SamplingParams())


def test_garbage_answer_is_a_clear_error(http_server) -> None:  # type: ignore[no-untyped-def]
    url = http_server(lambda body, n: (200, b"<html>not json</html>"))
    with pytest.raises(ModelLoadError, match="unexpected response \\(not JSON\\)"):
        _gen(url).generate([CHAT], SamplingParams())
    url2 = http_server(lambda body, n: (200, b'{"choices": []}'))
    with pytest.raises(ModelLoadError, match="unexpected response"):
        _gen(url2).generate([CHAT], SamplingParams())


def test_client_errors_are_not_retried(http_server) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []

    def responder(body: dict[str, Any], n: int) -> tuple[int, bytes]:
        calls.append(n)
        return 404, b'{"error": {"message": "model m does not exist"}}'

    with pytest.raises(ModelLoadError, match="HTTP 404.*does not exist"):
        _gen(http_server(responder), max_retries=3).generate([CHAT], SamplingParams())
    assert calls == [1]
    url = http_server(lambda b, n: (400, b"This model's maximum context length is 2048 tokens"))
    with pytest.raises(ContextLengthError):
        _gen(url).generate([CHAT], SamplingParams())


def test_server_down_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waits: list[float] = []
    monkeypatch.setattr(openai_mod.time, "sleep", waits.append)  # the backoff, not wall time
    with pytest.raises(ModelLoadError, match=r"unreachable .*is it running\? \(gave up after 2 attempts\)"):
        _gen(f"http://127.0.0.1:{port}/v1", max_retries=1).generate([CHAT], SamplingParams())
    assert waits == [0.01]  # one retry after retry_backoff * 2**0 (0.01 in _gen), then the error


def test_completions_api_needs_a_chat_template() -> None:
    with pytest.raises(ModelLoadError, match="chat template"):
        OpenAICompatGenerator("http://127.0.0.1:1/v1", "m", api="completions", tokenizer=None)


class _Echo:
    """A scripted generator for the serve module: echoes the last user message."""

    def generate(self, prompts: list[Chat], params: SamplingParams) -> list[list[Completion]]:
        return [
            [
                Completion(text=p[-1]["content"][::-1], token_ids=[1, 2], logprobs=[-0.5, -0.25])
                for _ in range(params.n)
            ]
            for p in prompts
        ]


def test_serve_module_round_trip_with_logprobs() -> None:
    server, url = serve_in_thread(_Echo())
    try:
        gen = _gen(url)
        assert gen.check() == ["gasp-rl"]
        out = gen.generate([CHAT], SamplingParams(n=2, logprobs=True))
        assert [c.text for c in out[0]] == ["?2 + 2 si tahW"] * 2
        assert out[0][0].logprobs == [-0.5, -0.25]
        assert gen.generate([CHAT], SamplingParams())[0][0].logprobs is None
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_round_trip_to_the_embedded_model_served_over_http() -> None:
    from gasp_rl.backends.hf import HFPolicy
    from gasp_rl.config import Config

    cfg = Config()
    cfg.model.max_context = 128
    # float32: the server batches requests differently, and bf16 numerics depend on batch shape
    cfg.generation.bf16_autocast = False
    policy = HFPolicy.from_config(cfg)
    server, url = serve_in_thread(policy)
    try:
        gen = _gen(url, max_concurrency=2)
        params = SamplingParams(n=2, temperature=0.0, max_new_tokens=12, logprobs=True)
        remote = gen.generate([CHAT], params)[0]
        local = policy.generate([CHAT], params)[0]
        assert [c.text for c in remote] == [c.text for c in local]
        assert remote[0].logprobs == pytest.approx(local[0].logprobs, abs=1e-4)
        with pytest.raises(ContextLengthError):
            gen.generate([[{"role": "user", "content": "word " * 300}]], SamplingParams(max_new_tokens=4))
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.llamacpp
@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llama_cpp_server_serving_the_embedded_gguf() -> None:  # pragma: no cover - needs the extra
    import subprocess
    import sys

    from gasp_rl.backends.embedded import embedded_gguf_path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf_path()), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        gen = _gen(f"http://127.0.0.1:{port}/v1", max_retries=8, retry_backoff=0.5)
        out = gen.generate([CHAT], SamplingParams(n=2, max_new_tokens=16, seed=1))
        assert len(out[0]) == 2 and all(isinstance(c.text, str) for c in out[0])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
