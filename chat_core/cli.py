"""The terminal chat: `python -m chat_core`.

Replies stream as they arrive; Ctrl-C stops a reply (the partial text is kept)
and, at the prompt, ends the chat. Works with piped stdin, one message a line.
Everything printed is stripped of terminal control characters; undecodable input
becomes U+FFFD; a closed output pipe (`--list | head -1`) ends it quietly.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import re
import sys
from typing import TextIO

from . import errors
from .backends import make_backend, output_estimated, truncation_note
from .backends.local import LocalBackend
from .cli_content import Draft, ReplyPrinter, think, web
from .cli_resume import find_stored, resumed_settings, show_resumed
from .config import Settings, settings_from_env
from .conversation import window_label
from .ids import parse_whole_number
from .search import search, search_words
from .session import ChatSession
from .storage import LOCAL_OWNER, Store
from .terminal_text import printable
from .thinking import LEVELS
from .usage import Usage, format_cost

HELP = """Commands:
  /help          this list
  /clear         start a new conversation (this one stays stored: --list)
  /window N      send only the last N exchanges (0 = all)
  /system TEXT   change the persona
  /retry         a new reply to your last message (the earlier reply is kept as a version)
  /edit TEXT     replace your last message with TEXT and get a new reply (the old one is kept)
  /attach PATH   attach a file to your next message (images, PDFs, text files); /attach lists them
  /detach        remove the attached files
  /think LEVEL   extended thinking for this conversation: off, low, medium or high
  /web on|off    let Claude search and fetch from the web in this conversation (off by default)
  quit, exit     leave (Ctrl-D too; Ctrl-C stops a reply, or leaves at the prompt)
  //TEXT         send "/TEXT" as a message (a line starting with /word is a command)"""
COMMANDS = "/help, /clear, /window N, /system TEXT, /retry, /edit TEXT, /attach PATH, /detach, /think LEVEL, /web on|off, /quit"
QUIT_WORDS = ("quit", "exit", "/quit", "/exit")
# A command is a slash, a word, then nothing or a space and its argument. Any other
# line is a message: "/usr/bin/env is missing" or "/ 2" are sent as they are.
COMMAND = re.compile(r"/([A-Za-z][\w-]*)(?:\s+(.*))?", re.DOTALL)
# 128 + SIGPIPE: what a shell reports for a program whose reader went away.
BROKEN_PIPE_STATUS = 141


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chat_core", description="Streaming chat with Claude or a bundled local model.")
    parser.add_argument("--backend", choices=["anthropic", "local"], help="default: Claude when ANTHROPIC_API_KEY is set, else local")
    parser.add_argument("--model", help="Claude model name, or for the local backend a GGUF file path")
    parser.add_argument("--system", help="the persona (system prompt)")
    parser.add_argument("--window", type=int, help="past exchanges sent with each message (0 = all)")
    parser.add_argument("--max-tokens", type=int, dest="max_tokens", help="longest reply, in tokens")
    parser.add_argument("--thinking", nargs="?", const="medium", choices=LEVELS,
                        help="extended thinking for this conversation (medium when no level is given)")
    parser.add_argument("--web", action="store_true", default=None,
                        help="let Claude search and fetch from the web (it costs money and sends queries out)")
    parser.add_argument("--quiet-thinking", action="store_true", dest="quiet_thinking",
                        help="print only how long a reply thought, not its thinking")
    parser.add_argument("--resume", nargs="?", const="last", metavar="ID",
                        help="continue a stored conversation (the most recent without an ID)")
    parser.add_argument("--list", action="store_true", help="list stored conversations and exit")
    parser.add_argument("--search", nargs="+", metavar="WORDS",
                        help="list the stored conversations that mention all these words, newest first, and exit")
    return parser.parse_args(argv)


class Terminal:
    """The REPL's output: chat on stdout, notices and errors on stderr, control characters stripped."""

    def __init__(self, out: TextIO, err: TextIO, quiet_thinking: bool = False):
        self.out, self.err = out, err
        self.draft = Draft()  # files for the next message (/attach)
        self.quiet_thinking = quiet_thinking

    def write(self, text: str) -> None:
        """Part of a line, such as a streamed chunk."""
        print(printable(text), end="", file=self.out, flush=True)

    def say(self, text: str) -> None:
        print(printable(text), file=self.out, flush=True)

    def warn(self, text: str) -> None:
        print(f"! {printable(text)}", file=self.err, flush=True)


def tolerate_bad_text(*streams: TextIO) -> None:
    """Undecodable input becomes U+FFFD and unencodable output "?", never a traceback."""
    for stream in streams:
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="replace")


def token_counts(usage: Usage, estimated: bool = False) -> str:
    """Tokens in and out; "~" marks an output count that is an estimate (a Claude reply cut short)."""
    cached = usage.cache_read_tokens + usage.cache_write_tokens
    detail = (f" ({usage.cache_read_tokens:,} read from cache, {usage.cache_write_tokens:,} written to it)"
              if cached else "")
    return f"{usage.all_input_tokens:,} input{detail} + {'~' if estimated else ''}{usage.output_tokens:,} output tokens"


def usage_line(session: ChatSession) -> str:
    """One line: the backend, this turn's tokens, and the session's tokens and cost;
    an estimated output count is marked "~" and said so."""
    record = session.records[-1]
    total = session.totals
    # Worded as the dashboard words it: the bundled model is "free", not "$0.0000".
    cost = "free" if total.all_local else format_cost(total.cost_usd) if total.cost_usd is not None else "cost unknown"
    this_turn = output_estimated(record)
    session_estimated = total.estimated
    note = " (estimated)" if this_turn else ""
    return (f"[{record.backend} · {record.model} | this turn: {token_counts(record.usage, this_turn)}{note}"
            f" | session: {token_counts(total.usage, session_estimated)}, {cost}]")


def command(session: ChatSession, name: str, arg: str, term: Terminal) -> None:
    """Run the command /name with its argument; an unknown name gets the list."""
    if name == "help":
        term.say(HELP)
    elif name == "clear":
        session.new_conversation()
        term.say("New conversation, counters at zero; the last one stays stored (see --list).")
    elif name == "window":
        window = parse_whole_number(arg)
        if window is None:
            term.warn(f"/window takes a whole number of exchanges (0 = all); it is now {session.settings.window}.")
        else:
            session.update(window=window)
            term.say(f"Window: sending {window_label(session.settings.window)}.")
    elif name == "system":
        if not arg:
            term.say(f"Persona: {session.settings.system}")
        else:
            session.update(system=arg)
            term.say("Persona changed.")
    elif name == "attach":
        term.draft.attach(arg, term)
    elif name == "detach":
        term.draft.detach(term)
    elif name == "think":
        think(session, arg, term)
    elif name == "web":
        web(session, arg, term)
    elif name == "retry":
        turn(session, None, term, session.regenerate)
    elif name == "edit":
        if not arg:
            term.warn("/edit takes the new text of your last message: /edit TEXT.")
        else:
            turn(session, arg, term, session.edit_last)
    else:
        term.warn(f"Unknown command /{name}, not sent. Commands: {COMMANDS}; //TEXT sends /TEXT as a message.")


def turn(session: ChatSession, text: str | None, term: Terminal, start=None) -> None:
    """Send one message (by default; `start` may regenerate or edit instead) and stream
    the reply, a job of its own, as it is written; failures print one line. Ctrl-C
    cancels the job: its partial reply is stored, marked stopped, and counted."""
    files = term.draft.take() if start is None else []
    start = start or session.send
    extra = {"attachments": files} if files else {}
    try:
        chunks = start(notify=term.warn, events=True) if text is None else start(text, notify=term.warn, events=True,
                                                                                **extra)
        term.draft.files = [f for f in term.draft.files if f not in files]  # sent with this message
    except errors.ChatError as exc:
        term.warn(exc.message)
        return
    except ValueError:
        term.warn("There is no message to send again yet.")
        return
    wrote = False
    printer = ReplyPrinter(term, term.quiet_thinking)
    try:
        for chunk in printer.text(chunks):
            term.write(chunk)
            wrote = True
        term.say("")
        printer.sources()
    except KeyboardInterrupt:
        term.say("")
        term.warn("Stopped; the partial reply is kept.")
    except errors.ChatError as exc:
        if wrote:
            term.say("")
        term.warn(exc.message)
    finally:
        chunks.close()  # after a Ctrl-C: cancels the job and waits until its partial reply is stored
    record, reply = session.records[-1], session.messages[-1]
    if record.stop_reason == "max_tokens":
        term.warn(truncation_note(record.backend, session.settings.max_tokens))
    if reply.unsaved:
        term.warn(f"Not saved: {reply.unsaved}")
    term.say(usage_line(session))


def handle(session: ChatSession, line: str, term: Terminal) -> bool:
    """Act on one line of input: a command, a message, or nothing; False to leave."""
    text = line.strip()
    if text.lower() in QUIT_WORDS:
        return False
    match = COMMAND.fullmatch(text)
    if match:
        try:
            command(session, match[1].lower(), (match[2] or "").strip(), term)
        except errors.StorageError as exc:  # applied in memory, not stored
            term.warn(f"Changed for this session only: {exc.message}")
    elif text.startswith("//"):
        turn(session, line.lstrip()[1:], term)
    elif text or term.draft.files:
        turn(session, line, term)
    return True


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
        if not handle(session, line, term):
            return


def list_conversations(store: Store, term: Terminal) -> None:
    conversations = store.list_conversations()
    if not conversations:
        term.say("No stored conversations yet.")
    for c in conversations:
        when = dt.datetime.fromtimestamp(c.updated_at).strftime("%Y-%m-%d %H:%M")
        term.say(f"{c.id:>5}  {when}  {c.backend} · {c.model}  {c.title}")


def search_conversations(store: Store, words: str, term: Terminal) -> int:
    """Print the conversations that mention `words`, newest first: each as in --list, then a snippet."""
    if not search_words(words):
        term.warn("--search needs a word to look for (letters or digits; punctuation alone is not searched).")
        return 1
    hits = search(store, words, LOCAL_OWNER)
    if not hits:
        term.say(f"No conversation mentions {words}.")
    for hit in hits:
        when = dt.datetime.fromtimestamp(hit.updated_at).strftime("%Y-%m-%d %H:%M")
        term.say(f"{hit.conversation_id:>5}  {when}  {hit.title}")
        term.say(f"       {hit.snippet}")
    if hits:
        term.say("Continue one with --resume ID.")
    return 0


def build_session(settings: Settings, store: Store, args: argparse.Namespace, term: Terminal) -> ChatSession:
    """A new conversation, or the stored one that --resume names. --backend and --model, when
    given, win over the stored conversation's; --window and --system too."""
    stored = find_stored(store, args.resume) if args.resume is not None else None
    if stored is not None and args.backend is None and args.model is None:
        settings = resumed_settings(settings, stored.info, term)
    if settings.backend == "local":
        term.warn("Loading the local model…")
    backend = make_backend(settings.backend, settings.model)
    if isinstance(backend, LocalBackend):
        backend.ensure_loaded()  # a missing or broken model file is reported before the chat starts
    if stored is None:
        return ChatSession.start(store, backend, settings.with_(thinking=args.thinking or settings.thinking,
                                                                web=bool(args.web)))
    chat = ChatSession.from_stored(store, stored, backend, settings)
    chosen = {name: value for name, value in (("window", args.window), ("system", args.system),
                                              ("thinking", args.thinking), ("web", args.web)) if value is not None}
    if chosen:
        chat.update(**chosen)
    return chat


def main(argv: list[str] | None = None, stdin: TextIO | None = None) -> int:
    """Run the terminal chat; the exit status. A reader that goes away ends it quietly."""
    try:
        status = run(argv, stdin)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Python's advice for SIGPIPE: point the dead streams at /dev/null so the
        # flush at exit cannot fail again, and leave without a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.dup2(devnull, sys.stderr.fileno())
        return BROKEN_PIPE_STATUS


def run(argv: list[str] | None, stdin: TextIO | None) -> int:
    args = parse_args(argv)
    stdin = stdin or sys.stdin
    tolerate_bad_text(stdin, sys.stdout, sys.stderr)
    term = Terminal(sys.stdout, sys.stderr, args.quiet_thinking)
    try:
        settings = settings_from_env(
            backend=args.backend, model=args.model, system=args.system, window=args.window, max_tokens=args.max_tokens
        )
        store = Store(settings.database_url)
        if args.list:
            list_conversations(store, term)
            return 0
        if args.search:
            return search_conversations(store, " ".join(args.search), term)
        session = build_session(settings, store, args, term)
    except errors.ChatError as exc:
        term.warn(exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    resumed = f", resuming conversation {session.conversation_id} ({session.message_count} messages)" if args.resume else ""
    term.say(
        f"Chatting with {session.backend.label}, sending {window_label(session.settings.window)}{resumed}. "
        "/help for commands, Ctrl-D to leave."
    )
    if args.resume:
        show_resumed(session, term)
    repl(session, stdin, term)
    return 0
