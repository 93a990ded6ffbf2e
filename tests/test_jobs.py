"""Replies as jobs the process owns: viewers from the start, stop, failure half-way, one job per
conversation with a queue, and the store while the reply streams. Real SDK against the loopback
API, the real bundled model, a real SQLite file and a real PostgreSQL."""

import threading
import time

import pytest

from chat_core import BusyError, ChatError, ChatSession, ReplyJob, Reply, follow_stored, settings_from_env
from chat_core.backends.local import LocalBackend
from chat_core.conversation import ASSISTANT, COMPLETE, FAILED, STOPPED, STREAMING
from chat_core.errors import ConnectionLostError, OverloadedError
from chat_core.storage import Store
from tests.loopback_api import cut, http_error, reply
from tests.test_storage import chat_on

WORDS = " ".join(f"w{i}" for i in range(40))


def drain(chunks) -> tuple[list[str], ChatError | None]:
    """Every chunk a viewer yields, and the error it ends with (None when it ends well)."""
    got = []
    try:
        for chunk in chunks:
            got.append(chunk)
    except ChatError as exc:
        return got, exc
    return got, None


def in_background(chunks) -> tuple[threading.Thread, list]:
    """Read a viewer on another thread, as another tab would: (thread, [chunks, error])."""
    result = []
    thread = threading.Thread(target=lambda: result.extend(drain(chunks)))
    thread.start()
    return thread, result


def test_two_viewers_see_the_same_reply_from_its_start(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply(WORDS, delay=0.02))
    first = chat.send("talk")
    head = [next(first) for _ in range(5)]
    late = chat.watch()  # a second view, joining after five chunks: it starts from the first
    assert late is not None
    thread, (seen_late) = in_background(late)
    rest = list(first)
    thread.join(30)
    assert head + rest == seen_late[0] and "".join(seen_late[0]) == WORDS and seen_late[1] is None
    assert chat.live_job() is None and chat.watch() is None
    assert [(m.text, m.status) for m in store.load(chat.conversation_id).messages] == [
        ("talk", COMPLETE), (WORDS, COMPLETE)]
    assert chat.messages[-1].text == WORDS and chat.records[-1].status == COMPLETE


def test_a_viewer_that_stops_reading_or_goes_away_never_holds_the_reply_back(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply(WORDS, delay=0.01), reply(WORDS, delay=0.01))
    idle = chat.send("one", detach=True)
    job = chat.live_job()
    first = next(idle)
    assert job.wait(30) and job.status == COMPLETE  # ended while its viewer read nothing more
    assert first + "".join(idle) == WORDS  # what it had not read is all still there
    gone = chat.send("two", detach=True)
    job = chat.live_job()
    next(gone)
    gone.close()  # the tab closed: the reply goes on
    assert job.wait(30) and job.status == COMPLETE and not job.cancelled
    assert [(m.text, m.status) for m in store.load(chat.conversation_id).messages][-1] == (WORDS, COMPLETE)


def test_stop_keeps_the_partial_reply_marked_stopped_and_counted(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply(WORDS, delay=0.05), reply(WORDS, delay=0.05))
    chunks = chat.send("talk")
    seen = "".join(next(chunks) for _ in range(3))
    chunks.close()  # the stop control
    stored = store.load(chat.conversation_id)
    kept = stored.messages[-1]
    assert kept.status == STOPPED and kept.text.startswith(seen) and len(kept.text) < len(WORDS)
    assert chat.messages[-1] == kept
    assert [r.status for r in stored.records] == [STOPPED] and stored.records[0].usage.input_tokens > 0
    # a stop from another view of the same conversation (a page run that only watches)
    started = chat.send("again", detach=True)
    next(started)
    other = ChatSession.resume(store, chat.conversation_id, chat.backend, chat.settings)
    assert other.stop() and not other.stop()
    assert other.messages[-1].status == STOPPED and other.records[-1].status == STOPPED
    assert [r.status for r in store.load(chat.conversation_id).records] == [STOPPED, STOPPED]


def test_a_reply_cut_half_way_keeps_its_text_and_every_viewer_hears_one_line(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    broken = cut("one two three")
    broken.delay = 0.1
    api.queue(broken)
    chunks = chat.send("talk")
    thread, other = in_background(chat.watch(detach=False))
    got, error = drain(chunks)
    thread.join(30)
    assert "".join(got) == "one two three" and other[0] == got
    assert isinstance(error, ConnectionLostError) and isinstance(other[1], ConnectionLostError)
    assert error is not other[1] and "the partial reply is kept" in error.message
    kept = store.load(chat.conversation_id).messages[-1]
    assert (kept.text, kept.status, kept.error) == ("one two three", FAILED, error.message)
    assert chat.records[-1].status == FAILED


def test_one_reply_at_a_time_a_message_sent_meanwhile_waits_its_turn(api, db_url):
    store = Store(db_url)
    tab_a = chat_on(store)
    api.queue(reply(WORDS, delay=0.03))
    first = tab_a.send("first")
    head = next(first)
    tab_b = ChatSession.resume(store, tab_a.conversation_id, tab_a.backend, tab_a.settings)
    second = tab_b.send("second")  # returns at once: queued
    assert [m.text for m in tab_b.queued()] == ["second"] == [m.text for m in tab_a.queued()]
    with pytest.raises(BusyError, match="still being written"):
        tab_b.regenerate()
    with pytest.raises(BusyError):
        tab_b.edit_last("changed")
    assert len(api.requests) == 1  # nothing interleaves
    assert head + "".join(first) == WORDS
    assert "".join(second) == "echo: second" and tab_b.queued() == []
    assert [m["content"] for m in api.requests[1]["messages"]] == ["first", WORDS, "second"]
    assert [m.text for m in store.load(tab_a.conversation_id).messages] == ["first", WORDS, "second", "echo: second"]
    assert [m.text for m in tab_b.messages] == ["first", WORDS, "second", "echo: second"]


def test_a_message_from_a_view_behind_the_store_is_sent_after_what_the_store_holds(api, db_url):
    """Tab A has not read tab B's exchange when it sends: the store says so as it saves A's message
    (no statement of its own), and A's request and thread carry B's exchange before A's question."""
    import sqlalchemy as sa

    store = Store(db_url)
    tab_a = chat_on(store)
    list(tab_a.send("first"))
    tab_b = ChatSession.resume(store, tab_a.conversation_id, tab_a.backend, tab_a.settings)
    list(tab_b.send("from b"))
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    assert "".join(tab_a.send("from a")) == "echo: from a"
    saved = next(i for i, sql in enumerate(statements) if sql.lstrip().upper().startswith("UPDATE CONVERSATIONS"))
    checks = [sql for sql in statements[:saved] if "MAX(id) FROM messages" in sql]
    assert not checks and "MAX(id) FROM messages" in statements[saved]  # told by the write itself
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["first", "echo: first", "from b", "echo: from b",
                                                                   "from a"]
    assert [m.text for m in tab_a.messages] == ["first", "echo: first", "from b", "echo: from b", "from a",
                                                "echo: from a"]
    # A view that is not behind sends what it holds, and reads nothing before it does.
    assert "".join(tab_a.send("again")) == "echo: again"
    assert [m["content"] for m in api.requests[-1]["messages"]][-3:] == ["from a", "echo: from a", "again"]


def test_a_queued_message_can_be_withdrawn_before_its_turn(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply(WORDS, delay=0.03))
    first = chat.send("first", detach=True)
    job = chat.live_job()
    waiting = chat.send("never mind")
    [queued] = chat.queued()
    assert queued.text == "never mind" and queued.id is not None  # stored at once: nothing typed is lost
    assert chat.withdraw(queued) and chat.queued() == [] and not chat.withdraw(queued)
    assert drain(waiting) == ([], None)
    assert job.wait(30) and "".join(first) == WORDS
    assert len(api.requests) == 1  # the withdrawn one never went out
    assert [m.text for m in store.load(chat.conversation_id).messages] == ["first", WORDS, "never mind"]


def test_the_reply_is_stored_as_it_goes_out_and_its_text_grows_while_it_streams(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    api.queue(reply(WORDS, delay=0.06))  # about 2.4 s
    viewer = chat.send("talk", detach=True)
    other_server = Store(db_url)  # another process on the same database
    deadline = time.time() + 5
    while (row := other_server.load(chat.conversation_id).messages[-1]).role != ASSISTANT:
        assert time.time() < deadline, "the reply's row never appeared"
        time.sleep(0.02)
    assert row.status == STREAMING and WORDS.startswith(row.text)
    assert chat.live_job().message_id == row.id  # a view knows which stored row the live reply is
    pieces, times = [], []
    for piece in follow_stored(other_server, row.id):  # follows the stored text while it grows
        pieces.append(piece)
        times.append(time.monotonic())
    assert "".join(pieces) == WORDS and len(pieces) >= 3  # it grew in steps, then ended
    assert max(b - a for a, b in zip(times, times[1:])) < 1.5  # never far behind
    assert "".join(viewer) == WORDS
    stored = other_server.load(chat.conversation_id)
    assert (stored.messages[-1].text, stored.messages[-1].status) == (WORDS, COMPLETE)
    assert [r.message_id for r in stored.records] == [row.id]  # the same row, finalized with its usage


def test_a_failed_regenerate_or_edit_never_hides_the_good_reply(api, db_url):
    store = Store(db_url)
    chat = chat_on(store)
    list(chat.send("question"))
    good = [("question", COMPLETE), ("echo: question", COMPLETE)]
    api.queue(http_error(529, "overloaded_error", repeat=3))  # the SDK's two retries fail too
    with pytest.raises(OverloadedError):
        list(chat.regenerate())
    assert [(m.text, m.status) for m in chat.messages] == good
    versions = chat.versions_of(chat.messages[1])
    assert [(m.status, m.active) for m in versions] == [(COMPLETE, True), (FAILED, False)]  # kept as a version
    api.queue(http_error(529, "overloaded_error", repeat=3))
    with pytest.raises(OverloadedError):
        list(chat.edit_last("a better question"))
    assert [(m.text, m.status) for m in chat.messages] == good
    assert [(m.text, m.active) for m in chat.versions_of(chat.messages[0])] == [
        ("question", True), ("a better question", False)]
    list(chat.send("next"))
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["question", "echo: question", "next"]
    stored = store.load(chat.conversation_id)
    assert [m.text for m in stored.messages] == ["question", "echo: question", "next", "echo: next"]
    assert [r.status for r in stored.records] == [COMPLETE, FAILED, FAILED, COMPLETE]  # failures are counted
    api.queue(reply("a new reply"))
    list(chat.regenerate())  # one that works takes the place
    assert [m.text for m in chat.messages][-1] == "a new reply"


def test_a_worker_that_breaks_unexpectedly_ends_its_job_in_one_line():
    def produce(note):
        note("warming up")
        yield "partial "
        raise KeyError("boom")

    job = ReplyJob(produce, Reply("test", "m")).start()
    heard = []
    got, error = drain(job.follow(heard.append))
    assert got == ["partial "] and heard == ["warming up"]
    assert job.status == FAILED and "failed unexpectedly (KeyError)" in error.message


def test_the_local_model_through_a_job_two_viewers_and_a_stop(local_model, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'chat.db'}")
    settings = settings_from_env(backend="local", max_tokens=48, window=0)
    chat = ChatSession.start(store, LocalBackend(local_model), settings)
    first = chat.send("Tell me a long story about a lighthouse keeper.")
    head = next(first)
    thread, late = in_background(chat.watch())
    rest = list(first)
    thread.join(60)
    assert [head, *rest] == late[0] and len(rest) > 5
    stored = store.load(chat.conversation_id).messages[-1]
    assert stored.text == head + "".join(rest) and stored.status == COMPLETE
    chunks = chat.send("Tell me another long story, about the sea.")
    seen = "".join(next(chunks) for _ in range(3))
    chunks.close()
    stored = store.load(chat.conversation_id)
    kept = stored.messages[-1]
    assert kept.status == STOPPED and kept.text.startswith(seen) and kept.text
    assert stored.records[-1].status == STOPPED and stored.records[-1].usage.output_tokens >= 3
    assert stored.records[-1].usage.input_tokens > 0


def agrees_with_the_store(chat: ChatSession, store: Store) -> None:
    """What a session holds is what a session that reads the conversation now holds."""
    fresh = ChatSession.resume(store, chat.conversation_id, chat.backend, chat.settings)
    assert chat.messages == fresh.messages and chat.everything == fresh.everything
    assert chat.records == fresh.records and chat.title == fresh.title
    mine, theirs = chat.totals, fresh.totals
    assert (mine.usage, mine.turns, mine.all_local, mine.estimated) == (theirs.usage, theirs.turns, theirs.all_local,
                                                                       theirs.estimated)
    assert mine.cost_usd == pytest.approx(theirs.cost_usd)


@pytest.mark.parametrize("way", ["viewed", "detached"])
def test_a_reply_that_ended_is_taken_in_from_its_job_with_one_statement(api, db_url, way):
    """The session does not read the conversation back after its reply, whether its viewer saw it end
    (the terminal) or it was taken in later (`catch_up`, the page's next run): one statement checks
    that the store holds just that reply since it last read (and sums the totals); it agrees with the store."""
    import sqlalchemy as sa

    store = Store(db_url)
    chat = chat_on(store)
    list(chat.send("first"))
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    if way == "viewed":
        assert "".join(chat.send("second")) == "echo: second"
    else:
        api.queue(reply("echo: second", delay=0.01))
        chat.send("second", detach=True)
        assert chat.live_job().wait(30) and chat.catch_up()
    counted = next(i for i, sql in enumerate(statements) if sql.lstrip().startswith("INSERT INTO turns"))
    after = [sql.lstrip() for sql in statements[counted + 1:] if sql.strip() not in ("BEGIN", "COMMIT")]
    assert len(after) == 1 and after[0].startswith("SELECT c.id"), after
    assert chat.listed == store.listed(store.list_conversations())
    agrees_with_the_store(chat, store)
    # The usual start of a reply to a question just stored: its row, nothing made inactive first.
    started = [sql for sql in statements[:counted] if "active = 0" in sql]
    assert started == [], started


@pytest.mark.parametrize("moved", ["a version chosen", "a usage row written", "a message written"])
def test_a_reply_that_ended_is_read_back_when_anything_else_moved(api, db_url, moved):
    """Another view changed the conversation while the reply was written: the session reads it again,
    so what it shows, sends and counts never drifts from the store."""
    from chat_core.conversation import Message
    from chat_core.usage import TurnRecord, Usage

    store = Store(db_url)
    chat = chat_on(store)
    list(chat.send("first"))
    list(chat.regenerate())
    earlier_reply = next(m for m in chat.everything if m.role == ASSISTANT and not m.active)
    api.queue(reply(WORDS, delay=0.01))
    chat.send("second", detach=True)  # the page's way: the job is viewed elsewhere, and taken in later
    job = chat.live_job()
    assert job is not None and job.wait(30)
    elsewhere = Store(db_url)  # another server
    cid = chat.conversation_id
    if moved == "a version chosen":
        elsewhere.choose_version(cid, earlier_reply.id)
    elif moved == "a usage row written":
        elsewhere.add_reply(cid, Message(ASSISTANT, WORDS, COMPLETE, reply_to=job.question.id),
                            TurnRecord(0, Usage(1000, 10), 1, "claude-haiku-4-5", "anthropic", 0.1, 0.2, COMPLETE, 0.5),
                            message_id=job.message_id)
    else:
        elsewhere.add_user_message(cid, Message("user", "from elsewhere"))
    assert chat.catch_up()
    agrees_with_the_store(chat, store)
    assert chat.messages[1].id == (earlier_reply.id if moved == "a version chosen" else chat.messages[1].id)


def test_a_reply_to_a_new_question_is_the_one_shown_even_if_another_view_answered_it_first(api, db_url):
    """A reply to a question stored just now makes nothing inactive first; should another view have
    started a reply to it meanwhile, the database refuses two shown replies and the earlier one is made
    inactive as for any question."""
    from chat_core.conversation import Message

    store = Store(db_url)
    cid, asked = store.add_user_message(None, Message("user", "hi"), new=dict(
        system="s", window=10, backend="anthropic", model="claude-haiku-4-5"))
    theirs = store.start_reply(cid, Message(ASSISTANT, "", reply_to=asked))
    mine = store.start_reply(cid, Message(ASSISTANT, "", reply_to=asked), first=True)
    shown = [m.id for m in store.load(cid).versions if m.role == ASSISTANT and m.active]
    assert shown == [mine] and theirs != mine
