"""The chat page: a thin face over chat_core. It draws the conversation from the
store, streams the reply through st.write_stream, shows errors as one line
inside the bubble, and redraws from the store after every reply or stop."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from chat_core import FAILED, STOPPED, ChatSession, errors, follow_stored
from chat_core.conversation import ASSISTANT, CUT_OFF, STREAMING, USER, usable_exchanges
from chat_core.export import to_json, to_markdown
from chat_core.markdown_safety import literal, safe_markdown
from chat_core.search import MATCH_END, MATCH_START, search
from chat_core.backends import truncation_note
from chat_core.backends.claude_env import DEFAULT_MODEL as CLAUDE_DEFAULT
from chat_core.usage import known_models
from chat_core.window import CACHE_AWARE, POLICIES, SLIDE
from dashboard import content, scroll, state, streamlit_adapter
from dashboard.clipboard import copy_button
from dashboard.streamlit_adapter import stream_markdown

PICKER_TITLE = 14  # characters of a title the sidebar's picker shows beside its date and #id
RECENT = 60  # messages drawn before "show earlier", so a long chat reruns fast
WINDOW_STEPS = list(range(1, 21)) + ["all"]
BACKEND_LABELS = {"local": "Local model (offline)", "anthropic": "Claude"}
POLICY_LABELS = {CACHE_AWARE: "Let go of old exchanges in blocks (keeps the prompt cache warm)",
                 SLIDE: "Drop the oldest exchange every turn"}
ACTION = "chat_action"  # ("regenerate",) or ("edit", text): what the next run streams
EDITING = "chat_editing"  # the id of the question open for editing
FOUND = "chat_found"  # the id of the message a search result opened
SCROLL = "chat_scroll_to_found"  # set when a search result was just opened: bring its message into view once
SEARCH_OPEN = "chat_search_open"  # the search popover's open state (closed when a result is opened)
COPYING = "chat_copying"  # the id of the earlier reply whose copy button is drawn
CLAUDE_MODEL = "chat_claude_model"  # the Claude model last chosen in this browser session
EARLIER = "chat_earlier_shown"  # the conversation whose earlier messages were asked for: all it holds is drawn

chat: ChatSession = state.chat()
cid = chat.conversation_id
db = chat.store


def _value(key: str):
    return st.session_state[key]


def show_counters() -> None:
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


def conversation_picker() -> None:
    try:
        conversations = db.list_conversations(chat.owner)
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
                      on_change=lambda: db.rename(cid, _value(f"chat_title_{cid}"), chat.owner))
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
    chat.refresh()
    return make(chat, chat.title or "Conversation")


def pick(key: str) -> None:
    wanted = st.session_state.get(key)
    if wanted is not None and wanted != cid:
        state.open_conversation(wanted)


def delete_current() -> None:
    db.delete_conversation(cid, chat.owner)
    state.new_chat()


def switch_backend(picked: str, model: str) -> None:
    try:
        chat.switch_backend(state.backend_for(picked, model if picked == "anthropic" else ""))
    except errors.ChatError as exc:
        state.notice(exc.message)
        return
    if chat.backend.name == "anthropic":
        st.session_state[CLAUDE_MODEL] = chat.backend.model


def claude_model() -> str:
    """The Claude model to come back to from the local model: the one last chosen in this
    browser session, else the one this conversation last used, else the default."""
    used = [r.model for r in chat.records if r.backend == "anthropic"]
    return st.session_state.get(CLAUDE_MODEL) or (used[-1] if used else CLAUDE_DEFAULT)


def set_persona(key: str) -> None:
    text = _value(key)
    if not text.strip():
        st.toast("An empty persona was not applied: the one before stays.", icon=":material/info:")
        return
    chat.update(system=text)
    st.toast("Persona applied: the next message is sent with it.", icon=":material/check:")


def backend_controls() -> None:
    claude_ok = state.claude_available()
    options = ["local", "anthropic"]
    backend_key, model_key = f"chat_backend_{cid}", f"chat_model_{cid}"
    models = known_models()
    if chat.backend.name == "anthropic" and chat.backend.model not in models:
        models = [chat.backend.model] + models
    if chat.backend.name == "anthropic":
        st.session_state[CLAUDE_MODEL] = chat.backend.model
    picked = st.radio(
        "Backend", options, index=options.index(chat.backend.name), format_func=BACKEND_LABELS.get,
        disabled=not claude_ok, key=backend_key, horizontal=True,
        on_change=lambda: switch_backend(_value(backend_key), claude_model()),
    )
    if not claude_ok:
        st.caption("Claude needs an API key: set ANTHROPIC_API_KEY and restart the app.")
    if picked == "anthropic":
        current = chat.backend.model if chat.backend.name == "anthropic" else models[0]
        st.selectbox("Model", models, index=models.index(current), key=model_key,
                     on_change=lambda: switch_backend("anthropic", _value(model_key)))
    if picked == "anthropic":
        cache_key = f"chat_prompt_cache_{cid}"
        st.toggle("Prompt caching", value=chat.settings.prompt_cache, key=cache_key,
                  help="Claude bills a repeated prompt prefix at a tenth of the input price.",
                  on_change=lambda: chat.update(prompt_cache=_value(cache_key)))
        content.claude_controls(chat, cid)  # thinking, web search
    policy_key = f"chat_window_policy_{cid}"
    st.radio("When the window is full", POLICIES, index=POLICIES.index(chat.settings.window_policy),
             format_func=POLICY_LABELS.get, key=policy_key,
             on_change=lambda: chat.update(window_policy=_value(policy_key)))


def persona_box() -> None:
    """The persona, in the sidebar itself: inside a popover, Escape closed it and dropped an
    edit not yet applied. Here an edit applies when the box loses focus (or on Ctrl+Enter)."""
    system_key = f"chat_system_{cid}"
    with st.expander("Persona (system prompt)", icon=":material/person:"):
        st.text_area("Persona (system prompt)", value=chat.settings.system, key=system_key, height=110,
                     label_visibility="collapsed", on_change=set_persona, args=(system_key,))


def set_window(key: str) -> None:
    value = _value(key)
    chat.update(window=0 if value == "all" else value)


def window_help() -> str:
    """Why fewer exchanges than the slider says may go with the next message, for the policy and model in use."""
    _, policy, min_prefix = chat.window_args
    head = "At most this many past exchanges go with each message; *Not sent* marks the ones that stay behind. "
    if policy == SLIDE:
        return head + "Once the window is full, the oldest exchange is dropped every turn."
    if chat.backend.name != "anthropic":
        return head + ("Once the window is full, its older half is let go at once, so for a few turns fewer are "
                       "sent: the start of the prompt stays the same and the local model reuses it, which answers "
                       "sooner. *Drop the oldest exchange every turn* (in the settings above) sends all of them.")
    below = (f"While the exchanges kept would be shorter than {min_prefix:,} tokens, the shortest prompt "
             f"{chat.backend.model} caches, the whole window is sent and the oldest exchange drops every turn. "
             if min_prefix else "")
    return head + below + ("Once they are long enough to cache, a full window lets go of its older half at once, "
                           "so for a few turns fewer are sent: the start of the prompt stays the same, and Claude bills "
                           "it at a tenth of the input price. *Drop the oldest exchange every turn* (in the settings "
                           "above) always sends all of them.")


def window_controls() -> None:
    window_key = f"chat_window_{cid}"
    current = chat.settings.window or "all"
    st.select_slider("Window: past exchanges sent", WINDOW_STEPS, value=current if current in WINDOW_STEPS else "all",
                     key=window_key, on_change=set_window, args=(window_key,), help=window_help())
    st.button("Clear chat", key="chat_clear", width="stretch", on_click=state.new_chat,
              help="Start a new conversation; this one stays in the list.")


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
    record = chat.record_for(message) if message.role == ASSISTANT else None
    if record is None:
        return None
    return f"{record.model} (local)" if record.backend == "local" else record.model


def message_actions(message, last: bool, recent: bool = False, show_model: bool = True) -> None:
    """Under a message, in one tight row: step between its versions, copy it, and on the last exchange
    regenerate or edit; at the row's end, which model wrote a reply (`show_model`). `recent`: one of the
    last two exchanges, whose rows keep their shape from run to run; an older reply's row is its copy
    button alone when it has nothing else to show (a long chat draws fewer elements)."""
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
                    on_click=lambda: (act(("edit", _value(key))), st.session_state.pop(EDITING, None)))
        right.button("Cancel", key="chat_edit_cancel", on_click=lambda: st.session_state.pop(EDITING, None))


def show_earlier() -> None:
    """Draw every message held, and hold the next older ones (a long chat holds only its latest page)."""
    try:
        if st.session_state.get(EARLIER) == cid:
            chat.load_earlier()
    except errors.StorageError as exc:
        state.notice(exc.message)
    st.session_state[EARLIER] = cid


def show_history(hidden: set[int], answering: int | None) -> None:
    """The stored conversation, but for `hidden` (ids drawn elsewhere: the reply being written, the queued
    messages). `answering`: the question a reply is being written to, if any (no regenerate or edit then)."""
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


def keep_unsent(text: str, why: str) -> None:
    st.error(why)
    with st.expander("Your message (not sent): copy it from here", expanded=True):
        st.code(text, language=None, wrap_lines=True)


def start_reply(prompt: str | None, files: list, action: tuple | None, unsent: list[tuple[str, str]]) -> bool:
    """Send (or queue) the message with its files, regenerate or edit: the reply becomes a job the server
    process owns (chat_core/jobs.py), so nothing this page does later can cut it. The page only views it
    (`follow_live`). True when a reply was asked for; a message that could not be sent goes into `unsent`
    (text, why). A file refused says why in one line; the message and the other files still go."""
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
    try:
        chat.stop()
    except errors.ChatError as exc:
        state.notice(exc.message)


def follow_live(job, queued: list, started: bool) -> None:
    """Stream the reply being written in this conversation, from its first chunk, then live: from
    this process's `job` (its thinking in a panel above, its sources beneath), or from the store when
    another process writes it. Then draw the page again.
    `started`: this run asked for a reply (one that ended already is drawn from the store)."""
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
        stream_markdown(live.text(chunks), safe_markdown, box)  # st.write_stream, with each state made safe
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
if started:
    cid = chat.conversation_id  # a new chat's, from its first message on
    state.sync_url(chat)  # `?c=` as soon as the conversation exists: a reload mid-reply comes back to it
with st.sidebar:
    show_counters()
    conversation_picker()
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
