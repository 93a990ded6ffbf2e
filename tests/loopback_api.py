r"""A loopback HTTP server that speaks the Anthropic Messages streaming wire format.

The real SDK talks to it through ANTHROPIC_BASE_URL. Each request takes the
next queued scenario; with none queued it echoes the last user message, with
input tokens that grow with what was sent, so windowing shows in the counts.
Every request body and its headers are kept in `requests` for assertions.

Prompt caching is billed by the documented rules (see `PromptCache`); a
request without any cache_control is billed as plain input, as before.
`POST /v1/messages/count_tokens` answers the same stand-in count
(`count_tokens`), as the real endpoint counts a request's prompt.

Reply text goes on the wire as JSON with ASCII escapes, as the API sends it, so
a scenario's text may hold what only an escape can carry: `reply("a\ud800b")`
streams a lone surrogate (the escape `\ud800` in the text_delta's JSON), which
a model or a proxy can emit and the SDK hands over as it is.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from chat_core.usage import min_cacheable_tokens

from . import loopback_content as wire

# Tokens every request carries before its first block, in the stand-in tokenizer.
OVERHEAD_TOKENS = 8
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20  # boundaries checked per breakpoint: the breakpoint's own and the 19 before it
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"


@dataclass
class Scenario:
    """What one request gets. kind: reply | http_error | stream_error | cut."""

    kind: str = "reply"
    text: str | None = None  # None: echo the last user message
    chunks: int | None = None  # split the text into this many deltas (default: per word)
    delay: float = 0.0  # seconds before each delta
    status: int = 200
    error_type: str = "api_error"
    headers: dict = field(default_factory=dict)
    stop_reason: str = "end_turn"
    repeat: int = 1  # serve this scenario to this many requests
    message: str | None = None  # an http_error's message (default: "loopback <error_type>")
    thinking: str | None = None  # the thinking streamed when the request asks for it (default: made up)
    search: str | None = None  # a web search for this query first, when the request offers the tool


def reply(text: str | None = None, **kw) -> Scenario:
    return Scenario("reply", text, **kw)


def http_error(status: int, error_type: str, repeat: int = 1, **kw) -> Scenario:
    return Scenario("http_error", status=status, error_type=error_type, repeat=repeat, **kw)


def stream_error(text: str, error_type: str = "overloaded_error") -> Scenario:
    return Scenario("stream_error", text, error_type=error_type)


def cut(text: str) -> Scenario:
    return Scenario("cut", text)


@dataclass(frozen=True)
class Block:
    """One cacheable block of a prompt: the system prompt, or one content block of a message."""

    key: bytes  # what must match exactly for a cache hit: role, position, content (not its cache_control)
    tokens: int
    cache_control: dict | None = None


def _words(text: str) -> int:
    return len(str(text).split())


def prompt_blocks(body: dict) -> list[Block]:
    """The request's prompt as blocks in cache order: system, then each message's blocks.

    A message's first block also carries the message's fixed 3-token overhead.
    """
    blocks = []
    system = body.get("system", "")
    for part in system if isinstance(system, list) else ([{"type": "text", "text": system}] if system else []):
        blocks.append(_block("system", True, part, _words(part.get("text", ""))))
    for message in body.get("messages", []):
        content = message["content"]
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for i, part in enumerate(parts):
            tokens = _words(part.get("text", "")) + wire.block_tokens(part) + (3 if i == 0 else 0)
            blocks.append(_block(message["role"], i == 0, part, tokens))
    return blocks


def _block(role: str, starts_message: bool, part: dict, tokens: int) -> Block:
    content = {name: value for name, value in part.items() if name != "cache_control"}
    key = json.dumps([role, starts_message, content], sort_keys=True).encode()
    return Block(key, tokens, part.get("cache_control"))


def count_tokens(body: dict) -> int:
    """A deterministic stand-in for tokenisation: words plus a fixed overhead."""
    return OVERHEAD_TOKENS + sum(block.tokens for block in prompt_blocks(body))


def _prefixes(model: str, blocks: list[Block]) -> tuple[list[bytes], list[int]]:
    """For each block: a digest of the model and the exact prompt up to and
    including it, and the tokens of that prompt."""
    digest, digests, ends, end = hashlib.sha256(model.encode()), [], [], OVERHEAD_TOKENS
    for block in blocks:
        digest.update(block.key + b"\0")
        digests.append(digest.digest())
        end += block.tokens
        ends.append(end)
    return digests, ends


class TooManyBreakpoints(ValueError):
    """More than 4 cache breakpoints: the API answers 400."""


class PromptCache:
    """Claude's prompt cache, by the documented rules.

    - Breakpoints: every block with cache_control, plus, for a top-level
      cache_control (automatic caching), the last block; at most 4.
    - An entry is the exact prefix up to a breakpoint (system, then the
      messages' blocks in order, for one model). It is written only when that
      prefix reaches the model's minimum cacheable length.
    - A request reads the longest live entry found at a block boundary within
      the 20 boundaries ending at one of its breakpoints.
    - Entries live 5 minutes (1 hour with ttl "1h") from their last write or read.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.entries: dict[bytes, tuple[float, float]] = {}  # prefix digest -> (expires at, ttl)

    def clear(self) -> None:
        self.entries.clear()

    def bill(self, body: dict) -> dict:
        """The usage of `body`'s prompt: uncached input, cache writes and reads; updates the cache."""
        blocks = prompt_blocks(body)
        total = count_tokens(body)
        marks = {i: block.cache_control for i, block in enumerate(blocks) if block.cache_control}
        slots = len(marks) + (1 if body.get("cache_control") else 0)
        if slots > MAX_BREAKPOINTS:
            raise TooManyBreakpoints(f"at most {MAX_BREAKPOINTS} cache breakpoints, found {slots}")
        if body.get("cache_control") and blocks:
            marks.setdefault(len(blocks) - 1, body["cache_control"])
        usage = {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if not marks:
            return usage
        digests, ends = _prefixes(str(body.get("model", "")), blocks)
        now = self.clock()
        live = {i for mark in marks for i in range(max(0, mark - LOOKBACK_BLOCKS + 1), mark + 1)
                if self.entries.get(digests[i], (0.0, 0.0))[0] > now}
        hit = max(live, default=-1)
        read = ends[hit] if hit >= 0 else 0
        if hit >= 0:
            ttl = self.entries[digests[hit]][1]
            self.entries[digests[hit]] = (now + ttl, ttl)
        minimum = min_cacheable_tokens(body.get("model", ""))
        written = [mark for mark in marks if mark > hit and ends[mark] >= minimum]
        for mark in written:
            ttl = TTL_SECONDS[marks[mark].get("ttl", "5m")]
            self.entries[digests[mark]] = (now + ttl, ttl)
        write = ends[max(written)] - read if written else 0
        usage.update(input_tokens=total - read - write, cache_creation_input_tokens=write, cache_read_input_tokens=read)
        return usage


def split_text(text: str, chunks: int | None) -> list[str]:
    if chunks:
        size = max(1, -(-len(text) // chunks))
        return [text[i : i + size] for i in range(0, len(text), size)]
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]


def sse(event: str, data: dict) -> bytes:
    # ASCII escapes, as the API writes them: "\ud800" travels as the six characters \ud800.
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=True)}\n\n".encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that stopped reading (a stop, a killed process) is expected here.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class LoopbackAPI:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.cache = PromptCache(clock)
        self.scenarios: deque[Scenario] = deque()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.count_requests: list[dict] = []  # bodies sent to count_tokens
        self.count_tokens_status = 200  # another status makes count_tokens fail with it
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.split("?")[0] == COUNT_TOKENS_PATH:
                    api._count(self, body)
                    return
                usage = None
                with api._lock:
                    api.requests.append(body)
                    api.headers.append({k.lower(): v for k, v in self.headers.items()})
                    scenario = api._next()
                    try:
                        if length > wire.MAX_REQUEST_BYTES:
                            scenario = http_error(413, "request_too_large", message="Request exceeds the maximum size")
                        wire.check(body)
                        if scenario.kind != "http_error":
                            usage = api.cache.bill(body)
                    except TooManyBreakpoints:  # the API refuses the request; the scenario is spent
                        scenario = http_error(400, "invalid_request_error")
                    except wire.Invalid as exc:
                        scenario = http_error(400, "invalid_request_error", message=str(exc))
                api._serve(self, body, scenario, usage)

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "LoopbackAPI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def queue(self, *scenarios: Scenario) -> None:
        with self._lock:
            self.scenarios.extend(scenarios)

    def reset(self) -> None:
        with self._lock:
            self.scenarios.clear()
            self.requests.clear()
            self.headers.clear()
            self.count_requests.clear()
            self.count_tokens_status = 200
            self.cache.clear()

    def _next(self) -> Scenario:
        if not self.scenarios:
            return reply()
        scenario = self.scenarios[0]
        scenario.repeat -= 1
        if scenario.repeat <= 0:
            self.scenarios.popleft()
        return scenario

    # -- token counting: POST /v1/messages/count_tokens -----------------------

    def _count(self, handler: BaseHTTPRequestHandler, body: dict) -> None:
        """The stand-in tokenizer's count of a request's prompt (`count_tokens`), or the
        error `count_tokens_status` names. Kept apart from `requests` and the scenarios."""
        with self._lock:
            self.count_requests.append(body)
            status = self.count_tokens_status
        if status == 200:
            payload = {"input_tokens": count_tokens(body)}
        else:
            payload = {"type": "error", "error": {"type": "api_error", "message": "loopback count_tokens"}}
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    # -- the wire ------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, body: dict, scenario: Scenario, usage: dict | None) -> None:
        if scenario.kind == "http_error":
            payload = json.dumps(
                {"type": "error", "error": {"type": scenario.error_type,
                                            "message": scenario.message or f"loopback {scenario.error_type}"},
                 "request_id": "req_loopback"}
            ).encode()
            handler.send_response(scenario.status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            handler.send_header("retry-after-ms", "1")
            for name, value in scenario.headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(payload)
            return

        text = scenario.text
        if text is None:
            last = body["messages"][-1]["content"]
            if isinstance(last, list):  # blocks: echo the text, name the rest
                last = " ".join(part.get("text") or f"<{part['type']}>" for part in last)
            text = f"echo: {last}"
        pieces = split_text(text, scenario.chunks)

        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.send_header("request-id", "req_loopback")
        handler.end_headers()

        def write(data: bytes) -> None:
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            handler.wfile.flush()

        try:
            write(sse("message_start", {"type": "message_start", "message": {
                "id": "msg_loopback", "type": "message", "role": "assistant", "content": [],
                "model": body.get("model", "claude-haiku-4-5"), "stop_reason": None, "stop_sequence": None,
                "usage": {**usage, "output_tokens": 1}}}))
            index, thought = 0, []
            if wire.wants_thinking(body):  # a thinking block, signed, before the answer
                thinking = scenario.thinking or f"The user wrote {len(str(body['messages'][-1]['content']))} characters."
                thought = split_text(thinking, None)
                write(sse("content_block_start", {"type": "content_block_start", "index": 0,
                                                  "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
                for piece in thought:
                    if scenario.delay:
                        time.sleep(scenario.delay)
                    write(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                      "delta": {"type": "thinking_delta", "thinking": piece}}))
                write(sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "signature_delta", "signature": wire.sign(thinking)}}))
                write(sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
                index = 1
            searched = scenario.search is not None and wire.wants_search(body)
            if searched:
                for event, data in wire.search_blocks(scenario.search, index):
                    write(sse(event, data))
                index += 2
            write(sse("content_block_start", {"type": "content_block_start", "index": index,
                                              "content_block": {"type": "text", "text": ""}}))
            write(sse("ping", {"type": "ping"}))
            for piece in pieces:
                if scenario.delay:
                    time.sleep(scenario.delay)
                write(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "text_delta", "text": piece}}))
            if scenario.kind == "stream_error":
                write(sse("error", {"type": "error", "error": {"type": scenario.error_type, "message": "loopback"}}))
                write(b"")
                return
            if scenario.kind == "cut":
                # Half a chunk, then the socket closes: an incomplete chunked body.
                handler.wfile.write(b"ff\r\nevent: content_block_delta\n")
                handler.wfile.flush()
                handler.close_connection = True
                return
            write(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            citation = wire.web_citation(scenario.search) if searched else wire.citation_for(body)
            if citation is not None:  # a second text block, citing the first document
                index += 1
                write(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {"type": "text", "text": "", "citations": []}}))
                write(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "citations_delta", "citation": citation}}))
                write(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "text_delta", "text": " The document says so."}}))
                write(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            write(sse("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": scenario.stop_reason, "stop_sequence": None},
                                        "usage": {"output_tokens": max(1, len(pieces)) + len(thought),
                                                  **({"server_tool_use": {"web_search_requests": 1,
                                                                          "web_fetch_requests": 0}}
                                                     if searched else {})}}))
            write(sse("message_stop", {"type": "message_stop"}))
            write(b"")  # the closing zero-length chunk
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (a stop); nothing more to send


def main() -> None:
    """Serve on loopback until killed, printing the base URL: for bench/ and manual runs."""
    import sys

    api = LoopbackAPI().start()
    print(api.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()
        sys.exit(0)


if __name__ == "__main__":
    main()
