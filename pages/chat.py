"""The chat page: a thin face over chat_core. It draws the conversation from the store
(dashboard/history.py), views the reply being written from its job (dashboard/reply.py), and keeps
the conversation list, search and settings in the sidebar (dashboard/sidebar.py, settings.py)."""

from __future__ import annotations

import streamlit as st

from chat_core.conversation import STREAMING
from dashboard import content, state
from dashboard.history import ACTION, show_history
from dashboard.reply import follow_live, keep_unsent, start_reply
from dashboard.settings import backend_controls, persona_box, window_controls
from dashboard.sidebar import SEARCH_OPEN, conversation_picker, search_box, show_counters

chat = state.chat()


# The input first: it is what a visitor needs, and the browser draws it before the sidebar. It stays
# usable while a reply streams (submit_mode "submit"): a message sent then is queued behind the reply.
prompt, files = content.from_input(st.chat_input(
    "Message (/clear starts a new chat)", key="chat_input", accept_file="multiple",
    file_type=content.FILE_TYPES, max_upload_size=content.MAX_UPLOAD_MB))
if prompt is not None and prompt.strip() == "/clear" and not files:
    state.new_chat()
    st.rerun()
# The reply starts before anything is drawn, so this run's sidebar (picker, counters) and `?c=` name the
# conversation it is stored in, even a new chat's first.
action = st.session_state.pop(ACTION, None)
unsent: list[tuple[str, str]] = []
started = (prompt is not None or action is not None) and start_reply(prompt, files, action, unsent)
if started:  # `?c=` as soon as the conversation exists (a new chat's from its first message on): a reload
    state.sync_url(chat)  # mid-reply comes back to it
with st.sidebar:
    show_counters()
    conversation_picker(wrote=started)
    with st.popover("Search conversations", icon=":material/search:", width="stretch", key=SEARCH_OPEN,
                    on_change="rerun"):
        search_box()
    with st.popover(chat.backend.label, icon=":material/tune:", width="stretch"):
        backend_controls()
    persona_box()
    window_controls()

if not chat.messages:
    with st.chat_message("assistant"):
        # One element: the first question's bubble, drawn in its place, leaves nothing of it behind while the reply streams.
        st.markdown(f"Hi! You are chatting with **{chat.backend.label}**. Ask me anything.\n\n"
                    ":gray[:small[The sidebar sets the persona and how many past exchanges each message carries.]]")
waiting = chat.queued()
streaming = {m.id for m in chat.messages if m.status == STREAMING}
job = chat.live_job()
answering = job.question.id if job is not None and job.question is not None else \
    next((m.reply_to for m in chat.messages if m.status == STREAMING), None)
show_history(streaming | {m.id for m in waiting} if answering is not None else set(), answering)
for text, why in unsent:
    keep_unsent(text, why)
follow_live(job, waiting, started)
