"""Who may use the dashboard, through AppTest: sign-in required when [auth] is configured,
each signed-in user's conversations their own, the allow-list, the localhost rule,
and no credential in any message."""

import pytest

from chat_core.errors import redact_url
from chat_core.markdown_safety import literal
from chat_core.storage import Store
from tests.test_dashboard import bubbles, picker, send

AUTH = {"client_id": "c", "client_secret": "s", "redirect_uri": "http://127.0.0.1:1/oauth2callback",
        "cookie_secret": "x" * 32, "server_metadata_url": "http://127.0.0.1:1/.well-known/openid-configuration"}
ISSUER = "https://idp.example"


def signed_in(app_test, sub, email=None, access=None, **claims):
    at = app_test
    at.secrets["auth"] = AUTH
    if access is not None:
        at.secrets["access"] = access
    at.user = {"is_logged_in": sub is not None, "iss": ISSUER, "sub": sub, "email": email, **claims}
    return at


@pytest.fixture
def as_user(api):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    def make(sub, email=None, query=None, access=None, **claims):
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        return signed_in(at, sub, email, access, **claims).run()

    return make


def test_nothing_but_a_sign_in_button_before_sign_in(as_user, isolated):
    at = as_user(None)
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert len(at.chat_message) == 0 and len(at.get("chat_input")) == 0 and len(at.selectbox) == 0


def test_each_user_sees_only_their_own_conversations(as_user, isolated):
    alice = as_user("alice", "alice@example.com")
    send(alice, "alice's secret plan")
    alice_chat = alice.query_params["c"]
    bob = as_user("bob", "bob@example.com")
    assert picker(bob).options == []  # none of alice's, none of the terminal's
    send(bob, "bob's question")
    peek = as_user("bob", "bob@example.com", query={"c": alice_chat})
    assert [w.value.replace("\\", "") for w in peek.warning] == [f"Conversation {alice_chat} not found: this is a new chat."]
    assert "alice" not in " ".join(bubbles(peek))
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    assert store.list_conversations() == []  # the local owner (terminal chats) sees neither
    assert [c.title for c in store.list_conversations(f"{ISSUER}|alice")] == ["alice's secret plan"]
    again = as_user("alice", "alice@example.com", query={"c": alice_chat})
    assert bubbles(again) == ["alice's secret plan", "echo: alice's secret plan"]
    assert any(c.value == f"Signed in as **{literal('alice@example.com')}**" for c in again.caption)  # as written


def test_the_allow_list_admits_listed_addresses_and_domains_only(as_user):
    access = {"allow": ["ana@example.com", "example.org"]}
    refused = as_user("mallory", "mallory@evil.example", access=access)
    assert "may not use this app" in refused.error[0].value and len(refused.get("chat_input")) == 0
    unverified = as_user("eve", "eve@example.org", access=access, email_verified=False)
    assert "may not use this app" in unverified.error[0].value
    for sub, email in [("ana", "Ana@Example.com"), ("bo", "bo@example.org")]:
        admitted = as_user(sub, email, access=access)
        assert not admitted.error and len(admitted.get("chat_input")) == 1


@pytest.fixture
def bound_to_every_interface():
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", before)


def test_served_beyond_localhost_without_sign_in_shows_one_line(app, monkeypatch, bound_to_every_interface):
    at = app()
    assert "served beyond this machine without sign-in" in at.error[0].value
    assert len(at.get("chat_input")) == 0
    monkeypatch.setenv("CHAT_TRUSTED_NETWORK", "1")
    assert len(app().get("chat_input")) == 1


def test_a_password_in_the_base_url_never_shows_or_is_stored(app, monkeypatch, isolated):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://user:hunter2@127.0.0.1:9/")
    at = app()
    send(at, "hello")
    assert any("Could not reach Claude at http://user:(hidden)@127.0.0.1:9/" in e.value for e in at.error)
    database = (isolated / "data" / "chat.db").read_bytes() + (isolated / "data" / "chat.db-wal").read_bytes()
    assert b"hunter2" not in database
    assert "hunter2" not in repr(at.main) + repr(at.sidebar)
    assert redact_url("https://u:p@gw.example:8443/v1?key=k") == "https://u:(hidden)@gw.example:8443/v1?key=(hidden)"

