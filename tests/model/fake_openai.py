"""A real HTTP server on 127.0.0.1 that speaks OpenAI's chat-completions protocol, for the
model tests and ``bench/model.py``. Deterministic; directives in the last user message
steer it:

* ``ANSWER:<text>`` — answer exactly ``<text>``
* ``SLEEP:<seconds>`` — wait that long before answering
* ``RATELIMIT`` — the first request of each idempotency key gets 429 with ``Retry-After: 1``
* ``FAIL500`` — the first request of each idempotency key gets 500
* ``MALFORMED`` — the first request of each idempotency key gets text that is not JSON
* ``ECHOAUTH`` — the answer contains the request's Authorization header (a leaking server)

A prompt containing a key of ``answers`` (given to the constructor) gets its value.

Otherwise, with ``response_format`` json_schema it answers an object built from the
schema (strings from the prompt's first words, integers its word count), else
``echo: <prompt>``. ``usage`` counts words. A model named ``no-structured`` refuses
``json_schema`` with a 400, like servers without structured outputs.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _from_schema(schema: dict[str, Any], words: list[str]) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: _from_schema(sub, words[i:] or words) for i, (name, sub) in enumerate(props.items())}
    if kind == "array":
        return [_from_schema(schema.get("items") or {"type": "string"}, words[i:]) for i in range(3)]
    if kind == "integer":
        return len(words)
    if kind == "number":
        return float(len(words))
    if kind == "boolean":
        return len(words) % 2 == 0
    return " ".join(words[:4]) or "nothing"


class FakeOpenAI:
    """The server; ``calls`` counts completions requests, ``max_in_flight`` the most at once."""

    def __init__(self, answers: dict[str, str] | None = None) -> None:
        self.answers = dict(answers or {})  # a prompt containing KEY is answered VALUE
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests: list[dict[str, Any]] = []  # {"headers" (lower-case names), "body"}
        self.seen_keys: dict[str, int] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, payload = server.answer({k.lower(): v for k, v in self.headers.items()}, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def calls_with(self, text: str) -> int:
        """How many requests had ``text`` in their last message."""
        with self.lock:
            return sum(text in str(r["body"]["messages"][-1]["content"]) for r in self.requests)

    def answer(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        prompt = str((body.get("messages") or [{}])[-1].get("content", ""))
        key = headers.get("idempotency-key", "")
        with self.lock:
            self.calls += 1
            self.requests.append({"headers": headers, "body": body})
            nth = self.seen_keys[key] = self.seen_keys.get(key, 0) + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            sleep = re.search(r"SLEEP:([\d.]+)", prompt)
            if sleep:
                time.sleep(float(sleep.group(1)))
            if "RATELIMIT" in prompt and nth == 1:
                return 429, {"Retry-After": "1"}, {"error": {"message": "slow down", "type": "rate_limit"}}
            if "FAIL500" in prompt and nth == 1:
                return 500, {}, {"error": {"message": "boom", "type": "server_error"}}
            fmt = body.get("response_format") or {}
            if body.get("model") == "no-structured" and fmt.get("type") == "json_schema":
                return 400, {}, {"error": {"message": "response_format json_schema is not supported",
                                           "type": "invalid_request_error", "param": "response_format"}}
            canned = [v for k, v in self.answers.items() if k in prompt]
            text = canned[0] if canned else self._text(prompt, fmt, body, headers, nth)
            words = len(" ".join(str(m.get("content", "")) for m in body.get("messages", [])).split())
            return 200, {}, {
                "id": f"chatcmpl-{self.calls}", "object": "chat.completion", "created": 1700000000,
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": words, "completion_tokens": len(text.split()),
                          "total_tokens": words + len(text.split())}}
        finally:
            with self.lock:
                self.in_flight -= 1

    @staticmethod
    def _text(prompt: str, fmt: dict[str, Any], body: dict[str, Any], headers: dict[str, str], nth: int) -> str:
        if "ECHOAUTH" in prompt:
            return f"your header was {headers.get('authorization')}"
        if "MALFORMED" in prompt and nth == 1:
            return '{"title": "unterminated'
        answer = re.search(r"ANSWER:(.*)", prompt, re.DOTALL)
        if answer:
            return answer.group(1)
        words = re.sub(r"[A-Z]+:\S*", "", prompt).split()
        if fmt.get("type") == "json_schema":
            return json.dumps(_from_schema(fmt["json_schema"]["schema"], words))
        if fmt.get("type") == "json_object":
            schema = json.loads(str(body["messages"][0]["content"]).split("\n", 1)[1])
            return json.dumps(_from_schema(schema, words))
        return "echo: " + " ".join(words)
