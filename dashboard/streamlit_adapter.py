"""What the dashboard needs from Streamlit 1.67 that Streamlit does not offer publicly, in one place.

`tests/test_streamlit_adapter.py` checks each premise below and fails loudly when a Streamlit
upgrade changes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import streamlit as st


def navigation_pages_only() -> None:
    """Make the top-level `pages/` folder mean nothing to Streamlit but the files `st.navigation` lists.

    Streamlit 1.67 still treats a `pages/` folder beside the main script as its old automatic
    page list until the first `st.navigation` call of the process turns that off
    (`PagesManager.uses_pages_directory`). Until then, the server's very first run shows the
    old list (*streamlit app*, *chat*, *tokens*) and runs a page such as `/tokens` without the
    app's own set-up. Called at server start, before any browser session runs."""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False


def is_history_navigation() -> bool:
    """True when the browser's Back or Forward started this run.

    Streamlit records each change of `st.query_params` as a browser history entry, and on Back
    it reruns the script with that entry's URL, marking the run as a history navigation. Only
    that mark tells such a run from any other (a rerun request may carry a URL the page has
    already moved on from), and it is not public."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.is_history_navigation)


def stream_markdown(chunks: Iterable[str], safe: Callable[[str], str], box=None) -> str:
    """Show the text of `chunks` as it grows, each state passed through `safe`, in `box` (an `st.empty()`;
    made at the first chunk when None); return the text.

    `st.write_stream` renders the raw concatenation of the chunks, so a remote image in a reply
    would load while it streams, before the finished reply is drawn again through
    chat_core.markdown_safety. This does what `st.write_stream` does for text (one placeholder,
    redrawn with the whole text so far, unclosed Markdown such as `**bold` completed while
    streaming) but shows `safe(text)`. That completion is not public in Streamlit 1.67:
    `st.write_stream` calls `DeltaGenerator._markdown(..., unterminated_parsing=True)`."""
    text = ""
    for chunk in chunks:
        if not chunk:
            continue
        text += chunk
        if box is None:
            box = st.empty()
        box._markdown(safe(text), unterminated_parsing=True)  # noqa: SLF001 (see the docstring)
    return text


def session_id() -> str | None:
    """The id of the browser session this run belongs to (None outside a run)."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    return None if ctx is None else ctx.session_id


def session_alive(session_id: str) -> bool:
    """Whether a browser session is still connected (`Runtime.get_app_session`, safe from any thread)."""
    from streamlit.runtime import Runtime

    return Runtime.exists() and Runtime.instance().get_app_session(session_id) is not None


def rerun_session(session_id: str, busy: Callable[[], None] | None = None) -> bool:
    """Ask another browser session to run its page again, from any thread; False when it is gone.
    A session whose page is running already is left alone and `busy()` is called instead (on the
    session's event loop): a rerun would replace that run, and with it the message just submitted.

    Streamlit 1.67 has no public way to rerun a session from outside its own run (`st.rerun`
    works only inside one). Its own file watcher does exactly this when a source file changes
    (`AppSession._on_source_file_changed` with `runOnSave`): `request_rerun` with the session's
    last client state (its URL and page; its widgets keep their values), which must run on the
    session's event loop: `Runtime.get_app_session` (documented safe from any thread) finds it,
    `AppSession._call_soon_on_event_loop` hands the call over, and `AppSession._scriptrunner` is
    set exactly while a run goes on."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False
    session = Runtime.instance().get_app_session(session_id)
    if session is None:
        return False

    def ask() -> None:
        if session._scriptrunner is not None and busy is not None:  # noqa: SLF001
            busy()
        else:
            session.request_rerun(session._client_state)  # noqa: SLF001

    session._call_soon_on_event_loop(ask)  # noqa: SLF001
    return True
