"""The dashboard: `streamlit run streamlit_app.py`.

`streamlit run` serves the `app` below; its start-up hook begins loading the
bundled model before the first visitor arrives, and every response carries a
Content-Security-Policy (dashboard/csp.py). Each browser session then runs
this file as its page script, which is `dashboard.main.run()`.
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from dashboard import main
from dashboard.csp import ContentSecurityPolicy

app = st.App(__file__, lifespan=main.lifespan, middleware=[Middleware(ContentSecurityPolicy)])

if __name__ == "__main__":  # a page run (the server itself only imports this file to find `app`)
    main.run()
