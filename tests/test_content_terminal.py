"""Content in the terminal chat, run as a user runs it (a subprocess, piped input) against the
loopback API; and the bundled local model given a text file and an image."""

from __future__ import annotations

import pytest

from chat_core import ChatSession, settings_from_env
from chat_core.backends.local import LocalBackend, _chat_messages
from chat_core.content import load_all, prepare
from chat_core.storage import Store
from tests.conftest import run_cli
from tests.content_files import pdf, png
from tests.loopback_api import reply


def test_attach_lists_detach_and_sends_files_with_the_next_message(api, tmp_path):
    (tmp_path / "chart.png").write_bytes(png(3000, 1000))
    (tmp_path / "report.pdf").write_bytes(pdf(2))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    (tmp_path / "gone.txt").write_text("x")
    script = (f"/attach {tmp_path}/gone.txt\n/detach\n/attach\n/attach {tmp_path}/chart.png\n"
              f"/attach {tmp_path}/broken.pdf\n/attach {tmp_path}/report.pdf\n/attach\nWhat is in these?\nThanks\n")
    result = run_cli("--model", "claude-haiku-4-5", stdin=script)
    assert result.returncode == 0, result.stderr
    out, err = result.stdout, result.stderr
    assert "Detached 1 file." in out and "No files attached." in out
    assert "Attached chart.png (" in out and "(scaled down from 3000×1000)" in out
    assert "  📎 chart.png (" in out and "  📎 report.pdf (991 B, 2 pages)" in out.replace(
        f"{len(pdf(2))} B", "991 B")
    # The damaged file: one line on stderr, and nothing else lost.
    assert err.strip().splitlines() == ["! broken.pdf was not attached: the PDF is damaged and cannot be read."]
    first, second = api.requests[0]["messages"][-1]["content"], api.requests[1]["messages"]
    assert [b["type"] for b in first] == ["image", "document", "text"]
    assert second[-1]["content"] == "Thanks"  # the files went with the first message only
    assert "Sources:\n  [1] report.pdf, p. 1: “The quarterly figure is 42 on page 1”" in out


@pytest.mark.parametrize("flag, shows", [(None, "Two plus two is four."), ("--quiet-thinking", None)])
def test_thinking_prints_dimmed_or_only_its_length(api, flag, shows):
    api.queue(reply("Four.", thinking="Two plus two is four."))
    result = run_cli("--model", "claude-haiku-4-5", "--thinking", "low", *([flag] if flag else []),
                     stdin="What is 2+2?\n")
    assert result.returncode == 0, result.stderr
    assert api.requests[-1]["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "(thought for 0 s, 21 characters)" in result.stdout
    assert ("Two plus two is four." in result.stdout) == (shows is not None)
    assert result.stdout.index("(thought for") < result.stdout.index("Four.")


def test_think_command_sets_the_conversations_thinking(api):
    result = run_cli("--model", "claude-haiku-4-5", stdin="/think\n/think loud\n/think high\nHi\n")
    assert "Thinking: off." in result.stdout and "Thinking: high." in result.stdout
    assert "! /think takes one of off, low, medium, high; it is now off." in result.stderr
    assert api.requests[-1]["thinking"] == {"type": "enabled", "budget_tokens": 16384}


def test_the_local_model_reads_a_text_file_and_says_it_cannot_read_an_image(local_model, tmp_path):
    settings = settings_from_env(backend="local", max_tokens=16)
    chat = ChatSession.start(Store(f"sqlite:///{tmp_path / 'x.db'}"), LocalBackend(local_model), settings)
    files = [prepare("secret.txt", b"The password is swordfish."), prepare("photo.png", png())]
    text = "".join(chat.send("Repeat the file.", attachments=files))
    assert chat.messages[-1].status == "complete" and text
    # What the model was given: the file's text and one line for the image (its prompt, counted, is that).
    question = chat.messages[0]
    load_all([question], chat.store.blob)
    sent = _chat_messages(settings.system, [question])[-1]["content"]
    assert "[File secret.txt]\nThe password is swordfish.\n[End of secret.txt]" in sent
    assert "[photo.png is an image, which this model cannot read.]" in sent
    assert chat.records[-1].usage.input_tokens == local_model.count_prompt_tokens(settings.system, [question])
