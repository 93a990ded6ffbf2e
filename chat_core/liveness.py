"""Whether the process writing a streaming reply still lives.

Each streaming row names its writer (host:pid) and when it was last heard from
(its heartbeat). A reader anywhere can then tell a reply being written from one
whose process died: this process knows its own; on the writer's host a dead pid
shows at once; from elsewhere, a writer silent for `STALE_AFTER` seconds is gone.
"""

from __future__ import annotations

import os
import socket

# A streaming reply whose writer is silent this long is cut off (its process died).
STALE_AFTER = 15.0
CUT_OFF_NOTE = ("The app stopped while writing this reply (a restart or a crash); what it had written is kept. "
                "Regenerate for a whole reply.")

# (database, message id) of the streaming replies this process is writing.
_WRITING: set[tuple[str, int]] = set()


def writer_id() -> str:
    """This process, as a streaming reply's writer: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def started_writing(database: str, message_id: int) -> None:
    _WRITING.add((database, message_id))


def done_writing(database: str, message_id: int | None) -> None:
    _WRITING.discard((database, message_id))


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def gone(database: str, message_id: int, writer: str | None, heartbeat: float | None, now: float) -> bool:
    """True when nobody writes this streaming reply any more: this process's own once its job let
    go of it; another's when it has been silent too long, or its process is dead on this host."""
    if writer == writer_id():
        return (database, message_id) not in _WRITING
    if heartbeat is None or now - heartbeat > STALE_AFTER:
        return True
    host, _, pid = (writer or "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not _process_alive(int(pid))
