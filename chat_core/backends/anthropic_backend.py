"""Claude through the official `anthropic` SDK, with its errors translated once, here."""

from __future__ import annotations

import os
from typing import Iterator, Sequence

import anthropic
import httpx2

from .. import errors
from ..content import IMAGE, Citation, CitationFound, Thinking, ThinkingChunk, ToolStatus, api_content
from ..conversation import Message
from ..thinking import OFF, thinking_params
from ..usage import Usage
from ..window import estimate_tokens
from .base import Backend, Notify, Reply
from .claude_env import DEFAULT_MODEL, has_credential, prompt_cache_default  # noqa: F401 (re-exported)

# Automatic prompt caching: the API puts the breakpoint on the last cacheable block.
CACHE_CONTROL = {"type": "ephemeral"}
# Claude's server tools, when a conversation turns them on: it searches and fetches on its own.
WEB_TOOLS = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
             {"type": "web_fetch_20250910", "name": "web_fetch", "max_uses": 5}]
PAUSES = 5  # a turn Claude pauses (pause_turn, a long server-tool loop) is continued at most this often
# Counting a stopped reply's tokens must not hold up the stop: one quick try, else a local estimate.
COUNT_TIMEOUT_S = 3.0


def make_client() -> anthropic.Anthropic:
    """A client with the SDK's own defaults: it reads ANTHROPIC_API_KEY and
    ANTHROPIC_BASE_URL itself, so gateways and compatible servers just work."""
    return anthropic.Anthropic()


class AnthropicBackend(Backend):
    name = "anthropic"

    def __init__(
        self, model: str = DEFAULT_MODEL, client: anthropic.Anthropic | None = None, prompt_cache: bool | None = None
    ):
        """`prompt_cache` None takes `prompt_cache_default(os.environ)`; a face may
        flip the `prompt_cache` attribute at any time, the next request follows it."""
        super().__init__(model or DEFAULT_MODEL)
        self.client = client if client is not None else make_client()
        self.prompt_cache = prompt_cache_default(os.environ) if prompt_cache is None else prompt_cache
        self.thinking = OFF  # extended thinking: off, low, medium, high (chat_core.thinking); a face may flip it
        self.web = False  # Claude's web search and fetch tools (WEB_TOOLS)
        self._message_overhead: int | None = None  # what any message costs, by count_tokens

    def _has_credential(self) -> bool:
        client = self.client
        return bool(client.api_key or client.auth_token or getattr(client, "credentials", None))

    def _chunks(
        self,
        system: str,
        messages: Sequence[Message],
        max_tokens: int,
        reply: Reply,
        note: Notify,
    ) -> Iterator[str]:
        if not self._has_credential():
            raise errors.NoCredentialError(
                f"No Anthropic API key is set: export ANTHROPIC_API_KEY, or {errors.USE_LOCAL_MODEL}."
            )
        stream = None
        # Documents (PDFs, text files) are sent with citations on: all of them, as the API requires.
        cite = any(a.kind != IMAGE for m in messages for a in m.attachments)
        extra, max_tokens = thinking_params(self.model, self.thinking, max_tokens)
        if self.web:
            extra["tools"] = WEB_TOOLS
        sent = [{"role": m.role, "content": api_content(m.role, m.text, m.attachments, m.thinking, cite)}
                for m in messages]
        done = Usage()  # what the turns before a pause used
        try:
            for pause in range(PAUSES + 1):
                with self.client.messages.stream(
                    model=self.model,
                    max_tokens=max_tokens,
                    system=system,
                    messages=sent,
                    cache_control=CACHE_CONTROL if self.prompt_cache else anthropic.omit,
                    **extra,
                ) as stream:
                    yield from _events(stream, reply)
                    final = stream.get_final_message()
                if final.stop_reason != "pause_turn" or pause == PAUSES:
                    break
                # Paused mid-turn (a long search): continue it, sending what it wrote so far back as it is.
                done = done + _usage(final.usage)
                sent = sent + [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]}]
            reply.model = final.model or self.model
            reply.thinking = [Thinking(b.thinking, b.signature) if b.type == "thinking" else Thinking(redacted=b.data)
                              for b in final.content if b.type in ("thinking", "redacted_thinking")]  # exactly as sent
            reply.stop_reason = final.stop_reason
            reply.usage = done + _usage(final.usage)
            if final.stop_reason is None:
                raise errors.ConnectionLostError(
                    "The reply ended before Claude finished it; the partial reply is kept. Send again to retry."
                )
            reply.complete = True
        except errors.ChatError:
            raise
        except (anthropic.APIError, httpx2.HTTPError) as exc:
            raise translate(exc, self.model, self.client) from None
        finally:
            if stream is not None and not reply.complete and _take_usage(reply, stream):
                thought = "".join(t.text for t in reply.thinking)
                reply.usage.output_tokens = self.estimate_output_tokens(thought + reply.text)

    def estimate_output_tokens(self, text: str) -> int:
        """The tokens `text` takes, for a reply cut before Claude sent its count: Claude's own
        count of it (`messages.count_tokens`, free) less the fixed cost of a message, or,
        when that cannot be had quickly, about 4 characters a token. An estimate either way
        (see `chat_core.backends.output_estimated`)."""
        if not text.strip():
            return 0
        client = self.client.with_options(timeout=COUNT_TIMEOUT_S, max_retries=0)
        try:
            if self._message_overhead is None:
                # A one-character message: its count less one token is what any message costs.
                self._message_overhead = _count(client, self.model, ".") - 1
            return max(1, _count(client, self.model, text) - self._message_overhead)
        except (anthropic.APIError, httpx2.HTTPError):
            return estimate_tokens(text)


def _events(stream, reply: Reply) -> Iterator[object]:
    """The reply's text chunks and its other events (chat_core.content), from the SDK's stream;
    thinking blocks and citations are kept in `reply` as they come. A cited passage of the text
    ends with its sources' numbers ("[1]"), part of the text as stored and shown."""
    cited: list[int] = []  # the numbers cited by the text block being written
    for event in stream:
        kind = event.type
        if kind == "text":
            yield event.text
        elif kind == "content_block_start" and event.content_block.type in ("thinking", "redacted_thinking"):
            block = event.content_block
            reply.thinking.append(Thinking() if block.type == "thinking" else Thinking(redacted=block.data))
        elif kind == "thinking" and reply.thinking:
            reply.thinking[-1].text += event.thinking
            yield ThinkingChunk(event.thinking)
        elif kind == "signature" and reply.thinking:
            reply.thinking[-1].signature = event.signature
        elif kind == "citation":
            citation = _citation(event.citation, reply.citations)
            if citation.number > len(reply.citations):
                reply.citations.append(citation)
                yield CitationFound(citation)
            if citation.number not in cited:
                cited.append(citation.number)
        elif kind == "content_block_stop" and event.content_block.type == "server_tool_use":
            used = event.content_block
            what = used.input.get("query") or used.input.get("url") or ""
            yield ToolStatus(f"{'Searching' if used.name == 'web_search' else 'Fetching'}: {what}")
        elif kind == "content_block_stop" and cited:
            yield "".join(f"[{number}]" for number in cited)
            cited = []


def _citation(raw, known: list[Citation]) -> Citation:
    """The citation `raw` (an SDK citation), numbered in the order first cited: a passage cited
    before keeps its number."""
    pages = (raw.start_page_number, raw.end_page_number) if raw.type == "page_location" else (None, None)
    citation = Citation(len(known) + 1, raw.cited_text, getattr(raw, "document_index", 0),
                        getattr(raw, "document_title", None) or getattr(raw, "title", None), *pages,
                        url=getattr(raw, "url", None))
    key = (citation.document_index, citation.cited_text, citation.start_page)
    return next((c for c in known if (c.document_index, c.cited_text, c.start_page) == key), citation)


def _count(client: anthropic.Anthropic, model: str, text: str) -> int:
    return client.messages.count_tokens(model=model, messages=[{"role": "user", "content": text}]).input_tokens


def _usage(usage) -> Usage:
    server = getattr(usage, "server_tool_use", None)
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_write_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_tokens=usage.cache_read_input_tokens or 0,
        web_searches=(server.web_search_requests or 0) if server is not None else 0,
    )


def _take_usage(reply: Reply, stream) -> bool:
    """Copy what the stream has counted so far, so a broken or stopped reply still counts.
    True when the output count is missing: message_delta, which carries it, never came
    (message_start's placeholder says 1 however much was written)."""
    # The public `current_message_snapshot` asserts that message_start arrived; this one does not.
    snapshot = stream._current_snapshot_or_none()
    if snapshot is None:
        return bool(reply.text)
    reply.usage = _usage(snapshot.usage)
    reply.model = snapshot.model or reply.model
    return snapshot.stop_reason is None


_STATUS_WORDS = {
    "overloaded_error": "Claude is overloaded right now",
    "rate_limit_error": "Claude's rate limit was reached",
    "api_error": "Claude had an internal error",
}


def translate(exc: Exception, model: str, client: anthropic.Anthropic) -> errors.ChatError:
    """One human sentence for each provider failure: what happened, what to do."""
    kept = "the partial reply is kept"
    if isinstance(exc, anthropic.APIStatusError):
        code = exc.status_code
        if code == 200:  # an `event: error` inside a streamed reply
            what = _STATUS_WORDS.get(exc.type or "", f"Claude reported an error ({exc.type or 'unknown'})")
            return errors.StreamError(f"{what} and the reply broke off; {kept}. Send again to retry.")
        if isinstance(exc, anthropic.AuthenticationError):
            return errors.AuthError(
                f"Claude rejected the API key (401): check ANTHROPIC_API_KEY, or {errors.USE_LOCAL_MODEL}."
            )
        if isinstance(exc, anthropic.PermissionDeniedError):
            return errors.AuthError(f"This API key may not use {model} (403): pick another model or check the key's workspace.")
        if isinstance(exc, anthropic.NotFoundError):
            return errors.RequestError(f"Claude does not know the model '{model}' (404): {errors.CHOOSE_ANOTHER_MODEL}.")
        if isinstance(exc, anthropic.RateLimitError):
            return errors.RateLimitError("Claude's rate limit was reached (429) and retries did not help: wait a minute, then send again.")
        if isinstance(exc, anthropic.OverloadedError) or code == 529:
            return errors.OverloadedError("Claude is overloaded (529) and retries did not help: try again in a minute.")
        if code == 413 or isinstance(exc, anthropic.ContentTooLargeError):
            return errors.RequestError("The request is too large for Claude (413): lower the window or shorten the message.")
        if code >= 500:
            return errors.ServerError(f"Claude had a server error ({code}) and retries did not help: try again shortly.")
        detail = (exc.api_message or "").rstrip(".")
        return errors.RequestError(f"Claude refused the request ({code}): {detail or 'no reason given'}. Change the message or settings and send again.")
    if isinstance(exc, anthropic.APITimeoutError):
        return errors.TimeoutError_("Claude did not answer in time: check your network, then send again.")
    if isinstance(exc, anthropic.APIConnectionError):
        return errors.ConnectionLostError(
            f"Could not reach Claude at {errors.redact_url(client.base_url)}: check your network or ANTHROPIC_BASE_URL, then send again."
        )
    if isinstance(exc, httpx2.TimeoutException):
        return errors.TimeoutError_(f"Claude stopped sending mid-reply; {kept}. Send again to retry.")
    if isinstance(exc, httpx2.HTTPError):
        return errors.ConnectionLostError(f"The connection to Claude dropped mid-reply; {kept}. Send again to retry.")
    return errors.ChatError(f"Claude's SDK failed ({type(exc).__name__}): send again, or switch to the local model.")
