"""The reply on the chat page: Send, Regenerate and Edit start a job the server process owns (so nothing
the page does later can cut it), and every run views the live job from its first chunk, with Stop, and
the messages queued behind it."""

from __future__ import annotations

import streamlit as st

from chat_core import errors, follow_stored
from chat_core.conversation import STREAMING, USER
from chat_core.markdown_safety import safe_streaming
from dashboard import content, state, streamlit_adapter
from dashboard.history import EDITING, show_text
from dashboard.streamlit_adapter import stream_markdown


def keep_unsent(text: str, why: str) -> None:
    st.error(why)
    with st.expander("Your message (not sent): copy it from here", expanded=True):
        st.code(text, language=None, wrap_lines=True)


def start_reply(prompt: str | None, files: list, action: tuple | None, unsent: list[tuple[str, str]]) -> bool:
    """Send (or queue) the message with its files, regenerate or edit: the reply becomes a job the server
    process owns (chat_core/jobs.py), so nothing this page does later can cut it. The page only views it
    (`follow_live`). True when a reply was asked for; a message that could not be sent goes into `unsent`
    (text, why). A file refused says why in one line; the message and the other files still go."""
    chat = state.chat()
    try:
        if prompt is not None:
            attachments, refused = content.prepared(files)
            for line in refused:  # one line each, what and why; said again above the page drawn after the reply
                st.warning(state.plain(line), icon=":material/attach_file_off:")
            if refused:
                state.notice("\n\n".join(refused))
            text = chat.check(prompt, attachments)
            if text is None:
                return False
            chat.send(text, attachments=attachments, detach=True)  # `follow_live` watches the job
        elif action == ("regenerate",):
            chat.regenerate(detach=True)
        elif action is not None and action[0] == "edit":
            chat.edit_last(action[1], detach=True)
        else:
            return False
        return True
    except errors.BusyError as exc:
        st.toast(exc.message, icon=":material/hourglass_top:")
    except errors.ChatError as exc:  # too long, or the store refused it: nothing was sent
        if prompt is None and action is not None and action[0] == "edit":
            unsent.append((action[1], exc.message))
            last = next((m for m in reversed(chat.messages) if m.role == USER and m.id is not None), None)
            if isinstance(exc, errors.InputTooLongError) and last is not None:  # the edit reopens with its text
                st.session_state.update({EDITING: last.id, f"chat_edit_text_{last.id}": action[1]})
        else:
            unsent.append((prompt or "", exc.message))
    except ValueError:
        st.toast("There is nothing to send again.", icon=":material/info:")
    return False


def stop_live() -> None:
    """The Stop control: the job is cancelled, its partial reply stored, marked stopped, and counted."""
    chat = state.chat()
    try:
        chat.stop()
    except errors.ChatError as exc:
        state.notice(exc.message)


def follow_live(job, queued: list, started: bool) -> None:
    """Stream the reply being written in this conversation, from its first chunk, then live: from
    this process's `job` (its thinking in a panel above, its sources beneath), or from the store when
    another process writes it. Then draw the page again.
    `started`: this run asked for a reply (one that ended already is drawn from the store)."""
    chat = state.chat()
    db = chat.store
    row = None if job is not None else next((m for m in chat.messages if m.status == STREAMING), None)
    if job is None and row is None:
        if started:
            state.mark_stale()
            st.rerun()
        return
    # Keyed: a block of its own, never the reused block of a bubble the run before drew here (whose
    # later children would linger while this run streams).
    with st.container(key="chat_live"), st.chat_message("assistant"):
        notice = st.empty()
        live = content.LiveReply()
        with live.body:
            box = st.empty()
        if job is not None:
            st.button("Stop", icon=":material/stop_circle:", key="chat_stop", type="secondary", on_click=stop_live,
                      help="Stop this reply: what it has written so far is kept, and counted.")
        else:
            st.caption(":material/sync: Being written by another server or the terminal: it shows here as it is stored.")
    for message in queued:
        with st.chat_message(USER):
            content.show_files(message.attachments, None)
            if message.text:
                show_text(USER, message.text)
            st.caption(":material/schedule: Queued: sent when the reply above ends.")
    watching = state.watcher()
    session, token = streamlit_adapter.session_id(), object()
    watching.following(session, token)  # this run redraws by itself when the reply ends
    try:
        chunks = job.follow(notice.caption, detach=True, events=True) if job is not None else follow_stored(db, row.id)
        stream_markdown(live.text(chunks), safe_streaming, box)  # st.write_stream, with each state made safe
    except errors.StorageError as exc:
        if job is None:  # the store went away while following it: say so once, no redraw until it is back
            notice.warning(state.plain(exc.message), icon=":material/cloud_off:")
            return
    except errors.ChatError:
        pass  # stored with the reply; the redraw below shows it in its bubble
    finally:
        watching.following(session, None, token)
    state.mark_stale()
    st.rerun()  # draw the page from the store: captions, counters, versions, and the next queued reply
