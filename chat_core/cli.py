"""The terminal chat: `python -m chat_core`.

Replies stream as they arrive; Ctrl-C stops a reply (the partial text is kept)
and, at the prompt, ends the chat. Works with piped stdin, one message a line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TextIO

from . import errors
from .backends import make_backend
from .config import Settings, settings_from_env
from .conversation import window_label
from .session import ChatSession
from .storage import Store
from .usage import format_cost

HELP = """Commands:
  /help          this list
  /clear         forget this conversation and reset the counters
  /window N      send only the last N exchanges (0 = all)
  /system TEXT   change the persona
  quit, exit     leave (Ctrl-D too; Ctrl-C stops a reply, or leaves at the prompt)"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chat_core", description="Streaming chat with Claude or a bundled local model.")
    parser.add_argument("--backend", choices=["anthropic", "local"], help="default: Claude when ANTHROPIC_API_KEY is set, else local")
    parser.add_argument("--model", help="Claude model name, or for the local backend a GGUF file path")
    parser.add_argument("--system", help="the persona (system prompt)")
    parser.add_argument("--window", type=int, help="past exchanges sent with each message (0 = all)")
    parser.add_argument("--max-tokens", type=int, dest="max_tokens", help="longest reply, in tokens")
    parser.add_argument("--resume", nargs="?", const="last", metavar="ID",
                        help="continue a stored conversation (the most recent without an ID)")
    parser.add_argument("--list", action="store_true", help="list stored conversations and exit")
    return parser.parse_args(argv)


class Terminal:
    """The REPL's output: chat on stdout, notices and errors on stderr."""

    def __init__(self, out: TextIO, err: TextIO):
        self.out, self.err = out, err

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"! {text}", file=self.err, flush=True)


def usage_line(session: ChatSession) -> str:
    record = session.records[-1]
    total = session.totals
    return (
        f"[{record.backend} · {record.model} | {record.usage.input_tokens:,} in · {record.usage.output_tokens:,} out"
        f" | session {total.usage.input_tokens:,} in · {total.usage.output_tokens:,} out"
        f" | cost {format_cost(total.cost_usd)}]"
    )


def command(session: ChatSession, line: str, term: Terminal) -> bool:
    """Run a /command; False when the line is not one."""
    name, _, arg = line.strip().partition(" ")
    arg = arg.strip()
    if name == "/help":
        term.say(HELP)
    elif name == "/clear":
        session.clear()
        term.say("Cleared: new conversation, counters at zero.")
    elif name == "/window":
        if not arg.isdigit():
            term.warn(f"/window takes a whole number of exchanges (0 = all); it is now {session.settings.window}.")
        else:
            session.update(window=int(arg))
            term.say(f"Window: sending {window_label(session.settings.window)}.")
    elif name == "/system":
        if not arg:
            term.say(f"Persona: {session.settings.system}")
        else:
            session.update(system=arg)
            term.say("Persona changed.")
    else:
        return False
    return True


def turn(session: ChatSession, text: str, term: Terminal) -> None:
    """Send one message and stream the reply; failures print one line."""
    try:
        chunks = session.send(text, notify=term.warn)
    except errors.ChatError as exc:
        term.warn(exc.message)
        return
    try:
        for chunk in chunks:
            print(chunk, end="", file=term.out, flush=True)
        term.say("")
    except KeyboardInterrupt:
        term.say("")
        term.warn("Stopped; the partial reply is kept.")
    except errors.ChatError as exc:
        if session.messages[-1].text:
            term.say("")
        term.warn(exc.message)
    finally:
        chunks.close()
    if session.records[-1].stop_reason == "max_tokens":
        term.warn(f"The reply reached the {session.settings.max_tokens}-token limit; raise it with --max-tokens.")
    term.say(usage_line(session))


def repl(session: ChatSession, stdin: TextIO, term: Terminal) -> None:
    interactive = stdin.isatty()
    while True:
        try:
            if interactive:
                line = input("you> ")
            else:
                line = stdin.readline()
                if not line:
                    raise EOFError
                line = line.rstrip("\n")
        except (EOFError, KeyboardInterrupt):
            if interactive:
                term.say("")  # end the prompt's line
            return
        if line.strip().lower() in ("quit", "exit", "/quit", "/exit"):
            return
        if line.startswith("/") and command(session, line, term):
            continue
        if not line.strip():
            continue
        turn(session, line, term)


def list_conversations(store: Store, term: Terminal) -> None:
    conversations = store.list_conversations()
    if not conversations:
        term.say("No stored conversations yet.")
    for c in conversations:
        when = dt.datetime.fromtimestamp(c.updated_at).strftime("%Y-%m-%d %H:%M")
        term.say(f"{c.id:>5}  {when}  {c.backend} · {c.model}  {c.title}")


def build_session(settings: Settings, store: Store, resume: str | None, term: Terminal) -> ChatSession:
    if settings.backend == "local":
        term.warn("Loading the local model…")
    backend = make_backend(settings.backend, settings.model)
    if resume is None:
        return ChatSession.start(store, backend, settings)
    conversation_id = store.latest_id() if resume == "last" else int(resume) if resume.isdigit() else None
    chat = ChatSession.resume(store, conversation_id, backend, settings) if conversation_id else None
    if chat is None:
        raise errors.ConfigError(f"No stored conversation {resume!r}: see them with --list.")
    return chat


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    args = parse_args(argv)
    term = Terminal(sys.stdout, sys.stderr)
    stdin = stdin or sys.stdin
    try:
        settings = settings_from_env(
            backend=args.backend, model=args.model, system=args.system, window=args.window, max_tokens=args.max_tokens
        )
        store = Store(settings.database_url)
        if args.list:
            list_conversations(store, term)
            return 0
        session = build_session(settings, store, args.resume, term)
    except errors.ChatError as exc:
        term.warn(exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    resumed = f", resuming conversation {session.conversation_id} ({len(session.messages)} messages)" if args.resume else ""
    term.say(
        f"Chatting with {session.backend.label}, sending {window_label(session.settings.window)}{resumed}. "
        "/help for commands, Ctrl-D to leave."
    )
    repl(session, stdin, term)
    return 0
