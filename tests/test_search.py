"""Search (chat_core.search and `python -m chat_core --search`) on a real SQLite file and a real PostgreSQL."""

import re
import time

import pytest
import sqlalchemy as sa
from hypothesis import given, settings, strategies as st

from chat_core.conversation import Message
from chat_core.database import timed_out
from chat_core.errors import InputTooLongError, StorageError, TimeoutError_
from chat_core.search import ELLIPSIS, MATCH_END, MATCH_START, MAX_CHARACTERS, MAX_WORDS, search, search_words
from chat_core.migrations import DIALECT_TYPES, MIGRATIONS
from chat_core.storage import LOCAL_OWNER, Store, sqlite_path
from chat_core.usage import TurnRecord, Usage
from tests.conftest import run_cli

ALICE, BOB = "https://idp|alice", "https://idp|bob"
NEW = dict(system="s", window=0, backend="local", model="m")
# FTS5 and tsquery syntax, and characters no database should be handed.
SYNTAX = ['"', '""', "'", "*", "-", "+", "(", ")", "{", "}", ":", "^", "\\", "NEAR", "NEAR(", "OR", "AND", "NOT",
          "&", "|", "!", "<->", ":*", "%", "_", "\x00", "\ud800", "col:", "text:", "a", "ש", "你"]


def say(store, cid, text, owner=LOCAL_OWNER) -> tuple[int, int]:
    """A user message; with `cid` None, a new conversation. Returns (conversation id, message id)."""
    return store.add_user_message(cid, Message("user", text), owner, NEW if cid is None else None)


def found(store, words, owner=LOCAL_OWNER, **kwargs) -> list[tuple[int, int | None]]:
    return [(hit.conversation_id, hit.message_id) for hit in search(store, words, owner, **kwargs)]


def record() -> TurnRecord:
    return TurnRecord(1, Usage(10, 5), 1, "m", "local", 0.1, 0.2, "complete", 0.0, "end_turn", 10)


def test_finds_words_in_messages_and_titles_newest_first(db_url):
    store = Store(db_url)
    fox, fox_message = say(store, None, "The quick brown fox")
    dog, asked = say(store, None, "Tell me about dogs")
    dog_reply, _ = store.add_reply(dog, Message("assistant", "A lazy brown dog sleeps.", reply_to=asked), record())
    bears, _ = say(store, None, "Something else entirely")
    store.rename(bears, "Brown bears")
    hits = search(store, "brown", LOCAL_OWNER)
    assert [(h.conversation_id, h.message_id) for h in hits] == [(bears, None), (dog, dog_reply), (fox, fox_message)]
    assert [h.title for h in hits] == ["Brown bears", "Tell me about dogs", "The quick brown fox"]
    assert [h.snippet for h in hits] == [f"{MATCH_START}Brown{MATCH_END} bears",
                                         f"A lazy {MATCH_START}brown{MATCH_END} dog sleeps.",
                                         f"The quick {MATCH_START}brown{MATCH_END} fox"]
    assert hits[0].updated_at >= hits[1].updated_at >= hits[2].updated_at
    assert found(store, "BROWN Fox") == [(fox, fox_message)]  # every word, any case, any order
    assert found(store, "brown cat") == [] and found(store, "bro") == []  # whole words only


def test_one_hit_per_conversation_its_newest_matching_message(db_url):
    store = Store(db_url)
    cid, _ = say(store, None, "kiwi one")
    say(store, cid, "kiwi two")
    _, newest = say(store, cid, "kiwi three")
    say(store, cid, "no fruit here")
    others = [say(store, None, f"kiwi in conversation {i}") for i in range(4)]
    assert found(store, "kiwi", limit=3) == others[:0:-1]
    assert found(store, "kiwi") == [*others[::-1], (cid, newest)]


def test_a_snippet_is_a_few_words_around_the_match_on_one_line(db_url):
    store = Store(db_url)
    text = " ".join(f"filler{i}" for i in range(200)) + "\n\nthe needle\tis here\n" + " ".join(
        f"more{i}" for i in range(200))
    say(store, None, text)
    (hit,) = search(store, "needle", LOCAL_OWNER)
    assert f"{MATCH_START}needle{MATCH_END}" in hit.snippet
    assert hit.snippet.startswith(ELLIPSIS) and hit.snippet.endswith(ELLIPSIS)
    assert len(hit.snippet.split()) < 30 and "\n" not in hit.snippet and "\t" not in hit.snippet


def test_query_syntax_is_searched_as_plain_text(db_url):
    store = Store(db_url)
    cid, message = say(store, None, 'He said "NEAR" OR (maybe) -not * stars AND e-mail don\'t')
    for words in ['"NEAR"', "NEAR", "near", "OR", "(maybe)", "maybe)", "-not", "not", "AND", "e-mail", "don't",
                  '"near" or', "said(NEAR", "stars*", "-said", "NOT said", "said -stars"]:
        assert found(store, words) == [(cid, message)], words
    for words in ["NEAR(he stars)", "he OR nothing", "sta*", "nothing OR said"]:
        assert found(store, words) == [], words  # no operator is applied: every piece is required as written


def test_no_input_makes_a_database_error(db_url):
    store = Store(db_url)
    say(store, None, " ".join(piece for piece in SYNTAX if piece.isprintable()) + " words")

    @settings(max_examples=60, deadline=None)
    @given(st.one_of(st.text(), st.lists(st.sampled_from(SYNTAX), max_size=8).map(" ".join),
                     st.lists(st.sampled_from(SYNTAX), max_size=8).map("".join)))
    def check(words):
        hits = search(store, words, LOCAL_OWNER)
        assert all(h.conversation_id and MATCH_START in h.snippet for h in hits)

    check()


@pytest.mark.parametrize("words", ["", "   ", "*", '" " ( ) - *', "\x00", "___", "\u0301"])
def test_input_with_no_letter_or_digit_finds_nothing(db_url, words):
    store = Store(db_url)
    say(store, None, "___ * - ( ) plain words")
    assert search_words(words) == [] and search(store, words, LOCAL_OWNER) == []


def test_non_latin_words(db_url):
    """What each tokenizer finds: whole words in alphabetic scripts, CJK runs whole or by their start."""
    store = Store(db_url)
    texts = {
        "hebrew": "שלום עולם, מה שלומך?",
        "vocalized": "בְּרֵאשִׁית בָּרָא",
        "arabic": "مرحبا بالعالم",
        "hindi": "नमस्ते दुनिया",
        "russian": "Привет, мир",
        "greek": "Καλημέρα κόσμε",
        "korean": "안녕하세요 세계",
        "chinese": "你好世界",
        "japanese": "東京タワーに行く",
        "french": "un café crème",
    }
    ids = {name: say(store, None, text)[0] for name, text in texts.items()}
    expected = {
        "עולם": "hebrew", "שלומך": "hebrew",
        "בְּרֵאשִׁית": "vocalized",  # found as written, points and all
        "بالعالم": "arabic", "مرحبا": "arabic",
        "दुनिया": "hindi", "नमस्ते": "hindi",  # vowel signs stay inside the word
        "привет": "russian", "МИР": "russian",
        "καλημέρα": "greek",
        "세계": "korean",
        "你好世界": "chinese", "你好": "chinese",  # a run, whole or by its start
        "東京タワーに行く": "japanese", "東京": "japanese",
        "café": "french",
    }
    for words, name in expected.items():
        assert [c for c, _ in found(store, words)] == [ids[name]], words
    # Not found: the middle of a run, a word without its points, the start of a spaced word.
    for words in ["世界", "タワー", "בראשית", "שלו"]:
        assert found(store, words) == [], words
    # Latin accents: folded by SQLite's tokenizer, kept by PostgreSQL's 'simple' configuration.
    assert bool(found(store, "cafe")) == db_url.startswith("sqlite")
    (hit,) = search(store, "東京", LOCAL_OWNER)
    assert hit.snippet == f"{MATCH_START}東京タワーに行く{MATCH_END}"


def test_another_owners_conversations_are_never_found(db_url):
    store = Store(db_url)
    mine, mine_message = say(store, None, "secret plan", owner=ALICE)
    for i in range(40):  # newer matches, all someone else's: more than a first batch
        say(store, None, f"secret plan {i}", owner=BOB)
    theirs, _ = say(store, None, "unrelated", owner=BOB)
    store.rename(theirs, "Secret title", owner=BOB)
    assert found(store, "secret plan", ALICE, limit=3) == [(mine, mine_message)]
    assert found(store, "secret", ALICE) == [(mine, mine_message)]
    assert found(store, "title", ALICE) == [] and found(store, "secret") == []
    assert len(found(store, "secret", BOB)) == 20


def test_the_index_follows_every_write(db_url):
    store = Store(db_url)
    cid, first = say(store, None, "apples and pears")
    keep, keep_message = say(store, None, "apples forever")
    assert found(store, "pears") == [(cid, first)]
    _, second = say(store, cid, "plums now")
    assert found(store, "plums") == [(cid, second)]
    reply, _ = store.add_reply(cid, Message("assistant", "cherries, stopped", "stopped", reply_to=second), record())
    assert found(store, "cherries") == [(cid, reply)]
    store.rename(cid, "Orchard notes")
    assert found(store, "orchard") == [(cid, None)]
    store.rename(cid, "Garden notes")
    assert found(store, "orchard") == [] and found(store, "garden") == [(cid, None)]
    with store.engine.begin() as conn:  # an edit in place (no face does this yet): the index follows
        conn.execute(sa.text("UPDATE messages SET text = 'bananas' WHERE id = :id"), {"id": first})
    assert found(store, "bananas") == [(cid, first)] and found(store, "pears") == []
    store.delete_conversation(cid)
    for words in ("bananas", "plums", "cherries", "garden"):
        assert found(store, words) == [], words
    assert found(store, "apples") == [(keep, keep_message)]
    if db_url.startswith("sqlite"):
        with store.engine.begin() as conn:
            for index in ("message_search", "title_search"):
                conn.execute(sa.text(f"INSERT INTO {index} ({index}) VALUES ('integrity-check')"))


def test_a_version_3_database_is_indexed_by_migration_4(db_url):
    if sqlite_path(db_url):
        sqlite_path(db_url).parent.mkdir()
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        for number, statements in MIGRATIONS[:3]:
            for statement in statements:
                conn.execute(sa.text(statement.format(**DIALECT_TYPES[engine.dialect.name])))
            conn.execute(sa.text("INSERT INTO schema_version VALUES (:v)"), {"v": number})
        conn.execute(sa.text("INSERT INTO conversations (title, system, window_size, backend, model, created_at, "
                             "updated_at, owner) VALUES ('Old zeppelin notes', 's', 0, 'local', 'm', 1, 2, :o)"),
                     {"o": ALICE})
        for text in ("the first airship", "a second airship"):
            conn.execute(sa.text("INSERT INTO messages (conversation_id, role, text, status, created_at) "
                                 "VALUES (1, 'user', :text, 'complete', 1)"), {"text": text})
    engine.dispose()
    store = Store(db_url)
    assert store.migrate() == MIGRATIONS[-1][0]
    assert found(store, "airship", ALICE) == [(1, 2)]
    assert found(store, "zeppelin", ALICE) == [(1, None)]
    _, new = say(store, 1, "airship three", owner=ALICE)
    assert found(store, "airship", ALICE) == [(1, new)]


def test_a_failing_search_is_one_storage_error_line(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'chat.db'}")
    say(store, None, "hello")
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE message_search"))  # an index gone bad
    with pytest.raises(StorageError) as caught:
        search(store, "hello", LOCAL_OWNER)
    assert "\n" not in str(caught.value) and "message_search" not in str(caught.value)
    (tmp_path / "chat.db").unlink()
    with pytest.raises(StorageError, match="was deleted while the app was running"):
        search(store, "hello", LOCAL_OWNER)


def test_terminal_search_lists_hits_newest_first_then_resume(isolated):
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    older, _ = say(store, None, "How do I bake sourdough bread?")
    newer, _ = say(store, None, "\x1b]0;owned\x07Evil\x1b[2J title")
    say(store, newer, "Rye bread \x1b[31mred\x1b[0m with seeds")
    say(store, None, "nothing relevant")
    result = run_cli("--search", "bread", stdin="")
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"\s*{newer}  \d{{4}}-\d\d-\d\d \d\d:\d\d  \]0;ownedEvil\[2J title", lines[0])
    assert lines[1].strip() == f"Rye {MATCH_START}bread{MATCH_END} [31mred[0m with seeds"
    assert re.fullmatch(rf"\s*{older}  .*  How do I bake sourdough bread\?", lines[2])
    assert lines[3].strip() == f"How do I bake sourdough {MATCH_START}bread{MATCH_END}?"
    assert lines[4] == "Continue one with --resume ID." and len(lines) == 5
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", result.stdout)
    two_words = run_cli("--search", "sourdough", "BREAD", stdin="")
    assert two_words.stdout.splitlines()[0].strip().startswith(f"{older}  ")
    missing = run_cli("--search", "zebra", '"(', stdin="")
    assert (missing.returncode, missing.stdout, missing.stderr) == (0, 'No conversation mentions zebra "(.\n', "")
    nothing = run_cli("--search", "*", stdin="")
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert nothing.stderr.startswith("! --search needs a word to look for") and nothing.stderr.count("\n") == 1


def test_a_search_too_long_is_refused_with_one_line(db_url):
    store = Store(db_url)
    cid, message = say(store, None, " ".join(f"w{i}" for i in range(40)))
    assert found(store, " ".join(f"w{i}" for i in range(MAX_WORDS))) == [(cid, message)]  # at the bound: searched
    with pytest.raises(InputTooLongError) as caught:
        search(store, " ".join(f"w{i}" for i in range(MAX_WORDS + 1)), LOCAL_OWNER)
    assert str(caught.value) == f"That search has {MAX_WORDS + 1} words; a search takes at most {MAX_WORDS}: shorten it."
    assert found(store, "w1 " + "-" * (MAX_CHARACTERS - 3)) == [(cid, message)]  # punctuation is not a word
    with pytest.raises(InputTooLongError) as caught:
        search(store, "w1 " * 20_000, LOCAL_OWNER)
    assert str(caught.value) == (f"That search is 60,000 characters long; a search takes at most {MAX_CHARACTERS:,}: "
                                 "shorten it.")


def test_the_terminal_refuses_a_search_too_long_with_one_line(isolated):
    Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    result = run_cli("--search", *["word"] * 40, stdin="")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == f"! That search has 40 words; a search takes at most {MAX_WORDS}: shorten it.\n"


def slow_search_data(store, rows=20_000, words=8, cid=None) -> tuple[str, int]:
    """Messages that each hold every one of `words` words, all in someone else's conversation
    (`cid`, or a new one): a search for them reads every match and keeps none. Returns that
    search and the conversation."""
    if cid is None:
        cid, _ = say(store, None, "the slow one", owner=BOB)
    text = " ".join(f"v{i}" for i in range(words))
    with store.engine.begin() as conn:
        conn.execute(sa.text("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :rows) "
                             "INSERT INTO messages (conversation_id, role, text, status, created_at) "
                             "SELECT :cid, 'user', :text, 'complete', 1 FROM n"), {"cid": cid, "text": text, "rows": rows})
        if store.engine.dialect.name == "postgresql":
            conn.execute(sa.text("ANALYZE messages"))
    return text, cid


def test_a_search_past_its_timeout_is_stopped_inside_the_database(db_url):
    store = Store(db_url)
    cid = None
    for _ in range(5):  # rows until the whole search takes a while, however fast the machine
        words, cid = slow_search_data(store, rows=30_000, cid=cid)
        started = time.monotonic()
        assert search(store, words, LOCAL_OWNER, timeout=60) == []
        full = time.monotonic() - started  # a busy machine makes it longer, never shorter
        if full > 0.2:
            break
    timeout = round(full / 8, 3)
    assert timeout >= 0.005, f"the search takes {full:.3f} s: too quick to be stopped halfway"
    with pytest.raises(TimeoutError_) as caught:
        search(store, words, LOCAL_OWNER, timeout=timeout)
    assert str(caught.value) == f"The search took longer than {timeout:.3g} s and was stopped: use fewer or rarer words."
    # The database stopped the statement while it ran (PostgreSQL's statement_timeout, SQLite's
    # progress handler): its error is what the line replaced, not a clock read after it finished.
    stopped = caught.value.__context__
    assert isinstance(stopped, sa.exc.OperationalError) and timed_out(stopped), repr(stopped)
    # The connection went back to the pool without its limit: what runs next on it runs in full.
    assert [c.title for c in store.list_conversations(BOB)] == ["the slow one"]
    assert search(store, words, LOCAL_OWNER, timeout=60) == [] and len(found(store, words, BOB)) == 1


def test_the_dashboard_shows_a_search_too_long_as_one_line(api, app):
    at = app()
    at.chat_input(key="chat_input").set_value("a first question").run()
    at.text_input(key="chat_search").set_value(" ".join(["question"] * 40)).run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"That search has 40 words; a search takes at most {MAX_WORDS}: shorten it."]
    at.text_input(key="chat_search").set_value("question").run()
    assert not at.error and any("**question**" in c.value for c in at.caption)
