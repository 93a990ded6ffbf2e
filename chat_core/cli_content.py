"""The terminal chat's side of content: `/attach PATH`, `/attach`, `/detach`, `/think`, and
how a reply's thinking (dimmed, or only its length with --quiet-thinking) and its sources
(a numbered list after it) are printed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .content import (
    Attachment, AttachmentRefused, Citation, CitationFound, ThinkingChunk, ToolStatus, fit_request, prepare,
    request_bytes,
)
from .terminal_text import printable
from .thinking import LEVELS, OFF, can_think

if TYPE_CHECKING:
    from .cli import Terminal
    from .session import ChatSession

DIM, PLAIN = "\x1b[2m", "\x1b[0m"


class Draft:
    """The files attached to the next message; they go with it, then the list is empty."""

    def __init__(self):
        self.files: list[Attachment] = []

    def attach(self, arg: str, term: "Terminal") -> None:
        """`/attach PATH`: add a file (one line if it is refused); `/attach` alone lists them."""
        if not arg:
            if not self.files:
                term.say("No files attached. /attach PATH adds one to your next message.")
            for attachment in self.files:
                term.say(f"  📎 {attachment.label()}")
            return
        path = Path(arg.strip().strip("'\"")).expanduser()
        try:
            data = path.read_bytes()
        except OSError as exc:
            term.warn(f"{path.name or arg} was not attached: {exc.strerror or 'it cannot be read'}.")
            return
        try:
            attachment = prepare(path.name, data)
        except AttachmentRefused as exc:
            term.warn(exc.message)
            return
        kept, refused = fit_request([attachment], already=request_bytes(self.files))
        for line in refused:
            term.warn(line)
        if kept:
            self.files.append(attachment)
            note = f" ({attachment.note})" if attachment.note else ""
            term.say(f"Attached {attachment.label()}{note}: it goes with your next message "
                     f"({len(self.files)} file{'s' * (len(self.files) != 1)}).")

    def detach(self, term: "Terminal") -> None:
        count, self.files = len(self.files), []
        term.say(f"Detached {count} file{'s' * (count != 1)}." if count else "No files were attached.")

    def take(self) -> list[Attachment]:
        return list(self.files)


def think(session: "ChatSession", arg: str, term: "Terminal") -> None:
    """`/think [off|low|medium|high]`: set extended thinking for this conversation (alone: show it)."""
    level = arg.lower() or None
    if level is None:
        term.say(f"Thinking: {session.settings.thinking}. /think off|low|medium|high changes it.")
        return
    if level not in LEVELS:
        term.warn(f"/think takes one of {', '.join(LEVELS)}; it is now {session.settings.thinking}.")
        return
    session.update(thinking=level)
    if level != OFF and not can_think(session.backend.model):
        term.say(f"Thinking: {level}, but {session.backend.label} does not think: it applies on a Claude model "
                 "that does.")
    else:
        term.say(f"Thinking: {level}.")


def web(session: "ChatSession", arg: str, term: "Terminal") -> None:
    """`/web on|off`: let Claude search and fetch from the web in this conversation (alone: show it)."""
    if arg.lower() not in ("on", "off"):
        if arg:
            term.warn(f"/web takes on or off; it is now {'on' if session.settings.web else 'off'}.")
        else:
            term.say(f"Web search and fetch: {'on' if session.settings.web else 'off'}. /web on|off changes it.")
        return
    session.update(web=arg.lower() == "on")
    term.say(f"Web search and fetch: {arg.lower()}" + (" (each search costs $0.01 and sends its words out)."
                                                       if session.settings.web else "."))


class ReplyPrinter:
    """Prints a reply's stream: its thinking first (dimmed on a terminal, or, quiet, only how long
    it was), then its text; its sources after it."""

    def __init__(self, term: "Terminal", quiet_thinking: bool = False):
        self.term, self.quiet = term, quiet_thinking
        self.thought, self.started, self.thinking = 0, time.monotonic(), False
        self.citations: list[Citation] = []
        self.tty = term.out.isatty()

    def text(self, events: Iterator[object]) -> Iterator[str]:
        """The stream's text chunks, printing its other events as they come."""
        for event in events:
            if isinstance(event, ThinkingChunk):
                self._thinking(event.text)
            elif isinstance(event, CitationFound):
                self.citations.append(event.citation)
            elif isinstance(event, ToolStatus):
                self._end_thinking()
                self.term.say(f"[{event.text}]")
            else:
                self._end_thinking()
                yield event
        self._end_thinking()

    def _thinking(self, text: str) -> None:
        if not self.thinking:
            self.thinking, self.started = True, time.monotonic()
            if not self.quiet:
                self.term.say("Thinking…")
        self.thought += len(text)
        if not self.quiet:
            self.term.out.write((DIM if self.tty else "") + printable(text) + (PLAIN if self.tty else ""))
            self.term.out.flush()

    def _end_thinking(self) -> None:
        if self.thinking:
            self.thinking = False
            seconds = time.monotonic() - self.started
            self.term.say(("\n" if not self.quiet else "") + f"(thought for {seconds:.0f} s, {self.thought:,} characters)")

    def sources(self) -> None:
        """The cited passages, numbered as the reply's markers."""
        if self.citations:
            self.term.say("Sources:")
        for citation in self.citations:
            passage = " ".join(citation.cited_text.split())
            self.term.say(f"  [{citation.number}] {citation.where()}: “{passage}”" + (
                f" <{citation.url}>" if citation.url else ""))
