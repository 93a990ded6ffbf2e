"""The connection to the database: an engine for a URL, the text it stores, an id it can hold,
and one line for each way it fails. chat_core.storage builds the store on it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy as sa

from .errors import StorageError, redact_url

IMMEDIATE = "chat_begin_immediate"  # execution option: this SQLite transaction takes the write lock at BEGIN
MAX_ROW_ID = 2**31 - 1  # conversation and message ids are PostgreSQL INTEGERs (SERIAL), on SQLite too


def sqlite_path(url: str) -> Path | None:
    return Path(url.removeprefix("sqlite:///")).expanduser() if url.startswith("sqlite:///") else None


def make_engine(url: str) -> sa.Engine:
    """An engine for `url`; a URL it cannot use is one StorageError line (never the URL's secrets).

    Every text it is handed is stored as `storable` makes it, on either database."""
    path = sqlite_path(url)
    try:
        engine = sa.create_engine(url, pool_pre_ping=True) if path is None else _sqlite_engine(url, path)
    except sa.exc.NoSuchModuleError:
        raise StorageError(f"CHAT_DATABASE_URL {redact_url(url)} names a database SQLAlchemy does not know: "
                           "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB.") from None
    except (sa.exc.ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StorageError(f"CHAT_DATABASE_URL {redact_url(url)} is not a database URL: "
                           "write it as postgresql+psycopg://USER:PASSWORD@HOST/DB (or sqlite:///FILE).") from None
    except ImportError as exc:
        raise StorageError(f"CHAT_DATABASE_URL {redact_url(url)} needs the Python package {exc.name}, "
                           "which is not installed: install it, or use postgresql+psycopg://.") from None
    sa.event.listen(engine, "before_cursor_execute", _storable_parameters, retval=True)
    return engine


def _sqlite_engine(url: str, path: Path) -> sa.Engine:
    # Only the owner reads the chats: a private folder and file.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        path.touch(mode=0o600)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    own_sqlite_transactions(engine)
    return engine


def own_sqlite_transactions(engine: sa.Engine) -> None:
    """SQLite transactions exactly as SQLAlchemy opens them, DDL included.

    Python 3.11's sqlite3 begins a transaction only before INSERT, UPDATE or
    DELETE, so a CREATE or ALTER that comes first commits on its own, and a
    migration killed part-way kept half its changes. Here the driver is told to stay out of it
    and BEGIN is emitted in SQLAlchemy's `begin` event (the recipe of its pysqlite
    docs, "Serializable isolation / Savepoints / Transactional DDL"): every
    transaction is all or nothing. A transaction with the `IMMEDIATE` execution
    option begins with BEGIN IMMEDIATE: it holds the write lock from its first
    read, so a writer that reads before it writes waits its turn instead of failing."""

    @sa.event.listens_for(engine, "connect")
    def _driver_leaves_transactions_alone(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(IMMEDIATE) else "BEGIN")


@contextlib.contextmanager
def write_transaction(engine: sa.Engine):
    """A write transaction that may read before it writes: on SQLite it holds the write lock
    from BEGIN (IMMEDIATE), so writers take turns and never fail mid-way."""
    with engine.connect() as conn:
        conn.execution_options(**{IMMEDIATE: True})
        with conn.begin():
            yield conn


def storable(text: str) -> str:
    """`text` as the store keeps it: NUL characters dropped (PostgreSQL cannot store them, and
    what a person types drops them too) and a lone surrogate (no encoding has one) made U+FFFD."""
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _storable_parameters(_conn, _cursor, statement, parameters, _context, _executemany):
    """Every value a statement is given, texts made `storable`: every text column, both databases."""
    return statement, _storable_values(parameters)


def _storable_values(value):
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {name: _storable_values(item) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_storable_values(item) for item in value)
    return value


def is_row_id(value: object) -> bool:
    """Whether `value` can name a stored row: an int from 1 to MAX_ROW_ID. Anything else (text
    forged into a picker, a bool, a number past PostgreSQL's INTEGER) names none: a Store method
    given one finds nothing there, as for an id that was deleted, and asks no database."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ROW_ID


def timed_out(exc: sa.exc.SQLAlchemyError) -> bool:
    """Whether `exc` is a statement stopped for taking too long: PostgreSQL's statement_timeout
    (SQLSTATE 57014), SQLite's progress handler asking it to stop (see chat_core.search)."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return state == "57014" or str(orig).startswith("interrupted")


def explain(exc: sa.exc.SQLAlchemyError, path: Path | None, url: str) -> str:
    """One line for a database failure: what happened and what to do. Never SQL, message text
    or a secret of the URL; "check CHAT_DATABASE_URL" only when the connection itself failed."""
    orig = getattr(exc, "orig", None) or exc
    reason, name = str(orig).splitlines()[0].lower() if str(orig) else "", type(orig).__name__
    if path is not None:
        if "not a database" in reason or "malformed" in reason:
            return (f"The database file {path} is unreadable (damaged, or not a SQLite file): "
                    "move it aside and restart to begin a new one.")
        if "readonly" in reason or "read-only" in reason:
            return (f"The database file {path} is read-only, so nothing new can be saved: "
                    "fix its permissions (or CHAT_DATA_DIR) and send again.")
        if "unable to open" in reason:
            return f"Could not open the database file {path}: check CHAT_DATA_DIR and its permissions."
        if "locked" in reason:
            return f"The database file {path} is busy (locked by another program): try again in a moment."
        if "full" in reason:
            return f"The disk holding {path} is full, so nothing new can be saved: free some space and try again."
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or ""
    if timed_out(exc):
        return "The database took too long to answer and the request was stopped: try again in a moment."
    if state.startswith("28") or "authentication failed" in reason:
        return (f"The database {url} refused the user name or password ({name}): "
                "check the credentials in CHAT_DATABASE_URL.")
    # No statement: it failed while connecting. No SQLSTATE: the driver's own failure (refused,
    # unknown host, connection lost), not the server's answer to a statement.
    connecting = isinstance(exc, sa.exc.DBAPIError) and exc.statement is None
    if path is None and (connecting or state.startswith(("08", "57P")) or (
            not state and isinstance(exc, sa.exc.OperationalError))):
        return (f"Could not open the database {url} ({name}): check CHAT_DATABASE_URL "
                "and that the server is running, then try again.")
    if isinstance(exc, sa.exc.DataError):
        return f"The database refused a value it was given ({name}), so nothing was changed: please report this."
    if isinstance(exc, sa.exc.IntegrityError):
        return (f"The database refused a change that conflicts with what it holds ({name}): "
                "reload the page (or resume the chat) and try again.")
    return (f"The database failed ({name}), so nothing was changed: try again, and if it keeps failing, "
            "look at the database server's log.")

