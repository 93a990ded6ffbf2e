"""The chat page's settings in the sidebar: backend and model (with prompt caching, thinking and web
search for Claude), the persona, and the window of past exchanges each message carries."""

from __future__ import annotations

import streamlit as st

from chat_core import errors
from chat_core.backends.claude_env import DEFAULT_MODEL as CLAUDE_DEFAULT
from chat_core.usage import known_models
from chat_core.window import CACHE_AWARE, POLICIES, SLIDE
from dashboard import content, state

WINDOW_STEPS = list(range(1, 21)) + ["all"]
BACKEND_LABELS = {"local": "Local model (offline)", "anthropic": "Claude"}
POLICY_LABELS = {CACHE_AWARE: "Let go of old exchanges in blocks (keeps the prompt cache warm)",
                 SLIDE: "Drop the oldest exchange every turn"}
CLAUDE_MODEL = "chat_claude_model"  # the Claude model last chosen in this browser session


def switch_backend(picked: str, model: str) -> None:
    chat = state.chat()
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
    chat = state.chat()
    used = [r.model for r in chat.records if r.backend == "anthropic"]
    return st.session_state.get(CLAUDE_MODEL) or (used[-1] if used else CLAUDE_DEFAULT)


def set_persona(key: str) -> None:
    chat = state.chat()
    text = st.session_state[key]
    if not text.strip():
        st.toast("An empty persona was not applied: the one before stays.", icon=":material/info:")
        return
    chat.update(system=text)
    st.toast("Persona applied: the next message is sent with it.", icon=":material/check:")


def backend_controls() -> None:
    chat = state.chat()
    cid = chat.conversation_id
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
        on_change=lambda: switch_backend(st.session_state[backend_key], claude_model()),
    )
    if not claude_ok:
        st.caption("Claude needs an API key: set ANTHROPIC_API_KEY and restart the app.")
    if picked == "anthropic":
        current = chat.backend.model if chat.backend.name == "anthropic" else models[0]
        st.selectbox("Model", models, index=models.index(current), key=model_key,
                     on_change=lambda: switch_backend("anthropic", st.session_state[model_key]))
    if picked == "anthropic":
        cache_key = f"chat_prompt_cache_{cid}"
        st.toggle("Prompt caching", value=chat.settings.prompt_cache, key=cache_key,
                  help="Claude bills a repeated prompt prefix at a tenth of the input price.",
                  on_change=lambda: chat.update(prompt_cache=st.session_state[cache_key]))
        content.claude_controls(chat, cid)  # thinking, web search
    policy_key = f"chat_window_policy_{cid}"
    st.radio("When the window is full", POLICIES, index=POLICIES.index(chat.settings.window_policy),
             format_func=POLICY_LABELS.get, key=policy_key,
             on_change=lambda: chat.update(window_policy=st.session_state[policy_key]))


def persona_box() -> None:
    """The persona, in the sidebar itself: inside a popover, Escape closed it and dropped an
    edit not yet applied. Here an edit applies when the box loses focus (or on Ctrl+Enter)."""
    chat = state.chat()
    cid = chat.conversation_id
    system_key = f"chat_system_{cid}"
    with st.expander("Persona (system prompt)", icon=":material/person:"):
        st.text_area("Persona (system prompt)", value=chat.settings.system, key=system_key, height=110,
                     label_visibility="collapsed", on_change=set_persona, args=(system_key,))


def set_window(key: str) -> None:
    chat = state.chat()
    value = st.session_state[key]
    chat.update(window=0 if value == "all" else value)


def window_help() -> str:
    """Why fewer exchanges than the slider says may go with the next message, for the policy and model in use."""
    chat = state.chat()
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
    chat = state.chat()
    cid = chat.conversation_id
    window_key = f"chat_window_{cid}"
    current = chat.settings.window or "all"
    st.select_slider("Window: past exchanges sent", WINDOW_STEPS, value=current if current in WINDOW_STEPS else "all",
                     key=window_key, on_change=set_window, args=(window_key,), help=window_help())
    st.button("Clear chat", key="chat_clear", width="stretch", on_click=state.new_chat,
              help="Start a new conversation; this one stays in the list.")
