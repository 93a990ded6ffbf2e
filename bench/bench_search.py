"""Full-text search over 10,000 conversations holding 1,000,000 messages. Prints figures; asserts nothing.

    python bench/bench_search.py                   # SQLite; PostgreSQL too when CHAT_TEST_POSTGRES_URL is set
    python bench/bench_search.py --messages 100000 # a smaller run

The text is generated: a fixed vocabulary of made-up words drawn with Zipf's law
(a few very common words, a long tail of rare ones), so every run is the same.
The rows are loaded in bulk into a version-3 database (before search existed),
then the store's own migration builds the index, as an upgrade would. Figures:
the migration's time, the median search over 50 queries of one or two words
(from the most common words to the rarest), and one message write with the
index against without it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chat_core.conversation import Message  # noqa: E402
from chat_core.search import search  # noqa: E402
from chat_core.migrations import DIALECT_TYPES, MIGRATIONS, fts5_index  # noqa: E402
from chat_core.storage import LOCAL_OWNER, Store, title_from  # noqa: E402
from tests.conftest import empty_postgres  # noqa: E402

CONVERSATIONS = 10_000
MESSAGES = 1_000_000
OTHER_OWNER = "https://idp.example|someone-else"  # every tenth conversation is theirs
VOCABULARY = 30_000
QUERIES = 50
WRITES = 500
BLOCK = 50  # SQLite: writes with and without the index alternate in blocks of this many
SYLLABLES = ["ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "ve", "zu", "an", "el", "in", "or", "us",
             "bri", "dra", "fen", "gol", "hap", "jin", "kel", "mor", "nix", "pol", "qua", "sta", "tri", "vom", "wex"]


def vocabulary(rng: np.random.Generator) -> list[str]:
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words["".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 5))))] = None
    return list(words)


def generate(messages: int, conversations: int) -> tuple[list[str], list[tuple], list[tuple]]:
    """The vocabulary, conversation rows and message rows, the same on every run."""
    rng = np.random.default_rng(2024)
    words = vocabulary(rng)
    weights = 1.0 / np.arange(1, len(words) + 1)
    # Users ask in a few words, replies run longer.
    lengths = np.where(np.arange(messages) % 2 == 0, rng.integers(4, 30, messages), rng.integers(20, 120, messages))
    drawn = rng.choice(len(words), size=int(lengths.sum()), p=weights / weights.sum())
    vocab = np.array(words, dtype=object)
    per_conversation = messages // conversations
    start_time = 1_700_000_000.0
    message_rows, conversation_rows, offset = [], [], 0
    for index in range(messages):
        text = " ".join(vocab[drawn[offset:offset + lengths[index]]])
        offset += lengths[index]
        cid = min(index // per_conversation, conversations - 1) + 1
        role = "user" if index % 2 == 0 else "assistant"
        message_rows.append((index + 1, cid, role, text, "complete", start_time + index * 30))
        if index % per_conversation == 0 and cid > len(conversation_rows):
            owner = OTHER_OWNER if cid % 10 == 0 else LOCAL_OWNER
            conversation_rows.append([cid, title_from(text), "persona", 10, "local", "m", start_time + index * 30,
                                      0.0, owner])
    for row in conversation_rows:
        row[7] = max(m[5] for m in message_rows[(row[0] - 1) * per_conversation:row[0] * per_conversation])
    return words, [tuple(row) for row in conversation_rows], message_rows


def version_3(url: str) -> sa.Engine:
    """An empty database at schema version 3: the one before search."""
    engine = sa.create_engine(url)
    types = DIALECT_TYPES[engine.dialect.name]
    if engine.dialect.name == "postgresql":
        empty_postgres(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
        for number, statements in MIGRATIONS[:3]:
            for statement in statements:
                conn.execute(sa.text(statement.format(**types)))
            conn.execute(sa.text("INSERT INTO schema_version VALUES (:v)"), {"v": number})
    return engine


CONVERSATION_COLUMNS = "id, title, system, window_size, backend, model, created_at, updated_at, owner"
MESSAGE_COLUMNS = "id, conversation_id, role, text, status, created_at"


def load_sqlite(engine: sa.Engine, conversations: list[tuple], messages: list[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.executemany(f"INSERT INTO conversations ({CONVERSATION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           conversations)
        cursor.executemany(f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", messages)
        raw.commit()
    finally:
        raw.close()


def load_postgres(engine: sa.Engine, conversations: list[tuple], messages: list[tuple]) -> None:
    raw = engine.raw_connection()
    try:
        with raw.driver_connection.cursor() as cursor:
            for table, columns, rows in (("conversations", CONVERSATION_COLUMNS, conversations),
                                         ("messages", MESSAGE_COLUMNS, messages)):
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cursor.execute(f"SELECT setval('{table}_id_seq', (SELECT MAX(id) FROM {table}))")
            cursor.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def queries(words: list[str]) -> list[str]:
    """One or two words each, their frequency ranks spread evenly on a log scale."""
    rng = np.random.default_rng(7)
    ranks = np.exp(rng.uniform(0, np.log(len(words)), size=(QUERIES, 2))).astype(int)
    return [words[a] if i % 2 == 0 else f"{words[a]} {words[b]}" for i, (a, b) in enumerate(ranks)]


def time_searches(store: Store, words: list[str]) -> list[float]:
    search(store, words[0], LOCAL_OWNER)  # a first query opens the connection
    times = []
    for query in queries(words):
        start = time.perf_counter()
        search(store, query, LOCAL_OWNER)
        times.append(time.perf_counter() - start)
    return times


def timed_write(store: Store, cid: int, text: str) -> float:
    start = time.perf_counter()
    store.add_user_message(cid, Message("user", text))
    return time.perf_counter() - start


def write_costs(store: Store, texts: list[str]) -> tuple[list[float], list[float]]:
    """Message writes (the store's own add_user_message), with the index and without it. SQLite:
    in alternating blocks, the triggers dropped and made again; PostgreSQL: all with the index,
    then all after dropping the tsvector columns (adding them back would rewrite the table)."""
    cid = store.add_user_message(None, Message("user", texts[0]), new=dict(system="s", window=0, backend="local",
                                                                               model="m"))[0]
    with_index, without = [], []
    if store.engine.dialect.name == "sqlite":
        triggers = {f"{index}_{event}": statement
                    for index, table, column in (("message_search", "messages", "text"),
                                                 ("title_search", "conversations", "title"))
                    for event, statement in zip(("insert", "delete", "update"), fts5_index(index, table, column)[1:4])}
        for block in range(0, WRITES, BLOCK):
            with_index += [timed_write(store, cid, text) for text in texts[block:block + BLOCK]]
            with store.engine.begin() as conn:
                for name in triggers:
                    conn.execute(sa.text(f"DROP TRIGGER {name}"))
            without += [timed_write(store, cid, text) for text in texts[block:block + BLOCK]]
            with store.engine.begin() as conn:
                for statement in triggers.values():
                    conn.execute(sa.text(statement))
    else:
        with_index = [timed_write(store, cid, text) for text in texts[:WRITES]]
        with store.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE messages DROP COLUMN text_tsv"))
            conn.execute(sa.text("ALTER TABLE conversations DROP COLUMN title_tsv"))
        without = [timed_write(store, cid, text) for text in texts[:WRITES]]
    return with_index, without


def bench(name: str, url: str, data: tuple[list[str], list[tuple], list[tuple]]) -> None:
    words, conversations, messages = data
    engine = version_3(url)
    start = time.perf_counter()
    (load_sqlite if engine.dialect.name == "sqlite" else load_postgres)(engine, conversations, messages)
    engine.dispose()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    store = Store(url)
    migrated = time.perf_counter() - start
    print(f"{name}: {len(messages):,} messages in {len(conversations):,} conversations loaded in {loaded:.0f} s; "
          f"migrating from version 3 to {store.migrate()} (building the index) took {migrated:.0f} s")
    times = sorted(time_searches(store, words))
    print(f"{name}: search, median of {len(times)} queries of 1-2 words: {statistics.median(times) * 1000:6.1f} ms "
          f"(90th percentile {times[int(len(times) * 0.9)] * 1000:.1f} ms, slowest {times[-1] * 1000:.1f} ms; "
          "goal on SQLite < 50 ms)")
    with_index, without = write_costs(store, [m[3] for m in messages[-WRITES * 2::2]])
    ratio = statistics.median(with_index) / statistics.median(without)
    print(f"{name}: one message write, median of {len(with_index)}: {statistics.median(with_index) * 1000:.2f} ms "
          f"with the index, {statistics.median(without) * 1000:.2f} ms without: {ratio:.2f}x (goal <= 1.5x)")
    store.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=MESSAGES)
    parser.add_argument("--conversations", type=int, default=CONVERSATIONS)
    args = parser.parse_args()
    start = time.perf_counter()
    data = generate(args.messages, args.conversations)
    print(f"generated {args.messages:,} messages ({sum(len(m[3]) for m in data[2]) / 1e6:.0f} MB of text) "
          f"in {time.perf_counter() - start:.0f} s")
    with tempfile.TemporaryDirectory() as folder:
        bench("SQLite", f"sqlite:///{folder}/chat.db", data)
    url = os.environ.get("CHAT_TEST_POSTGRES_URL")
    if url:
        bench("PostgreSQL", url, data)
    else:
        print("PostgreSQL: skipped (set CHAT_TEST_POSTGRES_URL; .ci/start-postgres starts one)")


if __name__ == "__main__":
    main()
