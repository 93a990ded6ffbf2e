"""The dashboard: `streamlit run streamlit_app.py`.

This entry point sets up the page, lets in only who may use it (see
dashboard/access.py), opens this browser session's conversation (drawn from the
store on every run, kept in the URL as `?c=ID` on every page) and hands over to
the page the navigation picked: the chat or the Tokens page.
"""

from __future__ import annotations

import streamlit as st

from dashboard import access, state

st.set_page_config(page_title="Claude chat", page_icon=":material/forum:", layout="wide")

access.owner()  # before anything else: stops here, with what to do, before sign-in or when refused
pages = st.navigation([
    st.Page("dashboard/pages/chat.py", title="Chat", icon=":material/forum:", default=True),
    st.Page("dashboard/pages/tokens.py", title="Tokens", icon=":material/bar_chart:", url_path="tokens"),
])
state.current_chat()
state.preload_local_model_if_needed()
if who := access.signed_in_as():
    with st.sidebar:
        st.caption(f"Signed in as **{state.plain(who)}**")
        st.button("Sign out", icon=":material/logout:", type="tertiary", key="app_sign_out", on_click=st.logout)
state.show_notice()
pages.run()
