"""The dashboard: `streamlit run streamlit_app.py`.

`streamlit run` serves the `app` below; its start-up hook begins loading the
bundled model before the first visitor arrives. Each browser session then runs
this file as its page script, which is `dashboard.main.run()`.
"""

from __future__ import annotations

import streamlit as st

from dashboard import main, streamlit_adapter

streamlit_adapter.navigation_owns_pages()  # before the first browser session (see the adapter)
app = st.App(__file__, lifespan=main.lifespan)

if __name__ == "__main__":  # a page run (the server itself only imports this file to find `app`)
    main.run()
