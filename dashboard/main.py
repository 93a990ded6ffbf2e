"""What `streamlit_app.py` does: at server start, and on every run of a browser session."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

import streamlit as st

from dashboard import access, state, streamlit_adapter

ICON = Path(__file__).resolve().parent.parent / "static" / "icon.svg"  # shipped: the tab's icon loads from nowhere else


@asynccontextmanager
async def lifespan(_app):
    """Server start: begin loading the bundled model in the background (without a key), so
    the first reply after a start is as quick as the next. Serving does not wait for it."""
    streamlit_adapter.navigation_pages_only()
    state.preload_local_model_if_needed()
    yield


def run() -> None:
    """One run of the page: let in only who may use it (see dashboard/access.py), open this
    browser session's conversation (drawn from the store on every run, kept in the URL as
    `?c=ID` on every page), then hand over to the page the navigation picked."""
    st.set_page_config(page_title="Claude chat", page_icon=ICON, layout="wide")
    access.owner()  # before anything else: stops here, with what to do, before sign-in or when refused
    pages = st.navigation([
        st.Page("pages/chat.py", title="Chat", icon=":material/forum:", default=True),
        st.Page("pages/tokens.py", title="Tokens", icon=":material/bar_chart:", url_path="tokens"),
    ])
    streamlit_adapter.url_slot()  # where `state.sync_url` may rewrite the address in place
    state.current_chat()
    state.preload_local_model_if_needed()  # started at server start already; this covers AppTest and reloads
    if who := access.signed_in_as():
        with st.sidebar:
            st.caption(f"Signed in as **{state.plain(who)}**")
            st.button("Sign out", icon=":material/logout:", type="tertiary", key="app_sign_out", on_click=st.logout)
    state.show_notice()
    pages.run()
