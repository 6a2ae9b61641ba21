"""A small local HTTP server speaking the OpenAI chat-completions and Anthropic messages wire formats.

The official SDKs send HTTP through httpx2 (respx cannot intercept it), so the tests point them at this
server instead (OPENAI_BASE_URL / ANTHROPIC_BASE_URL, fake keys). It answers JSON and streaming SSE, text
and tool calls (structured output), and can be told to fail the next requests with 429 / 500 (the SDKs
retry), to answer tool calls with malformed arguments, to hang before answering, to report impossible usage
figures (OpenAI wire format) or to say whatever a hostile `speaker` returns. Answers are a pure function of the request.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAKE_OPENAI_KEY = "sk-test-local-wire-server"
FAKE_ANTHROPIC_KEY = "sk-ant-test-local-wire-server"


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _fill(schema: dict[str, Any], root: dict[str, Any]) -> Any:
    """A value matching a JSON schema: enums' first value, empty-ish scalars, 'text' for strings."""
    ref = schema.get("$ref")
    if isinstance(ref, str):
        schema = root.get("$defs", {}).get(ref.rsplit("/", 1)[-1], {})
    if "anyOf" in schema:
        schema = next((s for s in schema["anyOf"] if s.get("type") != "null"), {})
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {k: _fill(v, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    return "server text"


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _call_id(base: str, index: int) -> str:
    return base if index == 0 else f"{base}_{index}"


def _object(arguments: str) -> dict[str, Any]:
    """Tool arguments as the object Anthropic's wire format carries (text that is not one: a mismatched shape)."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return {"unexpected": "shape"}
    return value if isinstance(value, dict) else {"unexpected": "shape"}


def choose_request(body: dict[str, Any]) -> dict[str, Any] | None:
    """The autonomous lane's request in a body (task "choose"), whichever wire format; None for other requests."""
    for message in body.get("messages", []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        text = (
            content
            if isinstance(content, str)
            else " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
        )
        try:
            request = json.loads(text)
        except ValueError:
            continue
        if isinstance(request, dict) and request.get("task") == "choose":
            return request
    return None


def tool_results(body: dict[str, Any]) -> list[str]:
    """The tool results sent back so far, oldest first, whichever wire format."""
    results: list[str] = []
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "tool":
            results.append(content if isinstance(content, str) else json.dumps(content))
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and part.get("type") == "tool_result":
                    inner = part.get("content")
                    if isinstance(inner, list):
                        inner = " ".join(str(p.get("text", "")) for p in inner if isinstance(p, dict))
                    results.append(str(inner))
    return results


def model_turns(body: dict[str, Any]) -> int:
    """How many answers the model already gave in this conversation."""
    return sum(1 for message in body.get("messages", []) if message.get("role") == "assistant")


def answer_text(body: dict[str, Any]) -> str:
    """The server's wording for a request (deterministic): for a narration request, the decision in its facts (a
    model that says no more than it was given passes the words check); else the task and a digest."""
    user = _last_user_text(body.get("messages", []))
    try:
        request = json.loads(user)
        task = request.get("task", "chat")
    except (ValueError, AttributeError):
        request, task = {}, "chat"
    facts = request.get("facts") if isinstance(request, dict) else None
    if isinstance(facts, dict) and facts.get("decision"):  # a well-behaved model words the decision it was given
        return f"Local model answering a {task} request: {facts['decision']}."
    return f"Local model {body.get('model')} answering a {task} request ({_digest(body)[:10]})."


@dataclass
class WireServer:
    """The running server: its URLs, what it received, and the failures it was told to inject."""

    host: str = "127.0.0.1"
    requests: list[dict[str, Any]] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _malformed: int = 0
    # A hostile or scripted model: the text it answers for a request body (None: the default wording).
    speaker: Callable[[dict[str, Any]], str | None] | None = None
    # A scripted tool caller: the tool calls (name, arguments as JSON text) it answers a request with tools;
    # None: the default (the first or chosen tool, filled from its schema); []: a text answer, no tool call.
    tool_caller: Callable[[dict[str, Any]], list[tuple[str, str]] | None] | None = None
    # A model that hangs on some requests: seconds to wait before answering this body (0: none).
    hang_when: Callable[[dict[str, Any]], float] | None = None
    # A slow model: the next `_delays` answers start after this many seconds each (a provider that hangs).
    _delays: list[float] = field(default_factory=list)
    # A provider that lies about usage: these figures replace the computed ones in every answer.
    usage_override: dict[str, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    @property
    def openai_base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def fail_next(self, status: int, times: int = 1) -> None:
        """The next `times` requests get this HTTP error status (429 and 5xx are retried by the SDKs)."""
        with self._lock:
            self._failures.extend([status] * times)

    def malformed_next(self, times: int = 1) -> None:
        """The next `times` tool-call answers carry arguments that do not match the tool's schema."""
        with self._lock:
            self._malformed += times

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next `times` requests wait `seconds` before any byte of the answer (a hung or overloaded provider)."""
        with self._lock:
            self._delays.extend([seconds] * times)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._failures.clear()
            self._malformed = 0

    def paths(self) -> list[str]:
        return [str(r["path"]) for r in self.requests]

    def start(self) -> WireServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server._handle(self, body)

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-wire-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- dispatch ---------------------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        path = handler.path.split("?", 1)[0]
        with self._lock:
            self.requests.append({"path": path, "body": body, "headers": dict(handler.headers.items())})
            failure = self._failures.pop(0) if self._failures else None
            delay = self._delays.pop(0) if self._delays else 0.0
            malformed = False
            structured = body.get("tools") or (body.get("response_format") or {}).get("type") == "json_schema"
            if failure is None and structured and self._malformed:
                self._malformed -= 1
                malformed = True
        if self.hang_when is not None:
            delay = max(delay, self.hang_when(body))
        if delay:
            time.sleep(delay)
        if failure is not None:
            self._error(handler, failure, path, dict(handler.headers.items()))
            return
        if path.endswith("/chat/completions"):
            self._openai(handler, body, malformed)
        elif path.endswith("/messages"):
            self._anthropic(handler, body, malformed)
        else:
            self._json(handler, 404, {"error": {"message": f"no route {path}", "type": "not_found"}})

    @staticmethod
    def _json(
        handler: BaseHTTPRequestHandler, status: int, doc: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        raw = json.dumps(doc).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(raw)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        handler.wfile.write(raw)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, path: str, sent: dict[str, str]) -> None:
        kind = "rate_limit_error" if status == 429 else "api_error"
        headers = {"retry-after-ms": "5", "retry-after": "0"}
        message = f"injected {status}"
        if status == 401:  # like providers that quote the credential they refuse: the key comes back in the body
            key = sent.get("x-api-key") or sent.get("authorization", "").removeprefix("Bearer ")
            kind, message = "authentication_error", f"Incorrect API key provided: {key}. Check the key and retry."
        if path.endswith("/messages"):
            doc: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}}
        else:
            doc = {"error": {"message": message, "type": kind, "code": str(status)}}
        self._json(handler, status, doc, headers)

    def _spoken(self, body: dict[str, Any]) -> str:
        scripted = self.speaker(body) if self.speaker is not None else None
        return scripted if scripted is not None else answer_text(body)

    @staticmethod
    def _sse(handler: BaseHTTPRequestHandler, events: Iterator[tuple[str | None, dict[str, Any] | str]]) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("cache-control", "no-cache")
        handler.send_header("connection", "close")
        handler.end_headers()
        for name, data in events:
            line = (
                (f"event: {name}\n" if name else "") + "data: " + (data if isinstance(data, str) else json.dumps(data))
            )
            handler.wfile.write((line + "\n\n").encode())
            handler.wfile.flush()
        handler.close_connection = True

    # ----- OpenAI chat completions ------------------------------------------------------------------------

    def _scripted_tools(self, body: dict[str, Any]) -> list[tuple[str, str]] | None:
        return self.tool_caller(body) if self.tool_caller is not None and body.get("tools") else None

    @staticmethod
    def _openai_tool(body: dict[str, Any], malformed: bool) -> tuple[str, str]:
        tools = body["tools"]
        choice = body.get("tool_choice")
        tool = tools[0]["function"]
        if isinstance(choice, dict):
            wanted = choice.get("function", {}).get("name")
            tool = next((t["function"] for t in tools if t["function"]["name"] == wanted), tool)
        parameters = tool.get("parameters", {})
        args = {"unexpected": "shape"} if malformed else _fill(parameters, parameters)
        return tool["name"], json.dumps(args, sort_keys=True)

    def _openai(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], malformed: bool) -> None:
        model = str(body.get("model"))
        prompt = _tokens(json.dumps(body.get("messages", [])))
        call_id = "chatcmpl-" + _digest(body)[:20]
        text = self._spoken(body)
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":  # structured output without tools
            schema = response_format.get("json_schema", {}).get("schema", {})
            text = json.dumps({"unexpected": "shape"} if malformed else _fill(schema, schema), sort_keys=True)
        scripted = self._scripted_tools(body)
        calls = scripted if scripted is not None else [self._openai_tool(body, malformed)] if body.get("tools") else []
        tool = calls[0] if calls else None
        completion = _tokens("".join(c[1] for c in calls) if calls else text)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        if self.usage_override is not None:
            usage = {**usage, **self.usage_override}
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": None if tool else text}
            if tool:
                message["tool_calls"] = [
                    {
                        "id": _call_id("call_" + call_id[-12:], i),
                        "type": "function",
                        "function": {"name": name, "arguments": arguments},
                    }
                    for i, (name, arguments) in enumerate(calls)
                ]
            doc = {
                "id": call_id,
                "object": "chat.completion",
                "created": 1_700_000_000,
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if tool else "stop"}],
                "usage": usage,
            }
            self._json(handler, 200, doc)
            return

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": call_id,
                "object": "chat.completion.chunk",
                "created": 1_700_000_000,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        def events() -> Iterator[tuple[str | None, dict[str, Any] | str]]:
            yield None, chunk({"role": "assistant", "content": ""})
            for i, (name, arguments) in enumerate(calls):
                head = {"index": i, "id": _call_id("call_" + call_id[-12:], i), "type": "function"}
                yield None, chunk({"tool_calls": [{**head, "function": {"name": name, "arguments": ""}}]})
                half = len(arguments) // 2
                for part in (arguments[:half], arguments[half:]):
                    yield None, chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
            if not calls:
                for word in text.split(" "):
                    yield None, chunk({"content": word + " "})
            yield None, chunk({}, "tool_calls" if tool else "stop")
            if (body.get("stream_options") or {}).get("include_usage"):
                yield None, {**chunk({}), "choices": [], "usage": usage}
            yield None, "[DONE]"

        self._sse(handler, events())

    # ----- Anthropic messages -----------------------------------------------------------------------------

    def _anthropic(self, handler: BaseHTTPRequestHandler, body: dict[str, Any], malformed: bool) -> None:
        model = str(body.get("model"))
        prompt = _tokens(json.dumps(body.get("messages", [])) + json.dumps(body.get("system", "")))
        msg_id = "msg_" + _digest(body)[:20]
        text = self._spoken(body)
        tool: tuple[str, dict[str, Any]] | None = None
        scripted = self._scripted_tools(body)
        if scripted is not None:
            calls = [(name, _object(arguments)) for name, arguments in scripted]
        elif body.get("tools"):
            tools = body["tools"]
            choice = body.get("tool_choice") or {}
            chosen = next((t for t in tools if t["name"] == choice.get("name")), tools[0])
            schema = chosen.get("input_schema", {})
            calls = [(chosen["name"], {"unexpected": "shape"} if malformed else _fill(schema, schema))]
        else:
            calls = []
        tool = calls[0] if calls else None
        spoken = "".join(json.dumps(c[1], sort_keys=True) for c in calls) if calls else text
        completion = _tokens(spoken)
        stop = "tool_use" if tool else "end_turn"
        if tool:
            content: list[dict[str, Any]] = [
                {"type": "tool_use", "id": _call_id("toolu_" + msg_id[-12:], i), "name": name, "input": arguments}
                for i, (name, arguments) in enumerate(calls)
            ]
        else:
            content = [{"type": "text", "text": text}]
        if not body.get("stream"):
            doc = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": completion},
            }
            self._json(handler, 200, doc)
            return

        def events() -> Iterator[tuple[str | None, dict[str, Any] | str]]:
            start = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": 1},
            }
            yield "message_start", {"type": "message_start", "message": start}
            for i, block in enumerate(content):
                if block["type"] == "tool_use":
                    start_block = {**block, "input": {}}
                    started = {"type": "content_block_start", "index": i, "content_block": start_block}
                    yield "content_block_start", started
                    raw = json.dumps(block["input"], sort_keys=True)
                    half = len(raw) // 2
                    for part in (raw[:half], raw[half:]):
                        delta = {"type": "input_json_delta", "partial_json": part}
                        yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
                else:
                    started = {"type": "content_block_start", "index": i, "content_block": {"type": "text", "text": ""}}
                    yield "content_block_start", started
                    for word in text.split(" "):
                        delta = {"type": "text_delta", "text": word + " "}
                        yield "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
                yield "content_block_stop", {"type": "content_block_stop", "index": i}
            yield (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": completion},
                },
            )
            yield "message_stop", {"type": "message_stop"}

        self._sse(handler, events())
