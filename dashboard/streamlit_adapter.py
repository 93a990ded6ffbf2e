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

Back and Forward: Streamlit records each change of `st.query_params` as a browser
history entry, and on Back it reruns the script with that entry's URL, marking
the run as a history navigation. Only that mark tells such a run from any other
(a rerun request may carry a URL the page has already moved on from), and it is
not public: `is_history_navigation` reads it.
"""

from __future__ import annotations

from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

PAGES_DIRECTORY_FLAG = "uses_pages_directory"


def navigation_owns_pages() -> None:
    """Tell Streamlit that st.navigation, not the `pages/` folder, defines the pages."""
    if PAGES_DIRECTORY_FLAG not in vars(PagesManager):
        raise RuntimeError("Streamlit changed how it detects a pages/ folder: see dashboard/streamlit_adapter.py")
    setattr(PagesManager, PAGES_DIRECTORY_FLAG, False)


def is_history_navigation() -> bool:
    """True when the browser's Back or Forward started this run."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.is_history_navigation)
