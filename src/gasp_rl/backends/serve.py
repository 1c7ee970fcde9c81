"""A minimal OpenAI-compatible HTTP server around any :class:`~gasp_rl.seams.Generator`.

Standard library only (``http.server``).  It serves ``POST /v1/chat/completions`` and ``GET
/v1/models`` - enough for :class:`~gasp_rl.backends.openai_compat.OpenAICompatGenerator` and for
other tools that speak the API - so that one process can hold the embedded model while others
(evaluation, a second experiment) sample from it over 127.0.0.1.  It is also what the tests use to
check the OpenAI backend with a real HTTP round trip.  Requests are handled one at a time (the
generator is not thread-safe and a CPU gains nothing from concurrent forward passes).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from gasp_rl.errors import ContextLengthError
from gasp_rl.seams import Generator, SamplingParams


def _params(body: dict[str, Any]) -> SamplingParams:
    stop = body.get("stop") or []
    return SamplingParams(
        n=int(body.get("n", 1)),
        temperature=float(body.get("temperature", 1.0)),
        top_p=float(body.get("top_p", 1.0)),
        max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 256),
        stop=[stop] if isinstance(stop, str) else list(stop),
        seed=body.get("seed"),
        logprobs=bool(body.get("logprobs")),
    )


def chat_response(generator: Generator, body: dict[str, Any], model_name: str) -> dict[str, Any]:
    """The ``/v1/chat/completions`` answer for a request body (raises ValueError / KeyError on a bad
    request and :class:`ContextLengthError` on an over-long prompt)."""
    messages = body["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ValueError("'messages' must be a list of objects")
    chat = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
    params = _params(body)
    completions = generator.generate([chat], params)[0]
    choices = []
    for i, c in enumerate(completions):
        choice: dict[str, Any] = {
            "index": i,
            "message": {"role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason,
        }
        if params.logprobs and c.logprobs is not None:
            choice["logprobs"] = {
                "content": [{"token": str(t), "logprob": lp} for t, lp in zip(c.token_ids, c.logprobs)]
            }
        choices.append(choice)
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": len(completions[0].prompt_token_ids) if completions else 0,
            "completion_tokens": sum(len(c.token_ids) for c in completions),
        },
    }


def make_server(
    generator: Generator, host: str = "127.0.0.1", port: int = 0, model_name: str = "gasp-rl"
) -> HTTPServer:
    """An :class:`HTTPServer` bound to ``host:port`` (``0`` = any free port: read
    ``server.server_address``).  Call ``serve_forever()`` (or use :func:`serve_in_thread`)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "type": "invalid_request_error"}})

        def do_GET(self) -> None:
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                self._error(404, f"no route {self.path}")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with lock:
                    answer = chat_response(generator, body, model_name)
            except ContextLengthError as e:
                self._error(400, f"maximum context length exceeded: {e}")
            except (ValueError, KeyError, TypeError) as e:
                self._error(400, f"bad request: {type(e).__name__}: {e}")
            except Exception as e:  # the generator failed: report it, keep serving
                self._error(500, f"{type(e).__name__}: {e}")
            else:
                self._send(200, answer)

    return HTTPServer((host, port), Handler)


def serve_in_thread(generator: Generator, host: str = "127.0.0.1", port: int = 0) -> tuple[HTTPServer, str]:
    """Start :func:`make_server` in a daemon thread; returns ``(server, base_url)``.  Stop it with
    ``server.shutdown(); server.server_close()``."""
    server = make_server(generator, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bound_host, bound_port = server.server_address[:2]
    return server, f"http://{bound_host}:{bound_port}/v1"
