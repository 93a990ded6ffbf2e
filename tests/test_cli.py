"""The terminal chat as a user runs it: a subprocess with piped stdin."""

import os
import re
import signal
import subprocess
import sys

from chat_core.config import settings_from_env
from chat_core.ids import parse_conversation_id
from chat_core.storage import Store
from chat_core.usage import Usage, cost, cost_without_cache, format_cost, price_for
from tests.conftest import ROOT, TEST_KEY, cli_until, run_cli
from tests.loopback_api import count_tokens, http_error, reply

# The line after each reply: backend · model | this turn's tokens | the session's tokens and cost.
# An output count that is an estimate (a Claude reply cut short) reads "~17 output tokens (estimated)".
TOKEN_LINE = re.compile(r"\[(\S+) · (\S+) \| this turn: ([\d,]+) input \+ ~?([\d,]+) output tokens(?: \(estimated\))?"
                        r" \| session: ([\d,]+) input \+ ~?([\d,]+) output tokens, (<?\$\d+\.\d{4}|free|cost unknown)\]")
# What a terminal acts on: C0 controls but newline and tab, DEL, and C1 controls.
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def store(isolated) -> Store:
    """The store the terminal chat uses in these tests (CHAT_DATA_DIR is set by the `isolated` fixture)."""
    return Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")


def start_cli(*args: str) -> subprocess.Popen:
    """`python -m chat_core` with bytes pipes, not waited for."""
    return subprocess.Popen([sys.executable, "-m", "chat_core", *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen) -> bytes:
    """Wait for a process whose stdout the test closed; its stderr."""
    proc.stdin.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    return err


def test_claude_chat_streams_remembers_and_counts(api):
    result = run_cli(stdin="hello there\nsecond message\nquit\n")
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Chatting with anthropic · claude-haiku-4-5" in out
    assert "echo: hello there" in out and "echo: second message" in out
    assert len(api.requests) == 2 and len(api.requests[1]["messages"]) == 3
    first_in, second_in = (count_tokens(body) for body in api.requests)
    haiku = price_for("anthropic", "claude-haiku-4-5")
    first_cost, session_cost = (format_cost(cost(Usage(n, out), haiku)) for n, out in [(first_in, 3), (first_in + second_in, 6)])
    token_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert token_lines == [
        f"[anthropic · claude-haiku-4-5 | this turn: {first_in} input + 3 output tokens"
        f" | session: {first_in} input + 3 output tokens, {first_cost}]",
        f"[anthropic · claude-haiku-4-5 | this turn: {second_in} input + 3 output tokens"
        f" | session: {first_in + second_in} input + 6 output tokens, {session_cost}]",
    ]
    assert "Traceback" not in result.stderr and TEST_KEY not in out + result.stderr


def test_commands_clear_window_help_and_blank_lines(api):
    script = "one\n\n   \n/window 1\ntwo\nthree\n/clear\nfour\n/window x\n/help\nexit\n"
    result = run_cli("--system", "Be terse.", stdin=script)
    out = result.stdout
    assert "Window: sending the last 1 exchange." in out
    assert "New conversation, counters at zero; the last one stays stored" in out
    assert "/window N" in out and "quit, exit" in out
    assert "/window takes a whole number" in result.stderr
    sent = [len(body["messages"]) for body in api.requests]
    assert sent == [1, 3, 3, 1]  # blank lines sent nothing; the window capped; /clear forgot
    assert {body["system"] for body in api.requests} == {"Be terse."}
    session_in = [TOKEN_LINE.fullmatch(line)[5] for line in out.splitlines() if line.startswith("[")]
    assert session_in[-1] == str(count_tokens(api.requests[-1]))
    store = Store(settings_from_env().database_url)
    stored = {c.title: [m.text for m in store.load(c.id).messages] for c in store.list_conversations()}
    assert stored == {"one": ["one", "echo: one", "two", "echo: two", "three", "echo: three"],
                      "four": ["four", "echo: four"]}  # /clear started a new conversation; the old one stays


def test_a_chat_that_sends_nothing_stores_nothing(api):
    result = run_cli(stdin="/help\n\n/window 3\n")
    assert result.returncode == 0
    assert Store(settings_from_env().database_url).list_conversations() == []
    resumed = run_cli("--resume", stdin="")
    assert resumed.returncode == 1 and "no stored conversation to resume yet" in resumed.stderr


def test_a_read_only_database_is_one_line_and_the_chat_goes_on(api, tmp_path):
    """The REPL over a store whose file refuses writes (as a read-only chat.db does): one line a turn, no exit."""
    import io

    from chat_core import ChatSession
    from chat_core.backends import make_backend
    from chat_core.cli import Terminal, repl
    from tests.test_storage import read_only

    store = Store(f"sqlite:///{tmp_path / 'chat.db'}")
    settings = settings_from_env()
    chat = ChatSession.start(store, make_backend(settings.backend, settings.model), settings)
    out, err = io.StringIO(), io.StringIO()
    repl(chat, io.StringIO("kept\n"), Terminal(out, err))
    read_only(store)
    repl(chat, io.StringIO("refused\nalso refused\n"), Terminal(out, err))
    lines = err.getvalue().splitlines()
    assert len(lines) == 2 and all("is read-only, so nothing new can be saved" in line for line in lines)
    assert len(api.requests) == 1  # what could not be saved was not sent
    assert [m.text for m in store.load(chat.conversation_id).messages] == ["kept", "echo: kept"]


def test_an_error_turn_is_one_line_and_the_next_turn_works(api):
    api.queue(http_error(401, "authentication_error"))
    result = run_cli(stdin="first\nsecond\n")
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("! Claude rejected the API key (401)")
    assert "echo: second" in result.stdout
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["second"]


def test_local_model_without_key_or_network():
    result = run_cli("--max-tokens", "8", stdin="Hello!\n")
    assert result.returncode == 0, result.stderr
    assert "Chatting with local · SmolLM2-135M-Instruct" in result.stdout
    lines = result.stdout.splitlines()
    assert TOKEN_LINE.fullmatch(lines[-1]) and lines[-1].endswith(" output tokens, free]")
    assert lines[-2].strip()  # the streamed reply


def test_bad_settings_and_missing_model_fail_in_one_line(tmp_path):
    result = run_cli("--backend", "local", "--model", str(tmp_path / "gone.gguf"), stdin="")
    assert result.returncode == 1
    assert "The local model file" in result.stderr and "is missing" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli(stdin="", env_extra={"CHAT_WINDOW": "lots"})
    assert result.returncode == 1 and "CHAT_WINDOW='lots' is not a whole number" in result.stderr


def test_ctrl_c_stops_the_reply_keeps_it_and_the_chat_goes_on(api):
    api.queue(reply(" ".join(f"p{i}" for i in range(300)), delay=0.05))
    proc = cli_until("tell me a lot\n", "p3 ")
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C in the middle of the reply
    out, err = proc.communicate("and now?\n", timeout=60)
    assert proc.returncode == 0
    assert "! Stopped; the partial reply is kept." in err and "Traceback" not in err
    assert "echo: and now?" in out
    sent = api.requests[-1]["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["content"].startswith("p0 p1 p2 p3")
    assert "p299" not in sent[1]["content"]
    # Claude never sent its count: the words streamed are counted (one token a word on the loopback), marked "~".
    words = len(sent[1]["content"].split())
    stopped, after = [line for line in out.splitlines() if line.startswith("[")]
    assert f"| this turn: {count_tokens(api.requests[0])} input + ~{words} output tokens (estimated) |" in stopped
    assert TOKEN_LINE.fullmatch(stopped) and TOKEN_LINE.fullmatch(after)
    assert f" + ~{words + 3} output tokens, " in after  # the session's total holds an estimate


def test_invalid_utf8_on_stdin_becomes_replacement_characters_and_every_line_is_sent(api, isolated):
    proc = start_cli()
    out, err = proc.communicate(b"hello\n\xff\xfe bad\nafter\n", timeout=120)
    assert proc.returncode == 0 and err == b""
    sent = [body["messages"][-1]["content"] for body in api.requests]
    assert sent == ["hello", "\ufffd\ufffd bad", "after"]
    assert "echo: \ufffd\ufffd bad" in out.decode() and "echo: after" in out.decode()
    saved = store(isolated).load(store(isolated).latest_id())
    assert [m.text for m in saved.messages if m.role == "user"] == sent


HOSTILE = "\x1b]0;pwned\x07title \x1b[2Jcleared \x9b31mred\r\n\tnext \x1b[0m\x7fend"


def test_control_characters_from_the_model_and_titles_never_reach_the_terminal(api, isolated):
    api.queue(reply(HOSTILE, chunks=12))  # sequences split across chunks
    result = run_cli(stdin="say something odd\n")
    assert result.returncode == 0, result.stderr
    assert not CONTROLS.search(result.stdout + result.stderr)
    assert "]0;pwnedtitle [2Jcleared 31mred\n\tnext [0mend" in result.stdout
    saved = store(isolated).load(store(isolated).latest_id())
    assert saved.messages[-1].text == HOSTILE  # stored as received; only the terminal's copy is cleaned
    store(isolated).create_conversation("s", 10, "anthropic", "claude-haiku-4-5", title="\x1b]0;owned\x07Evil\x1b[2J chat")
    listed = run_cli("--list", stdin="")
    assert listed.returncode == 0 and not CONTROLS.search(listed.stdout)
    assert "]0;ownedEvil[2J chat" in listed.stdout


def test_unknown_commands_are_refused_and_double_slash_sends_a_slash(api):
    script = "/windw 3\n/Help\n//etc/hosts is empty\n/usr/bin/env is missing\n/window \u00b2\nquit\n"
    result = run_cli(stdin=script)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    sent = [body["messages"][-1]["content"] for body in api.requests]
    assert sent == ["/etc/hosts is empty", "/usr/bin/env is missing"]
    assert [line for line in result.stderr.splitlines() if "windw" in line] == [
        "! Unknown command /windw, not sent. Commands: /help, /clear, /window N, /system TEXT, /retry, /edit TEXT, /attach PATH, /detach, /think LEVEL, /web on|off, /quit;"
        " //TEXT sends /TEXT as a message."
    ]
    assert "/window takes a whole number" in result.stderr  # "\u00b2" is no number
    assert '//TEXT         send "/TEXT" as a message' in result.stdout  # /Help, any case


def test_a_reader_that_goes_away_ends_the_output_quietly(api, isolated):
    chats = store(isolated)
    for i in range(600):  # about 150 KB of --list: more than a pipe holds
        chats.create_conversation("s", 10, "anthropic", "claude-haiku-4-5", title=f"chat {i} " + "x" * 200)
    listing = start_cli("--list")  # python -m chat_core --list | head -1
    first = listing.stdout.readline()
    listing.stdout.close()
    err = finish(listing)
    assert first.split()[0].isdigit() and b"chat " in first
    assert (listing.returncode, err) == (141, b"")
    api.queue(reply("slow words", delay=0.3))
    chat = start_cli()  # printf 'hi\nmore\n' | python -m chat_core | head -1
    chat.stdin.write(b"hi\nmore\n")
    chat.stdin.close()
    assert chat.stdout.readline().startswith(b"Chatting with")
    chat.stdout.close()  # before the reply's first chunk
    err = finish(chat)
    assert (chat.returncode, err) == (141, b"")
    assert len(api.requests) == 1  # it stopped at the closed pipe instead of sending on


def test_resume_with_a_malformed_or_unknown_id_is_one_line(api, isolated):
    bad_ids = ["\u00b2", "99999999999999999999", "-1", "1.5", "4242"]  # more forms: the next test
    runs = {bad: subprocess.Popen([sys.executable, "-m", "chat_core", "--resume", bad], cwd=ROOT, text=True,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for bad in bad_ids}
    for bad, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out, err) == (1, "", f"! conversation {bad} not found: see them with --list\n")
    assert store(isolated).list_conversations() == []


def test_conversation_ids_are_parsed_strictly():
    assert parse_conversation_id("42") == 42 and parse_conversation_id("007") == 7
    assert parse_conversation_id(str(2**63 - 1)) == 2**63 - 1
    for bad in ["", "0", "00", "-1", "+1", "1.5", "1e3", " 1", "1 ", "\u00b2", "\u0663", "\uff11", "abc",
                str(2**63), "99999999999999999999"]:
        assert parse_conversation_id(bad) is None, bad


def test_the_token_line_counts_the_prompt_cache(api):
    words = " ".join(f"w{i}" for i in range(2500))
    result = run_cli(stdin=f"first {words}\nsecond {words}\nthird\n")
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert "read from cache" not in lines[0]
    third = api.requests[2]
    assert third["cache_control"] == {"type": "ephemeral"}
    assert re.search(r"this turn: [\d,]+ input \([\d,]+ read from cache, [\d,]+ written to it\)", lines[2])
    store = Store(settings_from_env().database_url)
    third_turn = store.load(store.latest_id()).records[2]
    price = price_for("anthropic", "claude-haiku-4-5")
    assert third_turn.usage.cache_read_tokens > 0
    assert third_turn.cost_usd == cost(third_turn.usage, price) < cost_without_cache(third_turn.usage, price)


def test_retry_and_edit_in_the_terminal(api):
    api.queue(reply("first answer"), reply("second answer"), reply("answer to the fix"), reply("later"))
    result = run_cli(stdin="/retry\nquestoin\n/retry\n/edit question\n/edit\nnext\n")
    assert "There is no message to send again yet." in result.stderr
    assert "/edit takes the new text" in result.stderr
    assert [[m["content"] for m in body["messages"]] for body in api.requests] == [
        ["questoin"], ["questoin"], ["question"], ["question", "answer to the fix", "next"]]
    store = Store(settings_from_env().database_url)
    stored = store.load(store.latest_id())
    assert [m.text for m in stored.messages] == ["question", "answer to the fix", "next", "later"]
    assert sorted(m.text for m in stored.versions if not m.active) == ["first answer", "questoin"]
    assert [r.turn for r in stored.records] == [1, 2, 3, 4]


def test_resume_checks_the_id_before_loading_a_model(isolated):
    """No key: the local backend, whose model takes seconds to load, is not loaded for a wrong id."""
    result = run_cli("--resume", "99999", stdin="")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "! conversation 99999 not found: see them with --list\n"  # no "Loading the local model…"


def test_resume_shows_what_the_next_request_carries(api, isolated):
    api.queue(reply("first answer"), reply("second \x1b[2Janswer"), reply("third answer"))
    first = run_cli("--window", "2", stdin="one\ntwo\nthree\n")
    assert first.returncode == 0, first.stderr
    result = run_cli("--resume", stdin="four\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Chatting with anthropic · claude-haiku-4-5, sending the last 2 exchanges, "
                               "resuming conversation 1 (6 messages).")
    assert lines[1:7] == [
        "2 earlier messages are stored but not sent.",
        "The next request carries:",
        "  you> two",
        "  reply> second [2Janswer",  # stripped of control characters like everything printed
        "  you> three",
        "  reply> third answer",
    ]
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["two", "second \x1b[2Janswer", "three",
                                                                    "third answer", "four"]


def test_resume_marks_a_reply_cut_off_by_a_dead_writer(api, isolated):
    """A reply whose writer died (a killed server or terminal) is listed with what it had, marked cut off."""
    writer = """if True:
        import os, signal, sys
        from chat_core import Message
        from chat_core.storage import Store
        db = Store(sys.argv[1])
        new = dict(system="You are concise.", window=10, backend="anthropic", model="claude-haiku-4-5")
        cid, uid = db.add_user_message(None, Message("user", "tell me a long story"), new=new)
        db.save_text(db.start_reply(cid, Message("assistant", "", reply_to=uid)), "Once upon a time")
        os.kill(os.getpid(), signal.SIGKILL)  # killed while writing the reply
    """
    killed = subprocess.run([sys.executable, "-c", writer, store(isolated).url], cwd=ROOT)
    assert killed.returncode == -signal.SIGKILL
    result = run_cli("--resume", "1", stdin="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["  you> tell me a long story", "  reply> Once upon a time [cut off]"]


def test_resume_goes_on_with_the_conversations_model_and_flags_win(api, isolated):
    assert run_cli("--model", "claude-sonnet-4-6", stdin="hello\n").returncode == 0
    resumed = run_cli("--resume", " 1 ", stdin="again\n")  # spaces around the id, as in a pasted one (and ?c=1%20)
    assert resumed.returncode == 0 and resumed.stderr == ""
    assert resumed.stdout.startswith("Chatting with anthropic · claude-sonnet-4-6")
    assert [body["model"] for body in api.requests] == ["claude-sonnet-4-6", "claude-sonnet-4-6"]
    chosen = run_cli("--resume", "1", "--model", "claude-haiku-4-5", "--window", "1", stdin="third\n")
    assert chosen.stdout.startswith("Chatting with anthropic · claude-haiku-4-5, sending the last 1 exchange")
    assert api.requests[-1]["model"] == "claude-haiku-4-5"
    assert store(isolated).load(1).info.window == 1


def test_resuming_a_claude_conversation_without_a_key_says_so_in_one_line(api, isolated):
    assert run_cli(stdin="hello\n").returncode == 0
    result = run_cli("--resume", "--max-tokens", "4", stdin="and now?\n", env_extra={"ANTHROPIC_API_KEY": ""})
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "! Conversation 1 was with Claude (claude-haiku-4-5), but no ANTHROPIC_API_KEY is set, so it continues "
        "on the local model: set the key to go on with Claude.",
        "! Loading the local model…",
    ]
    assert "Chatting with local · SmolLM2-135M-Instruct" in result.stdout
    assert len(api.requests) == 1  # the new message went to the local model
    stored = store(isolated).load(1)
    assert [r.backend for r in stored.records] == ["anthropic", "local"]
    assert [m.text for m in stored.messages][:3] == ["hello", "echo: hello", "and now?"]


def test_ctrl_c_cancels_the_job_and_its_partial_reply_is_stored_stopped_and_counted(api, isolated):
    api.queue(reply(" ".join(f"p{i}" for i in range(300)), delay=0.05))
    proc = cli_until("tell me a lot\n", "p3 ")
    os.kill(proc.pid, signal.SIGINT)  # Ctrl-C in the middle of the reply
    out, err = proc.communicate("", timeout=60)
    assert proc.returncode == 0 and "Traceback" not in err
    [line] = [line for line in out.splitlines() if line.startswith("[")]  # the stopped turn is counted
    match = TOKEN_LINE.fullmatch(line)
    assert match and int(match[3].replace(",", "")) > 0
    chats = store(isolated)
    stored = chats.load(chats.latest_id())
    kept = stored.messages[-1]
    assert kept.status == "stopped" and kept.text.startswith("p0 p1 p2 p3") and "p299" not in kept.text
    assert [r.status for r in stored.records] == ["stopped"] and stored.records[0].message_id == kept.id


def test_a_failed_retry_in_the_terminal_keeps_the_good_reply(api, isolated):
    api.queue(reply("a good answer"), http_error(529, "overloaded_error", repeat=3))
    result = run_cli(stdin="question\n/retry\nnext\n")
    assert "Claude is overloaded (529)" in result.stderr and "Traceback" not in result.stderr
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["question", "a good answer", "next"]
    chats = store(isolated)
    stored = chats.load(chats.latest_id())
    assert [m.text for m in stored.messages] == ["question", "a good answer", "next", "echo: next"]
    assert [(m.status, m.active) for m in stored.versions if m.role == "assistant"][:2] == [
        ("complete", True), ("failed", False)]


def test_a_claude_model_named_without_a_key_says_the_key_is_missing(api, isolated):
    """`--model claude-…` with no key (also resuming a Claude conversation) named a local model file to
    reinstall; it is one line about the key, before any model loads."""
    assert run_cli(stdin="hello\n").returncode == 0
    line = ("! claude-sonnet-4-6 is a Claude model, but no ANTHROPIC_API_KEY is set: export the key, or leave out "
            "the model to chat with the local model.")
    for args in (["--model", "claude-sonnet-4-6"], ["--resume", "1", "--model", "claude-sonnet-4-6"]):
        result = run_cli(*args, stdin="hi\n", env_extra={"ANTHROPIC_API_KEY": ""})
        assert (result.returncode, result.stdout, result.stderr.splitlines()) == (1, "", [line]), args
    assert len(api.requests) == 1
