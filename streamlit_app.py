"""The chat page: `streamlit run streamlit_app.py`.

A thin face over chat_core: it renders the conversation, streams the reply
through st.write_stream, and shows errors as one line inside the bubble.
"""

from __future__ import annotations

import datetime as dt
import zlib

import streamlit as st

from chat_core import COMPLETE, FAILED, STOPPED, ChatSession, errors, format_cost
from chat_core.export import to_json, to_markdown
from chat_core.usage import known_models
from dashboard import state

st.set_page_config(page_title="Claude chat", page_icon="💬", layout="wide")

RECENT = 60  # messages drawn before "show earlier", so a long chat reruns fast
WINDOW_STEPS = list(range(1, 21)) + ["all"]
BACKEND_LABELS = {"local": "Local model (offline)", "anthropic": "Claude"}

chat: ChatSession = state.current_chat()
cid = chat.conversation_id
db = chat.store


def _value(key: str):
    return st.session_state[key]


def conversation_picker() -> None:
    conversations = db.list_conversations()
    ids = [c.id for c in conversations]
    titles = {c.id: f"{c.title} · {dt.datetime.fromtimestamp(c.created_at):%b %d %H:%M}" for c in conversations}
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    # The list's labels change (a first message names a chat): a new list is a new widget,
    # so the browser never sends back a label the server no longer knows.
    pick_key = f"chat_pick_{cid}_{zlib.crc32(repr(titles).encode())}"
    left.selectbox("Conversation", ids, index=ids.index(cid) if cid in ids else None, format_func=titles.get,
                   key=pick_key, on_change=pick, args=(pick_key, ids))
    # "New" on an empty conversation keeps it rather than piling up empty ones.
    right.button("New", key="chat_new", help="Start a new conversation",
                 on_click=lambda: state.open_conversation(cid if not chat.messages else None))
    current = next((c for c in conversations if c.id == cid), None)
    with st.expander("Rename, delete, export"):
        st.text_input("Title", value=current.title if current else "", key=f"chat_title_{cid}", max_chars=200,
                      on_change=lambda: db.rename(cid, _value(f"chat_title_{cid}")))
        name = current.title if current else "conversation"
        # Built only when clicked, not on every rerun.
        st.download_button("Export Markdown", lambda: to_markdown(chat, name), file_name=f"chat-{cid}.md",
                           mime="text/markdown", key="chat_export_md", on_click="ignore")
        st.download_button("Export JSON", lambda: to_json(chat, name), file_name=f"chat-{cid}.json",
                           mime="application/json", key="chat_export_json", on_click="ignore")
        if st.checkbox("Delete this conversation", key=f"chat_delete_ask_{cid}"):
            st.button("Yes, delete it for good", type="primary", key="chat_delete_yes", on_click=delete_current)


def pick(key: str, ids: list[int]) -> None:
    wanted = st.session_state.get(key)
    if wanted in ids and wanted != cid:
        state.open_conversation(wanted)


def delete_current() -> None:
    db.delete_conversation(cid)
    state.open_conversation(db.latest_id())


def switch_backend(picked: str, model: str) -> None:
    try:
        chat.switch_backend(state.backend_for(picked, model if picked == "anthropic" else ""))
    except errors.ChatError as exc:
        st.session_state["chat_backend_error"] = exc.message


def backend_controls() -> None:
    claude_ok = state.claude_available()
    options = ["local", "anthropic"]
    backend_key, model_key = f"chat_backend_{cid}", f"chat_model_{cid}"
    models = known_models()
    if chat.backend.name == "anthropic" and chat.backend.model not in models:
        models = [chat.backend.model] + models
    picked = st.radio(
        "Backend", options, index=options.index(chat.backend.name), format_func=BACKEND_LABELS.get,
        disabled=not claude_ok, key=backend_key, horizontal=True,
        on_change=lambda: switch_backend(_value(backend_key), st.session_state.get(model_key, models[0])),
    )
    if not claude_ok:
        st.caption("Claude needs an API key: set ANTHROPIC_API_KEY and restart the app.")
    if picked == "anthropic":
        current = chat.backend.model if chat.backend.name == "anthropic" else models[0]
        st.selectbox("Model", models, index=models.index(current), key=model_key,
                     on_change=lambda: switch_backend("anthropic", _value(model_key)))
    if "chat_backend_error" in st.session_state:
        st.error(st.session_state.pop("chat_backend_error"))
    st.caption(f"Live: **{chat.backend.label}**")


def set_window(key: str) -> None:
    value = _value(key)
    chat.update(window=0 if value == "all" else value)


def settings_controls() -> None:
    system_key, window_key = f"chat_system_{cid}", f"chat_window_{cid}"
    st.text_area("Persona (system prompt)", value=chat.settings.system, key=system_key, height=110,
                 on_change=lambda: _value(system_key).strip() and chat.update(system=_value(system_key)))
    current = chat.settings.window or "all"
    st.select_slider("Window: past exchanges sent", WINDOW_STEPS, value=current if current in WINDOW_STEPS else "all",
                     key=window_key, on_change=set_window, args=(window_key,))
    st.button("Clear chat", key="chat_clear", width="stretch", on_click=chat.clear)


def show_counters(box) -> None:
    total = chat.totals
    with box:
        a, b = st.columns(2)
        a.metric("Input tokens", f"{total.usage.input_tokens:,}")
        b.metric("Output tokens", f"{total.usage.output_tokens:,}")
        st.metric("Cost", format_cost(total.cost_usd), help="Unknown when a model has no known price.")


def show_message(message, sent: bool) -> None:
    with st.chat_message(message.role):
        if message.text:
            st.markdown(message.text)
        if message.status == STOPPED:
            st.caption("⏹ Stopped: partial reply.")
        if message.status == FAILED and message.error:
            st.error(message.error)
        if not sent and message.status == COMPLETE:
            st.caption("Not sent with the next message: outside the window.")


def show_history() -> None:
    in_window = chat.in_window()
    messages = chat.messages
    start = 0
    if len(messages) > RECENT and not st.toggle(f"Show {len(messages) - RECENT} earlier messages", key="chat_all"):
        start = len(messages) - RECENT
    for i in range(start, len(messages)):
        show_message(messages[i], i in in_window)


def reply_to(prompt: str) -> None:
    try:
        text = chat.check(prompt)
    except errors.InputTooLongError as exc:
        st.error(exc.message)
        with st.expander("Your message (not sent): copy it from here"):
            st.code(prompt, language=None, wrap_lines=True)
        return
    if text is None:
        return
    with st.chat_message("user"):
        st.markdown(text)
    with st.chat_message("assistant"):
        notice = st.empty()
        chunks = chat.send(text, notify=notice.caption)
        try:
            st.write_stream(chunks)
        except errors.ChatError as exc:
            st.error(exc.message)
        finally:
            chunks.close()  # a stop ends the run mid-stream: record the partial reply now


with st.sidebar:
    st.title("💬 Claude chat")
    conversation_picker()
    backend_controls()
    settings_controls()
    counters = st.container()

prompt = st.chat_input("Message (/clear to start over)", submit_mode="stop", key="chat_input")
if prompt is not None and prompt.strip() == "/clear":
    chat.clear()
    prompt = None

if not chat.messages and prompt is None:
    with st.chat_message("assistant"):
        st.markdown(f"Hi! You are chatting with **{chat.backend.label}**. Ask me anything.")
        st.caption("The sidebar sets the persona and how many past exchanges each message carries.")
show_history()

if prompt is not None:
    reply_to(prompt)
show_counters(counters)
