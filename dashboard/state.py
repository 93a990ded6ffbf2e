"""What the dashboard's pages share: the heavy resources (built once per server
process) and this browser session's open conversation, drawn from the store on
every run so a page never shows something different from what is stored."""

from __future__ import annotations

import os
import threading

import streamlit as st

from chat_core import ChatSession, Settings, errors, format_cost, settings_from_env
from chat_core.backends import Backend, make_backend
from chat_core.backends.claude_env import continues_locally, has_credential
from chat_core.conversation import STREAMING
from chat_core.errors import redact_url
from chat_core.ids import conversation_id_from_url
from chat_core.kept import KEPT, key as kept_key
from chat_core.markdown_safety import literal
from chat_core.session import LATEST
from chat_core.storage import Store
from dashboard import access, streamlit_adapter
from dashboard.live import Watcher

CHAT = "chat"  # session_state key of this browser session's ChatSession
NOTICE = "chat_notice"  # a one-line notice for the next run of the page
STALE = "chat_stale"  # set when the store changed in a way a newest-id check cannot see (a reply ended)
LISTED = "chat_listed"  # this run's fingerprint of the owner's conversation list (Store.look), and the list last read
SHOWN_URL = "chat_shown_url"  # (the ChatSession, its `?c=` values) as this session's last run left the URL
REPLACED_URL = "chat_replaced_url"  # the `?c=` values the address was rewritten to in place, until it reports them


@st.cache_resource(show_spinner=False)
def anthropic_client():
    from chat_core.backends.anthropic_backend import make_client  # the SDK loads only for Claude

    return make_client()


@st.cache_resource(show_spinner=False)
def local_model(name: str):
    """The backends' loader. Called on a reply's own thread (a backend loads its model at its first
    reply), outside any page run: no spinner, which is a Streamlit call that warns there."""
    return _shared_local_model(name)


_LOCAL_MODELS: dict = {}
_LOCAL_MODELS_LOCK = threading.Lock()


def _shared_local_model(name: str):
    """The model loaded once per server process, whichever thread asks first. Plain Python, not
    st.cache_resource: the preload thread runs outside any page run, where Streamlit calls warn."""
    from chat_core.backends.local import LocalModel

    with _LOCAL_MODELS_LOCK:
        if name not in _LOCAL_MODELS:
            _LOCAL_MODELS[name] = LocalModel.load(name)
        return _LOCAL_MODELS[name]


def preload_local_model_if_needed() -> None:
    """Without a key the chat runs on the bundled model: start loading it now."""
    if not claude_available():
        _preload_local_model()


@st.cache_resource(show_spinner=False)
def _preload_local_model() -> threading.Thread:
    """Load the bundled model in the background, once per server process, so the
    first local reply is as quick as the second. A failure shows, as one line,
    when a chat first needs the model."""
    from chat_core.backends.local import DEFAULT_MODEL

    def load() -> None:
        try:  # a setting the app cannot use is said on the page (`current_chat`), not here at the start
            _shared_local_model(DEFAULT_MODEL).warm_up(base_settings().system)
        except errors.ChatError:
            pass

    thread = threading.Thread(target=load, name="preload-local-model", daemon=True)
    thread.start()
    return thread


@st.cache_resource(show_spinner=False)
def watcher() -> Watcher:
    """The process's one watcher: reruns the sessions showing a conversation when it changes (dashboard/live.py)."""
    return Watcher(streamlit_adapter.rerun_session, streamlit_adapter.session_alive)


def mark_stale() -> None:
    """The next run reads the conversation from the store again (a reply ended: same rows, new text and status)."""
    st.session_state[STALE] = True


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


def owner() -> str:
    """Whose conversations this browser session sees (stops the page before sign-in)."""
    return access.owner()


def notice(text: str) -> None:
    """Show `text` as one line at the top of the next run of the page."""
    st.session_state[NOTICE] = text


def plain(text: str) -> str:
    """`text` for a Markdown-rendering element, shown exactly as written: no markup, and no link
    made of a bare `http://…` or `www.…` in it (chat_core.markdown_safety.literal)."""
    return literal(text)


def cost_text(chat: ChatSession) -> str:
    """The conversation's cost, worded the same on every page: *free* on the bundled model."""
    total = chat.totals
    free = total.all_local if total.turns else chat.backend.name == "local"
    return "free" if free else format_cost(total.cost_usd)


def output_text(chat: ChatSession) -> str:
    """The conversation's output tokens, worded the same on every page: `~N` when a stopped or
    cut Claude reply was counted by its text (Claude sends its own count only when a reply ends)."""
    total = chat.totals
    return f"~{total.usage.output_tokens:,}" if total.estimated else f"{total.usage.output_tokens:,}"


OUTPUT_HELP = "Of every reply in this conversation; ~ marks an estimate, for a stopped or cut reply from Claude."


def error_line(text: str, settings_button: str) -> str:
    """An error's one line with the terminal's advice (`--backend local`) naming the page's
    own control instead: the sidebar's settings button, labelled `settings_button`."""
    return errors.for_face(text, {
        errors.USE_LOCAL_MODEL: f"open “{settings_button}” in the sidebar and pick “Local model (offline)”",
        errors.CHOOSE_ANOTHER_MODEL: f"open “{settings_button}” in the sidebar and pick another",
    })


def show_notice() -> None:
    if NOTICE in st.session_state:
        st.warning(plain(st.session_state.pop(NOTICE)), icon=":material/info:")


def open_conversation(conversation_id: int | None) -> ChatSession:
    """Switch this browser session to a stored conversation, or to a new unsaved one
    (None, or an id that is not this user's: then with a one-line notice)."""
    settings, me = base_settings(), owner()
    db = store(settings.database_url)
    chat = None
    if conversation_id is not None:
        stored = db.load(conversation_id, me, latest=LATEST)
        if stored is not None:
            info = stored.info
            if info.backend == "anthropic" and not claude_available():
                notice(continues_locally(info.id, info.model, "set the key and restart the app to go on with Claude."))
            chat = ChatSession.from_stored(db, stored, backend_for(info.backend, info.model), settings, me)
        else:
            notice(f"Conversation {conversation_id} not found: this is a new chat.")
    if chat is None:
        chat = ChatSession.start(db, backend_for(settings.backend, settings.model), settings, me)
    st.session_state[CHAT] = chat
    return chat


def new_chat() -> None:
    """Start a new conversation in this session with the current settings (the old one stays stored)."""
    chat: ChatSession = st.session_state[CHAT]
    chat.new_conversation()


def _url_ids() -> list[str]:
    """Every `?c=` in the URL, as given (a hand-made URL may repeat it)."""
    return st.query_params.get_all("c")


def _from_url() -> ChatSession:
    """The conversation the URL names; a repeated `?c=` names its last one (as `st.query_params.get` reads it)."""
    given = _url_ids()
    if not given or not given[-1].strip():  # `?c=` with nothing in it names nothing: a new chat, nothing to say
        return open_conversation(None)
    wanted = given[-1]
    conversation_id = conversation_id_from_url(wanted)
    if conversation_id is None:
        shown = wanted if len(wanted) <= 24 else wanted[:24] + "…"
        notice(f"Conversation {shown} not found: this is a new chat.")
    return open_conversation(conversation_id)


def _url_for(chat: ChatSession) -> list[str]:
    return [str(chat.conversation_id)] if chat.stored else []


def _moved_by_browser(chat: ChatSession) -> bool:
    """True when Back or Forward brought the page to a URL naming another conversation: the
    page follows it. Any other run keeps the session's conversation (a switch made on the page
    changes the session first and the URL after)."""
    return streamlit_adapter.is_history_navigation() and _url_ids() != _url_for(chat)


def show_kept(me: str) -> None:
    """What the store refused in the conversation the URL names (kept by this server), to copy."""
    given = _url_ids()
    wanted = conversation_id_from_url(given[-1]) if given else None
    url = redact_url(base_settings().database_url)
    for message in KEPT.of(kept_key(url, me, wanted)) if wanted is not None else ():
        who = "Your message" if message.role == "user" else "A reply"
        st.caption(f"{who}, not saved: copy it from here.")
        st.code(message.text, language=None, wrap_lines=True)


def chat() -> ChatSession:
    """The conversation `current_chat` opened for this run."""
    return st.session_state[CHAT]


def current_chat() -> ChatSession:
    """This browser session's conversation, freshly read from the store: the one in
    the URL (a refresh keeps it), else a new unsaved one. Keeps `?c=` in the URL on
    every page. Stops the page with one line when the store fails."""
    me = owner()
    chat = st.session_state.get(CHAT)
    st.session_state[LISTED] = (None, st.session_state.get(LISTED, (None, None))[1])  # unchecked until `_fresh`
    try:
        if chat is None or chat.owner != me or _moved_by_browser(chat):
            chat = _from_url()  # just read from the store
        elif not _fresh(chat):
            notice(f"Conversation {chat.conversation_id} was deleted (in another tab?): this is a new chat.")
            chat.new_conversation()
    except errors.StorageError as exc:
        if chat is None or chat.owner != me:
            st.error(exc.message)
            show_kept(me)
            st.stop()
        # The store went away: this session's conversation stays as it was read, with what it holds
        # in memory (a reply or a message the store refused, marked not saved), under one line.
        st.warning(plain(exc.message), icon=":material/cloud_off:")
    except errors.ChatError as exc:
        st.error(exc.message)
        st.stop()
    sync_url(chat)
    watcher().show(streamlit_adapter.session_id(), chat.store, chat.conversation_id, chat.last_saved_id())
    return chat


def _fresh(chat: ChatSession) -> bool:
    """Bring the session up to what is stored; False when its conversation was deleted. One small
    statement when nothing moved (most runs: a slider, a click), which also tells whether the
    conversation list moved (`conversations`): the whole conversation is read again only when a
    message was added or removed, a reply shown as streaming may have grown or ended, or a run asked
    for it (`mark_stale`), and not even then when the change is a reply this session asked for that
    ended (`ChatSession.catch_up`). Either way the list's fingerprint comes with what was read."""
    if st.session_state.pop(STALE, False) or any(m.status == STREAMING for m in chat.messages):
        fresh = chat.catch_up()  # a reply this session asked for that ended: from its job, checked in one statement
        st.session_state[LISTED] = (chat.listed, st.session_state[LISTED][1])  # read with it
        return fresh
    newest, listed = chat.store.look(chat.conversation_id, chat.owner)
    st.session_state[LISTED] = (listed, st.session_state[LISTED][1])
    return chat.refresh() if chat.changed_elsewhere(newest) else True


def conversations(chat: ChatSession, wrote: bool = False) -> list:
    """The owner's conversations, newest first: read again only when this run's check (`_fresh`)
    saw the list move since it was last read, or this run wrote to it (`wrote`: a message sent)."""
    listed, known = st.session_state.get(LISTED, (None, None))
    if wrote or known is None or listed is None or chat.store.listed(known) != listed:
        known = chat.store.list_conversations(chat.owner)
        st.session_state[LISTED] = (None if wrote else listed, known)
    return known


def sync_url(chat: ChatSession) -> None:
    """`?c=ID` names the stored conversation on every page, exactly once and as digits only;
    a new chat has none. A switch made on the page (picker, search, new chat) is a new browser
    history entry, as Streamlit records each change: Back returns to the conversation shown
    before (`current_chat` follows it). An address that named nothing this session showed is
    rewritten in place instead, with no entry of its own: a new chat that became a stored one
    with its first message (Back leaves it for what was open before it, as from any other
    conversation), or an odd or unknown `?c=` (Back leaves for the page before)."""
    wanted, given = _url_for(chat), _url_ids()
    shown = st.session_state.get(SHOWN_URL)
    st.session_state[SHOWN_URL] = (chat, wanted)
    if given == wanted:
        st.session_state.pop(REPLACED_URL, None)
    elif (shown is not None and given == shown[1] and not (not given and shown[0] is chat)) \
            or st.session_state.pop(REPLACED_URL, None) == wanted:
        # A switch made on the page; or the address was rewritten in place already and the browser still
        # reports its old query (Streamlit's own copy): an ordinary change corrects that copy, and adds no
        # entry, as the address reads `wanted` already.
        if wanted:
            st.query_params["c"] = wanted[0]
        else:
            del st.query_params["c"]
    else:
        streamlit_adapter.replace_query("c", wanted)
        st.session_state[REPLACED_URL] = wanted
    streamlit_adapter.show_query()  # in every run: the address reads what the session's query says
