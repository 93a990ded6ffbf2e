"""The dashboard: `streamlit run streamlit_app.py`.

This entry point sets up the page, opens this browser session's conversation
(drawn from the store on every run, kept in the URL as `?c=ID` on every page)
and hands over to the page the navigation picked: the chat or the Tokens page.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state

st.set_page_config(page_title="Claude chat", page_icon=":material/forum:", layout="wide")

pages = st.navigation([
    st.Page("dashboard/pages/chat.py", title="Chat", icon=":material/forum:", default=True),
    st.Page("dashboard/pages/tokens.py", title="Tokens", icon=":material/bar_chart:", url_path="tokens"),
])
state.current_chat()
state.preload_local_model_if_needed()
state.show_notice()
pages.run()
