"""The bundled SmolLM2 model, for real: streaming, token counts, context fitting, the lock, bad files."""

import threading

import pytest

from chat_core import ChatSession, settings_from_env
from chat_core import errors
from chat_core.backends.base import Reply
from chat_core.backends.local import LocalBackend, LocalModel, bundled_model_path
from chat_core.conversation import Message


def test_the_model_ships_in_the_wheel():
    path = bundled_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_local_reply_streams_with_the_models_own_counts(local_model):
    backend = LocalBackend(local_model)
    reply = Reply(backend.name, backend.model)
    messages = [Message("user", "Name a colour.")]
    chunks = list(backend.stream("You are brief.", messages, 12, reply))
    assert len(chunks) >= 2 and "".join(chunks) == reply.text and reply.text.strip()
    assert reply.usage.input_tokens == local_model.count_prompt_tokens("You are brief.", messages)
    assert 1 <= reply.usage.output_tokens <= 12
    assert reply.stop_reason in ("end_turn", "max_tokens") and reply.complete
    assert local_model.n_ctx == 8192


def test_a_local_session_remembers_and_costs_nothing(local_model):
    settings = settings_from_env(backend="local", max_tokens=8)
    chat = ChatSession(LocalBackend(local_model), settings)
    "".join(chat.send("My name is Ada."))
    "".join(chat.send("What is my name?"))
    first, second = chat.records
    assert second.messages_sent == 3 and second.usage.input_tokens > first.usage.input_tokens
    assert chat.totals.cost_usd == 0


def test_history_too_long_for_the_context_drops_oldest_exchanges_with_a_note():
    small = LocalModel.load(n_ctx=512)
    long_text = "word " * 60
    messages = []
    for i in range(8):
        messages += [Message("user", f"{i} {long_text}"), Message("assistant", f"reply {i} {long_text}")]
    messages.append(Message("user", "last question"))
    notes = []
    reply = Reply("local", small.name)
    text = "".join(LocalBackend(small).stream("", messages, 16, reply, notify=notes.append))
    assert text and reply.complete
    assert len(notes) == 1 and "oldest exchange" in notes[0] and "512-token context" in notes[0]
    assert reply.messages_sent < len(messages) and reply.messages_sent % 2 == 1
    assert reply.usage.input_tokens + 16 <= 512


def test_a_message_that_cannot_fit_is_refused_clearly():
    small = LocalModel.load(n_ctx=512)
    with pytest.raises(errors.InputTooLongError, match="too long for the local model"):
        list(LocalBackend(small).stream("", [Message("user", " ".join(str(n) for n in range(600)))], 16))


def test_a_second_session_is_told_it_waits_for_the_model(local_model):
    backend = LocalBackend(local_model)
    first = backend.stream("", [Message("user", "Count to ten.")], 24)
    next(first)  # the first session now holds the model
    notes, done = [], threading.Event()

    def second():
        list(backend.stream("", [Message("user", "Hi")], 4, notify=notes.append))
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not done.wait(0.5)  # it waits while the first reply is open
    list(first)
    thread.join(30)
    assert done.is_set()
    assert notes == ["The local model is answering another chat; this reply starts when it is done."]


def test_missing_and_broken_model_files(tmp_path):
    with pytest.raises(errors.ModelFileError, match="is missing"):
        LocalModel.load(str(tmp_path / "nope.gguf"))
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(errors.ModelFileError, match="could not be loaded .* is it a valid GGUF file"):
        LocalModel.load(str(broken))


def test_a_stopped_local_reply_counts_the_tokens_it_produced(local_model):
    backend = LocalBackend(local_model)
    reply = Reply(backend.name, backend.model)
    stream = backend.stream("", [Message("user", "Count from one to fifty, in words.")], 200, reply)
    chunks = [next(stream) for _ in range(17)]
    stream.close()  # a stop
    assert not reply.complete and reply.text == "".join(chunks)
    produced = len(local_model.llama.tokenize(reply.text.encode("utf-8"), add_bos=False))
    assert reply.usage.output_tokens == produced and abs(produced - 17) <= 3  # about one token a chunk, never "1"
    assert local_model.lock.acquire(blocking=False)  # the stop let go of the model
    local_model.lock.release()
