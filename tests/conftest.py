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


def _run_main_script(main_script_path: str) -> None:
    """What `streamlit run` does on every run of an app whose st.navigation replaced the pages/
    folder: run the main script. AppTest 1.67 forgets that replacement before each run
    (it resets PagesManager.uses_pages_directory), so from the second run on it would run the
    page alone (Streamlit's pages/-folder mode), skipping streamlit_app.py."""
    import sys

    path = Path(main_script_path)
    exec(compile(path.read_text("utf-8"), str(path), "exec"), sys.modules["__main__"].__dict__)  # noqa: S102


@pytest.fixture(autouse=True)
def main_script_every_run(monkeypatch):
    """Every AppTest run goes through streamlit_app.py, as a served run does (see `_run_main_script`)."""
    from streamlit.runtime.scriptrunner import script_runner

    monkeypatch.setattr(script_runner, "_mpa_v1", _run_main_script)


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
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS turns, messages, conversations, schema_version CASCADE"))
    engine.dispose()
    return url


def pytest_configure(config):
    # The loopback OIDC provider runs on an older Authlib API; its deprecations are not ours.
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:authlib.*")
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning:oidc_provider_mock.*")
    config.addinivalue_line("filterwarnings", "ignore:authlib.jose module is deprecated")
