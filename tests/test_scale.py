"""A long conversation costs what is shown and sent: a session holds its latest page and the
database's sums, and gives the same window, totals, request and export as one that read it all."""

import json

import pytest
import sqlalchemy as sa

from chat_core import ChatSession
from chat_core.conversation import COMPLETE, FAILED, Message, window_indices
from chat_core.export import to_json
from chat_core.session import LATEST
from chat_core.storage import Store
from chat_core.usage import TurnRecord, Usage, totals
from chat_core.window import POLICIES
from tests.test_storage import chat_on

QUESTIONS = 3 * LATEST


def long_conversation(store: Store, questions: int = QUESTIONS) -> int:
    """Exchanges of varied sizes (so the cache window's minimum matters), some whose reply failed
    with no text or holds only whitespace (never sent), each with its usage record."""
    cid = None
    for n in range(questions):
        new = dict(system="persona", window=10, backend="anthropic", model="claude-haiku-4-5")
        cid, asked = store.add_user_message(cid, Message("user", f"question {n} " + "word " * (n % 17)), new=new)
        text, status = ("", FAILED) if n % 9 == 4 else (" \n\t", COMPLETE) if n % 13 == 6 else (
            f"answer {n} " + "more " * (n * 7 % 40), COMPLETE)
        record = TurnRecord(0, Usage(100 + n, 10 + n % 5, n % 3, 7 * n), 3, "claude-haiku-4-5", "anthropic",
                            0.1, 0.5, status, 0.001 if n != 50 else None)
        store.add_reply(cid, Message("assistant", text, status, reply_to=asked), record)
    return cid


def test_a_session_holds_the_latest_page_and_agrees_with_the_whole_conversation(api, db_url):
    store = Store(db_url)
    cid = long_conversation(store)
    full = store.load(cid)
    chat = chat_on(store, backend="anthropic")
    chat = ChatSession.resume(store, cid, chat.backend, chat.settings)
    assert sum(m.role == "user" for m in chat.messages) == LATEST
    offset = len(full.messages) - len(chat.messages)
    assert offset > 0 and full.messages[offset:] == chat.messages
    assert chat.earlier.messages == offset and chat.message_count == len(full.messages)
    assert {r.message_id for r in chat.records} == {m.id for m in chat.messages if m.role == "assistant"}
    whole = totals(full.records)
    assert (chat.totals.usage, chat.totals.turns, chat.totals.cost_usd) == (whole.usage, whole.turns, None)
    for window in (1, 2, 5, 7, 20, 0):
        for policy in POLICIES:
            for min_prefix in (0, 40, 400):
                everything = window_indices(full.messages, window, policy, min_prefix)
                page = window_indices(chat.messages, window, policy, min_prefix, earlier=chat.earlier.sizes)
                assert {i + offset for i in page} == {i for i in everything if i >= offset}, (window, policy, min_prefix)
    # Older messages load when asked for; a search hit in an old message is reached.
    chat.load_earlier()
    assert sum(m.role == "user" for m in chat.messages) == 2 * LATEST
    assert chat.message_count == len(full.messages) and full.messages[-len(chat.messages):] == chat.messages
    assert chat.reach(full.messages[3].id)  # the second reply: held from its question on
    assert chat.messages == full.messages[2:] and chat.earlier.messages == 2
    # Whatever it holds, an export has every message and every turn.
    chat = ChatSession.resume(store, cid, chat.backend, chat.settings)
    exported = json.loads(to_json(chat))
    assert len(exported["messages"]) == len(full.messages) and len(exported["turns"]) == QUESTIONS


def test_a_request_is_built_from_the_whole_conversation_whatever_the_session_holds(api, db_url):
    store = Store(db_url)
    cid = long_conversation(store)
    chat = chat_on(store, backend="anthropic")
    chat = ChatSession.resume(store, cid, chat.backend, chat.settings)
    chat.update(window=7)
    list(chat.send("a new question"))
    sent = [m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in api.requests[-1]["messages"]]
    full = store.load(cid)
    history = full.messages[:-2]
    expected = [history[i].text for i in sorted(window_indices(history, 7, *chat.window_args[1:]))]
    assert sent == expected + ["a new question"] and len(sent) <= 15
    chat.update(window=0)  # all: this request loads and sends every exchange that can be sent
    list(chat.send("and everything"))
    sent = api.requests[-1]["messages"]
    never = sum(1 for n in range(QUESTIONS) if n % 9 == 4 or n % 13 == 6)  # failed, or only whitespace
    assert len(sent) == 2 * (QUESTIONS + 1 - never) + 1
    assert sum(m.role == "user" for m in chat.messages) == LATEST  # still only the page held


def test_an_exchange_in_a_long_conversation_costs_a_few_statements(api, db_url):
    store = Store(db_url)
    cid = long_conversation(store)
    chat = chat_on(store, backend="anthropic")
    chat = ChatSession.resume(store, cid, chat.backend, chat.settings)
    statements = []
    sa.event.listen(store.engine, "before_cursor_execute",
                    lambda _c, _cur, sql, *_: statements.append(sql.split()[0].upper()))
    list(chat.send("one more"))  # with no streaming to save in between: the loopback answers at once
    writes = [s for s in statements if s not in ("BEGIN",)]
    print(f"statements for one exchange: {len(writes)}: {writes}")
    assert len(writes) <= 16
    assert chat.messages[-1].text == "echo: one more" and chat.messages[-1].status == COMPLETE


def test_the_window_recurrence_resumed_from_a_known_point_gives_the_same_start():
    import random

    from chat_core.window import first_sent

    rng = random.Random(15)
    for _ in range(300):
        sizes = [rng.choice((5, 40, 300, 900)) for _ in range(rng.randrange(0, 80))]
        window, policy, minimum = rng.randrange(0, 21), rng.choice(POLICIES), rng.choice((0, 100, 1024, 4096))
        k = rng.randrange(0, len(sizes) + 1)
        known = (k, first_sent(sizes[:k], window, policy, minimum))
        assert first_sent(sizes, window, policy, minimum, resume=known) == first_sent(sizes, window, policy, minimum)


def test_the_sums_before_the_page_follow_a_version_chosen_there(api, db_url):
    store = Store(db_url)
    cid = long_conversation(store)
    question = store.load(cid).messages[10]  # long before the page
    record = TurnRecord(0, Usage(1, 1), 3, "claude-haiku-4-5", "anthropic", 0.1, 0.5, FAILED, 0.0)
    store.add_reply(cid, Message("assistant", "", FAILED, reply_to=question.id), record)  # a failed regenerate
    chat = chat_on(store, backend="anthropic")
    chat = ChatSession.resume(store, cid, chat.backend, chat.settings)
    before = list(chat.earlier.sizes)
    assert len(before) == sum(1 for n in range(2 * LATEST) if not (n % 9 == 4 or n % 13 == 6)) - 1
    first = next(m for m in store.load(cid).versions if m.reply_to == question.id)
    store.choose_version(cid, first.id)  # the good reply shown again
    chat.refresh()
    assert len(chat.earlier.sizes) == len(before) + 1 and chat.message_count == len(store.load(cid).messages)
