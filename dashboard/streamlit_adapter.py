"""What the dashboard needs from Streamlit that Streamlit does not offer publicly, in one place.

`tests/test_streamlit_adapter.py` checks each premise below and fails loudly when a Streamlit
upgrade changes it.
"""

from __future__ import annotations


def navigation_pages_only() -> None:
    """Make the top-level `pages/` folder mean nothing to Streamlit but the files `st.navigation` lists.

    Streamlit 1.67 still treats a `pages/` folder beside the main script as its old automatic
    page list until the first `st.navigation` call of the process turns that off
    (`PagesManager.uses_pages_directory`). Until then, the server's very first run shows the
    old list (*streamlit app*, *chat*, *tokens*) and runs a page such as `/tokens` without the
    app's own set-up. Called at server start, before any browser session runs."""
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = False
