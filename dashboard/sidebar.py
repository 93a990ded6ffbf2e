"""The chat page's sidebar, above its settings: the running counters, the conversation picker (with
rename, export and delete), and search across this person's conversations."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from chat_core import errors
from chat_core.export import to_json, to_markdown
from chat_core.markdown_safety import literal
from chat_core.search import MATCH_END, MATCH_START, search
from dashboard import state
from dashboard.history import FOUND, SCROLL

PICKER_TITLE = 14  # characters of a title the sidebar's picker shows beside its date and #id
SEARCH_OPEN = "chat_search_open"  # the search popover's open state (closed when a result is opened)


def show_counters() -> None:
    chat = state.chat()
    total = chat.totals
    a, b = st.columns(2)
    a.metric("Input tokens", f"{total.usage.all_input_tokens:,}", help="Sent in this conversation, cached or not.")
    b.metric("Output tokens", state.output_text(chat), help=state.OUTPUT_HELP)
    st.metric("Cost", state.cost_text(chat), help="Of this conversation: free on the local model, unknown when a model "
                                                  "has no known price.")


def picker_label(conversation_id: int, title: str, created_at: float) -> str:
    """A conversation in the picker: its title, cut to fit the sidebar, then when it began (the time
    for today's, else the date) and its `#id`, always whole. The id keeps labels apart: the browser
    sends a choice back by its label."""
    short = title if len(title) <= PICKER_TITLE else title[:PICKER_TITLE - 1].rstrip() + "…"
    made = dt.datetime.fromtimestamp(created_at)
    when = f"{made:%H:%M}" if made.date() == dt.date.today() else f"{made:%b %d}"  # today's by their time
    return f"{short} · {when} · #{conversation_id}"


def conversation_picker(wrote: bool) -> None:
    """`wrote`: this run sent a message (the list is read again; else only when the store says it moved)."""
    chat = state.chat()
    cid, db = chat.conversation_id, chat.store
    try:
        conversations = state.conversations(chat, wrote=wrote)
    except errors.StorageError as exc:
        st.caption(f":material/cloud_off: The conversation list cannot be read now. {state.plain(exc.message)}")
        return
    labels = {c.id: picker_label(c.id, c.title, c.created_at) for c in conversations}
    ids = list(labels)
    # Options are ids (labels may repeat); a changed list is a new widget, so the
    # browser never sends back a choice the server no longer offers.
    pick_key = f"chat_pick_{cid}_{hash(tuple(labels.items()))}"
    st.selectbox("Conversation", ids, index=ids.index(cid) if cid in ids else None, format_func=labels.get,
                 key=pick_key, placeholder="New chat (unsaved)", on_change=pick, args=(pick_key,), width="stretch")
    row = st.container(horizontal=True, gap="small", vertical_alignment="center", wrap=False)
    row.button("", icon=":material/add:", key="chat_new", help="New chat", on_click=state.new_chat,
               disabled=not chat.stored)
    if not chat.stored:
        return
    # Popovers: drawn in the browser only when opened, so the page is usable sooner.
    with row.popover("Manage", icon=":material/edit_note:", width="stretch",
                     help="Rename, export or delete this conversation"):
        st.text_input("Title", value=chat.title or "", key=f"chat_title_{cid}", max_chars=200,
                      on_change=lambda: db.rename(cid, st.session_state[f"chat_title_{cid}"], chat.owner))
        # Built only when clicked, not on every rerun, from the store as it is then. Side by side, and the
        # confirmation a checkbox away: the popover stays short enough for an 800-pixel-high window.
        exports = st.container(horizontal=True, gap="small")
        exports.download_button("Markdown", lambda: exported(to_markdown), file_name=f"chat-{cid}.md",
                                mime="text/markdown", key="chat_export_md", on_click="ignore",
                                icon=":material/download:", help="Export as Markdown")
        exports.download_button("JSON", lambda: exported(to_json), file_name=f"chat-{cid}.json",
                                mime="application/json", key="chat_export_json", on_click="ignore",
                                icon=":material/download:", help="Export as JSON")
        if st.checkbox("Delete this conversation", key=f"chat_delete_ask_{cid}"):
            st.button("Yes, delete it for good", type="primary", key="chat_delete_yes", on_click=delete_current,
                      icon=":material/delete_forever:")


def search_box() -> None:
    """Find conversations by their words; a hit opens its conversation at the matching message."""
    chat = state.chat()
    db = chat.store
    words = st.text_input("Search conversations", key="chat_search", placeholder="Words in messages or titles")
    if not words.strip():
        return
    try:
        hits = search(db, words, chat.owner, limit=8)
    except errors.ChatError as exc:
        st.error(exc.message)
        return
    if not hits:
        st.caption(f"No conversation mentions {state.plain(words)}.")
    for hit in hits:
        # A title is plain text (a button label is Markdown): shown as written, never markup, a link or an image.
        st.button(f"{literal(hit.title)} · {dt.datetime.fromtimestamp(hit.updated_at):%b %d}", key=f"chat_hit_{hit.conversation_id}",
                  type="tertiary", on_click=open_hit, args=(hit.conversation_id, hit.message_id))
        snippet = state.plain(hit.snippet).replace(MATCH_START, "**").replace(MATCH_END, "**")
        st.caption(snippet)


def open_hit(conversation_id: int, message_id: int | None) -> None:
    """Open the hit's conversation, close the search, and bring the matching message into view."""
    state.open_conversation(conversation_id)
    st.session_state[FOUND] = st.session_state[SCROLL] = message_id
    st.session_state[SEARCH_OPEN] = False


def exported(make) -> str:
    """The conversation as the store holds it now, made into a download by `make`."""
    chat = state.chat()
    chat.refresh()
    return make(chat, chat.title or "Conversation")


def pick(key: str) -> None:
    cid = state.chat().conversation_id
    wanted = st.session_state.get(key)
    if wanted is not None and wanted != cid:
        state.open_conversation(wanted)


def delete_current() -> None:
    chat = state.chat()
    cid, db = chat.conversation_id, chat.store
    db.delete_conversation(cid, chat.owner)
    state.new_chat()
