"""What both dashboard pages share: the heavy resources (built once per server
process) and this browser session's open conversation."""

from __future__ import annotations

import os

import streamlit as st

from chat_core import ChatSession, Settings, errors, settings_from_env
from chat_core.backends import Backend, make_backend
from chat_core.backends.anthropic_backend import has_credential, make_client
from chat_core.storage import Store

CHAT = "chat"  # session_state key of this browser session's ChatSession


@st.cache_resource(show_spinner=False)
def anthropic_client():
    return make_client()


@st.cache_resource(show_spinner="Loading the local model…")
def local_model(name: str):
    from chat_core.backends.local import LocalModel

    return LocalModel.load(name)


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    return Store(url)


def claude_available() -> bool:
    return has_credential(os.environ)


def base_settings() -> Settings:
    """Settings from the environment; `.streamlit/secrets.toml` may name the database:
    [connections.chat] url = "postgresql+psycopg://..."."""
    settings = settings_from_env()
    try:
        url = st.secrets.get("connections", {}).get("chat", {}).get("url")
    except FileNotFoundError:
        url = None
    return settings.with_(database_url=url) if url else settings


def backend_for(name: str, model: str) -> Backend:
    """A backend over the shared client or model; Claude falls back to local without a key."""
    if name == "anthropic" and not claude_available():
        name, model = "local", ""
    if name == "anthropic":
        return make_backend(name, model, client=anthropic_client())
    from chat_core.backends.local import DEFAULT_MODEL

    return make_backend(name, model or DEFAULT_MODEL, load_local=local_model)


def open_conversation(conversation_id: int | None) -> ChatSession:
    """Switch this browser session to a stored conversation (None, or one that is gone: a new one)."""
    settings = base_settings()
    db = store(settings.database_url)
    chat = None
    if conversation_id is not None:
        stored = db.load(conversation_id)
        if stored is not None:
            info = stored.info
            chat = ChatSession.resume(db, conversation_id, backend_for(info.backend, info.model), settings)
    if chat is None:
        chat = ChatSession.start(db, backend_for(settings.backend, settings.model), settings)
    st.query_params["c"] = str(chat.conversation_id)
    st.session_state[CHAT] = chat
    return chat


def current_chat() -> ChatSession:
    """This browser session's conversation: the one in the URL (a refresh keeps it),
    else the most recent one, else a new one. Stops the page with one line on failure."""
    chat = st.session_state.get(CHAT)
    if chat is not None:
        return chat
    try:
        wanted = st.query_params.get("c")
        settings = base_settings()
        conversation_id = int(wanted) if wanted and wanted.isdigit() else store(settings.database_url).latest_id()
        return open_conversation(conversation_id)
    except errors.ChatError as exc:
        st.error(exc.message)
        st.stop()

