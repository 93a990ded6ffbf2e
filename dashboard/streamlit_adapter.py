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


# Run in the page itself (st.html), allowed by its hash (dashboard/csp.py): the last mark names the query.
REPLACE_URL_SCRIPT = """
(() => {
  const marks = document.querySelectorAll("[data-chat-url]");
  if (!marks.length) return;
  const query = marks[marks.length - 1].getAttribute("data-chat-url");
  const url = location.pathname + (query ? "?" + query : "") + location.hash;
  if (location.pathname + location.search + location.hash !== url) history.replaceState(history.state, "", url);
})();
"""
_URL_SLOT = "streamlit_adapter_url_slot"  # session_state: this run's place for the script below


def url_slot() -> None:
    """Keep a place at the top of the sidebar, in every run, for `show_query` (always there, so the
    elements after it keep their places from run to run; hidden)."""
    st.session_state[_URL_SLOT] = st.sidebar.empty()


def _session_query():
    from streamlit.runtime.state.session_state_proxy import get_session_state

    return get_session_state().query_params()


def replace_query(key: str, values: list[str]) -> None:
    """Set (or, with no `values`, remove) the URL's query parameter `key` in place: the browser's current
    history entry changes (by `show_query`'s script), and no new one is added, as `st.query_params` would
    (Back then comes to the entry before, not to the URL replaced, such as a new chat since stored).

    Streamlit 1.67 adds a history entry (`pushState`) for every change of `st.query_params` made by a run,
    unless the browser's address already reads so; it has no way to replace the current entry. So the
    session's query is changed without a message to the browser (`QueryParams.set_with_no_forward_msg`),
    with the run's `ctx.query_string`, which a rerun from this run and the session's saved client state
    take. When the browser next reports its query (its rerun requests carry Streamlit's own copy while
    that is not empty, else the address), an ordinary `st.query_params` change finds the address already
    right and adds no entry. Without JavaScript, that later change adds an entry, as before."""
    from urllib.parse import urlencode

    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    with _session_query() as params:
        if values:
            params.set_with_no_forward_msg(key, list(values))
        else:
            params.discard_param_no_forward_msg(key)
        query = urlencode(params._query_params, doseq=True)  # noqa: SLF001 (as Streamlit's own message)
    ctx = get_script_run_ctx()
    if ctx is not None:
        ctx.query_string = query


def show_query() -> None:
    """Put the session's query in the page, where a constant script makes the address read it in place
    (`history.replaceState`) whenever it or the page changes: in every run, after any change of the query,
    so a run that ended before the browser drew it (a fast reply's) cannot lose it, and an ordinary change
    has been recorded by the browser (a message it handles before it draws the page) before the script looks."""
    import html
    from urllib.parse import urlencode

    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    with _session_query() as params:
        query = urlencode(params._query_params, doseq=True)  # noqa: SLF001
    ctx = get_script_run_ctx()
    # The page too: a switch of page drops the query from the address (Streamlit keeps only the
    # parameters bound to widgets), and the script runs again only when the markup changes.
    page = ctx.page_script_hash if ctx is not None else ""
    markup = (f'<span data-chat-url="{html.escape(query, quote=True)}" data-chat-page="{html.escape(page)}"></span>'
              "<style>.stElementContainer:has([data-chat-url]) { display: none; }</style>"
              f"<script>{REPLACE_URL_SCRIPT}</script>")
    slot = st.session_state.get(_URL_SLOT)
    (slot if slot is not None else st.sidebar).html(markup, unsafe_allow_javascript=True, width="content")
