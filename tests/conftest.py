"""Shared fixtures: every data path in a temporary folder, the loopback Claude API, the bundled model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.loopback_api import LoopbackAPI

ROOT = Path(__file__).resolve().parent.parent
TEST_KEY = "sk-ant-test-loopback-0123456789"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the developer's key, settings or database."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "CHAT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CHAT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture(scope="session")
def api_server():
    server = LoopbackAPI().start()
    yield server
    server.stop()


@pytest.fixture
def api(api_server, monkeypatch):
    """The loopback Claude API, reset, with the environment pointing at it."""
    api_server.reset()
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", api_server.url)
    yield api_server
    api_server.reset()


@pytest.fixture(scope="session")
def local_model():
    from chat_core.backends.local import LocalModel

    return LocalModel.load()


def cli_until(lines: str, marker: str, env: dict | None = None, timeout: float = 60) -> subprocess.Popen:
    """Start `python -m chat_core`, feed it `lines`, and return once stdout shows `marker`
    (the reply is then streaming), with the process still running."""
    proc = subprocess.Popen([sys.executable, "-m", "chat_core"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(lines)
    proc.stdin.flush()
    seen, deadline = "", time.time() + timeout
    while marker not in seen:
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"{marker!r} never appeared; stdout so far: {seen[-200:]!r}")
        seen += proc.stdout.read(1)
    return proc


def run_cli(*args: str, stdin: str, env_extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m chat_core` as a user runs it, with piped stdin."""
    env = {k: v for k, v in os.environ.items()}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "chat_core", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def pin_navigation_pages() -> None:
    """AppTest runs a top-level `pages/` folder as Streamlit's old automatic page list.

    `AppTest._run` sets `PagesManager.uses_pages_directory = None` before every run, so each
    run finds `pages/` again and wraps the app in the old page list, which drops the query
    string (`?c=`). A server turns the flag off once, at start (dashboard/streamlit_adapter.py).
    Here `app_test`'s own name for the class becomes a subclass (its reset then lands on the
    subclass) and the flag stays off, as in a server. `tests/test_streamlit_adapter.py`
    fails when a Streamlit upgrade changes this."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.testing.v1 import app_test

    from dashboard.streamlit_adapter import navigation_pages_only

    if app_test.PagesManager is PagesManager:
        app_test.PagesManager = type("NavigationOnlyPagesManager", (PagesManager,), {})
    navigation_pages_only()


@pytest.fixture(scope="session", autouse=True)
def navigation_pages():
    pin_navigation_pages()


@pytest.fixture
def app():
    """A fresh AppTest of the dashboard (a new browser session), with resources that depend on the environment rebuilt."""
    from streamlit.testing.v1 import AppTest

    from dashboard import state

    state.anthropic_client.clear()

    def make(query: dict | None = None):
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        return at.run()

    return make


# Read before the autouse fixture clears CHAT_* variables.
POSTGRES_URL = os.environ.get("CHAT_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A real database, empty: a SQLite file, and the PostgreSQL that .ci/run starts."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'chat.db'}"
    url = POSTGRES_URL
    if not url:
        pytest.skip("no PostgreSQL: set CHAT_TEST_POSTGRES_URL (.ci/start-postgres starts one)")
    empty_postgres(url)
    return url


def empty_postgres(url: str) -> None:
    """Drop every table of the PostgreSQL database at `url`, whichever schema version left them
    (naming the tables instead left a later version's, such as blobs, and the next start failed)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    tables = sa.MetaData()
    tables.reflect(engine)
    tables.drop_all(engine)
    engine.dispose()


def pytest_configure(config):
    # The loopback OIDC provider runs on an older Authlib API; its deprecations are not ours.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:authlib.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:oidc_provider_mock.*")
    config.addinivalue_line("filterwarnings", "ignore:authlib.jose module is deprecated")
