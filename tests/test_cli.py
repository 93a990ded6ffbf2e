"""The terminal chat as a user runs it: a subprocess with piped stdin."""

import os
import signal

from tests.conftest import TEST_KEY, cli_until, run_cli
from tests.loopback_api import http_error, reply


def test_claude_chat_streams_remembers_and_counts(api):
    result = run_cli(stdin="hello there\nsecond message\nquit\n")
    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "Chatting with anthropic · claude-haiku-4-5" in out
    assert "echo: hello there" in out and "echo: second message" in out
    assert len(api.requests) == 2 and len(api.requests[1]["messages"]) == 3
    token_lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(token_lines) == 2
    assert token_lines[0].startswith("[anthropic · claude-haiku-4-5 | ")
    assert token_lines[0].endswith("cost $0.0000]") and " in · 3 out | session " in token_lines[0]
    assert "Traceback" not in result.stderr and TEST_KEY not in out + result.stderr


def test_commands_clear_window_help_and_blank_lines(api):
    script = "one\n\n   \n/window 1\ntwo\nthree\n/clear\nfour\n/window x\n/help\nexit\n"
    result = run_cli("--system", "Be terse.", stdin=script)
    out = result.stdout
    assert "Window: sending the last 1 exchange." in out
    assert "Cleared: new conversation, counters at zero." in out
    assert "/window N" in out and "quit, exit" in out
    assert "/window takes a whole number" in result.stderr
    sent = [len(body["messages"]) for body in api.requests]
    assert sent == [1, 3, 3, 1]  # blank lines sent nothing; the window capped; /clear forgot
    assert {body["system"] for body in api.requests} == {"Be terse."}
    session_in = [line.split("session ")[1] for line in out.splitlines() if line.startswith("[")]
    assert session_in[-1].split(" in")[0] == str(api_tokens(api.requests[-1]))


def api_tokens(body):
    from tests.loopback_api import count_tokens

    return count_tokens(body)


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
    assert lines[-1].startswith("[") and "cost $0.0000]" in lines[-1]
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
