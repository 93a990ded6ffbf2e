"""What the dashboard needs from Streamlit 1.67 that Streamlit does not offer publicly.
tests/test_dashboard.py::test_the_streamlit_adapter_still_fits fails loudly when an
upgrade changes it; tests/test_browser_ux.py opens /tokens first in a served app.

The page scripts live in a top-level `pages/` folder and `st.navigation` lists them.
Streamlit 1.67 decides once per server process, when the first browser session
starts, whether an app with a `pages/` folder beside its main script is a "pages
directory" app (its multipage mode from before st.navigation): until a run calls
st.navigation, each run goes to the page the URL names, skipping the main script.
So a first visit to /tokens ran pages/tokens.py alone and failed. `navigation_owns_pages`
says up front what st.navigation would say on its first call.
"""

from __future__ import annotations

from streamlit.runtime.pages_manager import PagesManager

PAGES_DIRECTORY_FLAG = "uses_pages_directory"


def navigation_owns_pages() -> None:
    """Tell Streamlit that st.navigation, not the `pages/` folder, defines the pages."""
    if PAGES_DIRECTORY_FLAG not in vars(PagesManager):
        raise RuntimeError("Streamlit changed how it detects a pages/ folder: see dashboard/streamlit_adapter.py")
    setattr(PagesManager, PAGES_DIRECTORY_FLAG, False)
