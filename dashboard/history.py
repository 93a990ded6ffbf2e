"""The stored conversation on the chat page: each message in its bubble (files, thinking, text, sources,
status captions, whether the next request carries it) and the row of actions under it (versions, copy,
regenerate, edit, the model that wrote it)."""

from __future__ import annotations

import streamlit as st

from chat_core import FAILED, STOPPED, errors
from chat_core.backends import truncation_note
from chat_core.conversation import ASSISTANT, CUT_OFF, USER, usable_exchanges
from chat_core.markdown_safety import safe_markdown
from dashboard import content, scroll, state
from dashboard.clipboard import copy_button

RECENT = 60  # messages drawn before "show earlier", so a long chat reruns fast
ACTION = "chat_action"  # ("regenerate",) or ("edit", text): what the next run streams
EDITING = "chat_editing"  # the id of the question open for editing
FOUND = "chat_found"  # the id of the message a search result opened
SCROLL = "chat_scroll_to_found"  # set when a search result was just opened: bring its message into view once
COPYING = "chat_copying"  # the id of the earlier reply whose copy button is drawn
EARLIER = "chat_earlier_shown"  # the conversation whose earlier messages were asked for: all it holds is drawn


def show_text(role: str, text: str) -> None:
    """What a person typed shows exactly as typed; a reply is rendered as Markdown that loads nothing by
    itself: raw HTML stays text (Streamlit's default), a remote image is a link naming its host."""
    if role == USER:
        st.text(text)
    else:
        st.markdown(safe_markdown(text))


def show_message(message, sent: bool, last: bool, answered: bool = True, recent: bool = False,
                 show_model: bool = True) -> None:
    """One bubble. `sent`: the next request carries it; `answered`: it is part of an exchange
    whose both sides have text (only such exchanges are ever sent)."""
    chat = state.chat()
    db = chat.store
    with st.chat_message(message.role):
        content.show_files(message.attachments, db)
        content.thinking_panel(message)
        if message.text:
            show_text(message.role, message.text)
        content.sources(message.citations)
        if message.status == STOPPED:
            st.caption(":material/stop_circle: Stopped: partial reply.")
        if message.status == CUT_OFF and message.error:  # its server died while writing it
            st.caption(f":material/power_off: {state.plain(message.error)}")
        if message.status == FAILED and message.error:
            st.error(state.error_line(message.error, chat.backend.label))
        record = chat.record_for(message)
        if record is not None and record.stop_reason == "max_tokens":
            st.caption(truncation_note(record.backend, chat.settings.max_tokens))
        if message.unsaved:
            st.warning(f"Not saved: {message.unsaved}")
            if message.role == USER:  # never sent either: kept to copy, as a message that could not be sent
                st.code(message.text, language=None, wrap_lines=True)
        if message.id is not None and message.id == st.session_state.get(FOUND):
            with st.container(key=scroll.FOUND_KEY):
                st.caption(":material/search: The search found this message.")
            if st.session_state.pop(SCROLL, None) == message.id:
                scroll.scroll_to_found()
        if not sent and message.sendable and message.id is not None:  # a stopped reply is outside it too
            st.caption("Not sent with the next message: outside the window." if answered else
                       "Not sent with the next message: it has no reply to go with it.")
        message_actions(message, last, recent, show_model)


def act(action: tuple) -> None:
    """Ask the next run to regenerate or resend (the reply streams in the page, not in a callback)."""
    st.session_state[ACTION] = action


def written_by(message) -> str | None:
    """Which model wrote a reply, from its usage record (a chat may switch backends)."""
    chat = state.chat()
    record = chat.record_for(message) if message.role == ASSISTANT else None
    if record is None:
        return None
    return f"{record.model} (local)" if record.backend == "local" else record.model


def message_actions(message, last: bool, recent: bool = False, show_model: bool = True) -> None:
    """Under a message, in one tight row: step between its versions, copy it, and on the last exchange
    regenerate or edit; at the row's end, which model wrote a reply (`show_model`). `recent`: one of the
    last two exchanges, whose rows keep their shape from run to run; an older reply's row is its copy
    button alone when it has nothing else to show (a long chat draws fewer elements)."""
    chat = state.chat()
    versions = chat.versions_of(message)
    model = written_by(message) if show_model else None
    if len(versions) < 2 and not (message.text and message.role == ASSISTANT) and not (last and message.id is not None) \
            and model is None:
        if recent:  # its edit row of the run before goes, even while a reply streams (see `slot` below)
            st.empty()
        return
    if not recent and len(versions) < 2 and model is None:
        copy_control(message)
        return
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    if len(versions) > 1:
        at = next(i for i, v in enumerate(versions) if v.id == message.id)
        row.button("", icon=":material/chevron_left:", key=f"chat_prev_{message.id}", type="tertiary",
                   help="Earlier version", disabled=at == 0,
                   on_click=chat.choose_version, args=(versions[max(at - 1, 0)],))
        row.caption(f"{at + 1}/{len(versions)}", width="content")
        row.button("", icon=":material/chevron_right:", key=f"chat_next_{message.id}", type="tertiary",
                   help="Later version", disabled=at == len(versions) - 1,
                   on_click=chat.choose_version, args=(versions[min(at + 1, len(versions) - 1)],))
    if message.text and message.role == ASSISTANT:
        with row:
            copy_control(message, last)
    # A place kept for regenerate or edit, filled only on the last exchange: the row keeps its shape when
    # the exchange stops being the last or one of the last two (a third question, a queued one), so nothing
    # of the run before (the model's name a second time) lingers in it while a reply streams.
    slot = row.empty()
    if last and message.id is not None and message.role == ASSISTANT:
        slot.button("", icon=":material/refresh:", key="chat_regenerate", type="tertiary",
                    help="Regenerate: a new reply to the same message", on_click=act, args=(("regenerate",),))
    if last and message.id is not None and message.role == USER:
        slot.button("", icon=":material/edit:", key="chat_edit", type="tertiary", help="Edit and resend",
                    on_click=lambda: st.session_state.update({EDITING: message.id}))
    if model is not None:
        row.caption(f":material/smart_toy: {state.plain(model)}", text_alignment="right", width="stretch")


def copy_control(message, last: bool = False) -> None:
    """Copy a reply as Markdown. A copy button is a frame, a document of its own (costly in the browser
    on every run of a long chat): the last reply has one; an earlier reply's is drawn when asked for."""
    if last or st.session_state.get(COPYING) == message.id:
        copy_button(message.text)
    else:
        st.button("", icon=":material/content_copy:", key=f"chat_copy_{message.id}", type="tertiary",
                  help="Copy as Markdown", on_click=st.session_state.update, kwargs={COPYING: message.id})


def edit_box(message) -> None:
    """The last question, open for editing."""
    with st.chat_message("user"):
        key = f"chat_edit_text_{message.id}"
        # A text kept from a refused send (too long) is in the session already: no default over it.
        st.text_area("Edit your message", value=None if key in st.session_state else message.text, key=key,
                     label_visibility="collapsed")
        left, right, _ = st.columns([1, 1, 4])
        left.button("Send", type="primary", key="chat_edit_send",
                    on_click=lambda: (act(("edit", st.session_state[key])), st.session_state.pop(EDITING, None)))
        right.button("Cancel", key="chat_edit_cancel", on_click=lambda: st.session_state.pop(EDITING, None))


def show_earlier() -> None:
    """Draw every message held, and hold the next older ones (a long chat holds only its latest page)."""
    chat = state.chat()
    cid = chat.conversation_id
    try:
        if st.session_state.get(EARLIER) == cid:
            chat.load_earlier()
    except errors.StorageError as exc:
        state.notice(exc.message)
    st.session_state[EARLIER] = cid


def show_history(hidden: set[int], answering: int | None) -> None:
    """The stored conversation, but for `hidden` (ids drawn elsewhere: the reply being written, the queued
    messages). `answering`: the question a reply is being written to, if any (no regenerate or edit then)."""
    chat = state.chat()
    cid = chat.conversation_id
    live = answering is not None
    wanted = st.session_state.get(FOUND)
    if wanted is not None and not any(m.id == wanted for m in chat.messages):
        try:
            chat.reach(wanted)  # a search hit in an older message: hold the messages from it on
        except errors.StorageError as exc:
            st.warning(state.plain(exc.message), icon=":material/cloud_off:")
    in_window = chat.in_window()
    messages = chat.messages
    found = next((i for i, m in enumerate(messages) if m.id is not None and m.id == wanted), None)
    everything = st.session_state.get(EARLIER) == cid or (found is not None and found < len(messages) - RECENT)
    start = 0 if everything else max(len(messages) - RECENT, 0)
    hidden_before = chat.earlier.messages + start
    if hidden_before:
        st.button(f"Show earlier messages ({hidden_before:,} not shown)", key="chat_earlier", type="tertiary",
                  icon=":material/expand_less:", on_click=show_earlier)
    questions = [i for i, m in enumerate(messages) if m.role == USER and not m.unsaved]
    last_question = questions[-1] if questions else None
    recent = questions[-2] if len(questions) > 1 else 0  # from here on: the last exchange before the newest, and it
    answered = {i for pair in usable_exchanges(messages) for i in (pair.user_index, pair.reply_index)}
    model = None  # the model of the reply drawn before: a reply names its model where it changed, and the last ones
    for i in range(start, len(messages)):
        message = messages[i]
        if message.role == ASSISTANT:
            wrote, model = model, written_by(message) or model
            show_model = i >= recent or written_by(message) != wrote
        else:
            show_model = True
        if message.id is not None and message.id in hidden:
            continue
        if message.id is not None and st.session_state.get(EDITING) == message.id and i == last_question and not live:
            edit_box(message)
            continue
        # While a reply is being written, no regenerate or edit: it would wait for nothing (the engine says so).
        last = not live and (i == last_question or (i == len(messages) - 1 and message.role == ASSISTANT))
        show_message(message, i in in_window or message.id == answering, last, i in answered, i >= recent, show_model)
