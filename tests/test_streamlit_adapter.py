"""The premises of dashboard/streamlit_adapter.py (and of the AppTest pin in tests/conftest.py).

Each test fails when a Streamlit upgrade changes what the workaround relies on: then read the
new Streamlit, and drop or mend the workaround."""

from __future__ import annotations

import inspect

from dashboard import streamlit_adapter


def test_a_pages_folder_is_still_the_old_page_list_until_navigation_turns_it_off():
    from streamlit.commands import navigation
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    assert "uses_pages_directory" in vars(PagesManager)
    assert '/ "pages"' in inspect.getsource(PagesManager.__init__)
    assert "if PagesManager.uses_pages_directory:" in inspect.getsource(script_runner.ScriptRunner)
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)


def test_the_adapter_turns_the_old_page_list_off():
    from streamlit.runtime.pages_manager import PagesManager

    PagesManager.uses_pages_directory = None
    streamlit_adapter.navigation_pages_only()
    assert PagesManager.uses_pages_directory is False


def test_apptest_still_resets_the_pages_flag_before_every_run():
    from streamlit.testing.v1.app_test import AppTest

    assert "PagesManager.uses_pages_directory = None" in inspect.getsource(AppTest._run)


def test_streaming_relies_on_what_streamlit_still_has():
    """`stream_markdown` makes the private call st.write_stream makes."""
    import inspect

    from streamlit.delta_generator import DeltaGenerator

    assert "unterminated_parsing" in inspect.signature(DeltaGenerator._markdown).parameters


def test_back_and_forward_runs_are_still_marked():
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    assert "is_history_navigation" in ScriptRunContext.__dataclass_fields__, "Streamlit no longer marks Back/Forward runs"
    assert streamlit_adapter.is_history_navigation() is False  # outside a run


def test_another_session_can_still_be_rerun_as_the_file_watcher_does():
    """`rerun_session` does what Streamlit's run-on-save does: `request_rerun(self._client_state)` on
    the session's event loop, the session found through `Runtime.get_app_session`."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.app_session import AppSession

    assert "self.request_rerun(self._client_state)" in inspect.getsource(AppSession._on_source_file_changed)
    assert list(inspect.signature(AppSession.request_rerun).parameters) == ["self", "client_state"]
    assert "call_soon_threadsafe" in inspect.getsource(AppSession._call_soon_on_event_loop)
    assert "self._client_state = " in inspect.getsource(AppSession)
    source = inspect.getsource(AppSession)
    assert "self._scriptrunner = None" in source and "self._scriptrunner = ScriptRunner(" in source
    assert "session_id" in inspect.signature(Runtime.get_app_session).parameters
    assert "Threading: SAFE" in Runtime.get_app_session.__doc__
    assert streamlit_adapter.rerun_session("no-such-session") is False  # no runtime here: nothing to rerun
    assert streamlit_adapter.session_alive("no-such-session") is False


def test_a_run_still_knows_its_session():
    from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext

    assert "session_id" in ScriptRunContext.__dataclass_fields__
    assert streamlit_adapter.session_id() is None  # outside a run


def test_the_address_can_still_be_rewritten_in_place():
    """`replace_query`: the session's query changes without a message to the browser and the run's
    `ctx.query_string` is what a rerun and the saved client state take; the browser adds a history entry
    only when its address differs from the query it is told, and reports its address while its own copy
    of the query is empty."""
    import re
    from pathlib import Path

    import streamlit
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.runtime.state.query_params import QueryParams

    assert {"set_with_no_forward_msg", "discard_param_no_forward_msg"} <= set(vars(QueryParams))
    assert "self._query_params" in inspect.getsource(QueryParams.set_with_no_forward_msg)
    assert "ctx.query_string = msg.page_info_changed.query_string" in inspect.getsource(QueryParams._send_query_param_msg)
    assert "final_client_state.query_string = ctx.query_string" in inspect.getsource(script_runner.ScriptRunner)
    bundle = "\n".join(p.read_text(encoding="utf-8", errors="replace")
                       for p in (Path(streamlit.__file__).parent / "static" / "static" / "js").glob("index.*.js"))
    pushes_only_when_the_address_differs = (r"(\w+)!==\w+\(document\.location\.search\)&&\(this\.historyNavigationEpoch"
                                            r"===null\?window\.history\.pushState\(\{\},``,\w+\)")
    assert re.search(pushes_only_when_the_address_differs, bundle), "Streamlit changed how it records the URL's query"
    reports_the_address = (r"getQueryString=\(\)=>\{let\{queryParams:(\w+)\}=this\.state,(\w+)=\1&&\1\.length>0\?\1:"
                           r"document\.location\.search")
    assert re.search(reports_the_address, bundle), "Streamlit changed which query its rerun requests carry"
    assert "history.replaceState" in streamlit_adapter.REPLACE_URL_SCRIPT
