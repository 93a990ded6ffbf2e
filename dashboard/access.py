"""Who may use this dashboard, and as whom.

- No `[auth]` in `.streamlit/secrets.toml`: the app is for this machine's user. It
  must then listen on localhost only (`.streamlit/config.toml` says so); bound
  wider, it shows one line and nothing else, unless CHAT_TRUSTED_NETWORK=1.
- With `[auth]` (OpenID Connect through Streamlit's `st.login`): nothing but a
  sign-in button before sign-in; then each person is the owner `issuer|sub` and
  sees only their own conversations. An optional allow-list in secrets,
  `[access] allow = ["ana@example.com", "example.org"]`, decides who may use the
  app at all, since every user spends the owner's API key.
"""

from __future__ import annotations

import os

import streamlit as st
from streamlit.errors import StreamlitSecretNotFoundError

from chat_core.storage import LOCAL_OWNER

LOCAL_ADDRESSES = {"localhost", "127.0.0.1", "::1"}
TRUSTED_NETWORK = "CHAT_TRUSTED_NETWORK"


def _secret_section(name: str) -> dict:
    try:
        return dict(st.secrets.get(name, {}))
    except (FileNotFoundError, StreamlitSecretNotFoundError):
        return {}


def sign_in_configured() -> bool:
    return bool(_secret_section("auth"))


def served_beyond_localhost() -> bool:
    return (st.get_option("server.address") or "") not in LOCAL_ADDRESSES


def allowed(email: str | None, email_verified: bool | None, allow: list[str]) -> bool:
    """Whether a signed-in user may use the app: everyone without an allow-list; else
    a listed address or domain, matched on an email the provider did not mark unverified."""
    if not allow:
        return True
    if not email or email_verified is False:
        return False
    email = email.strip().lower()
    domain = email.rpartition("@")[2]
    return any(entry.strip().lower() in (email, domain) for entry in allow)


def owner() -> str:
    """This browser session's owner; stops the page with what to do when there is none."""
    if not sign_in_configured():
        if served_beyond_localhost() and os.environ.get(TRUSTED_NETWORK) != "1":
            st.error("This app is served beyond this machine without sign-in, so it shows nothing: configure "
                     "[auth] in .streamlit/secrets.toml (see the README), serve it on localhost, or set "
                     f"{TRUSTED_NETWORK}=1 on a trusted network.")
            st.stop()
        return LOCAL_OWNER
    user = st.user
    if not user.get("is_logged_in"):
        st.title("Claude chat")
        st.write("Sign in to see your conversations.")
        st.button("Sign in", type="primary", on_click=st.login, key="access_sign_in")
        st.stop()
    email = user.get("email")
    if not allowed(email, user.get("email_verified"), list(_secret_section("access").get("allow", []))):
        st.error(f"{email or 'This account'} may not use this app: ask its owner to add you to the allow-list.")
        st.button("Sign out", on_click=st.logout, key="access_sign_out_refused")
        st.stop()
    return f"{user.get('iss')}|{user.get('sub')}"


def signed_in_as() -> str | None:
    """A name for the signed-in user, for the sidebar; None without sign-in."""
    if not sign_in_configured():
        return None
    return st.user.get("email") or st.user.get("name") or st.user.get("sub")
