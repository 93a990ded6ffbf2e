"""Privacy in a real browser: OpenID Connect sign-in through the real redirect flow against a
loopback provider (oidc-provider-mock), and the private defaults without sign-in."""

from __future__ import annotations

import os
import socket

import pytest

from chat_core.storage import Store
from tests.conftest import TEST_KEY
from tests.oidc import free_port, oidc_provider, sign_in, sign_out, streamlit_secrets_args, write_auth_secrets
from tests.test_browser import ARTIFACTS, CHROMIUM, FLAGS, App, idle, open_app, send, url_of

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")


def new_page(browser):
    return browser.new_context(viewport={"width": 1280, "height": 800}).new_page()


def signed_in_page(browser, app, sub, email):
    page = new_page(browser)
    page.goto(app.url)
    page.get_by_role("button", name="Sign in").click()
    sign_in(page, sub, email=email)
    page.wait_for_selector('[data-testid="stChatInput"] textarea', timeout=30000)
    idle(page)
    return page


def test_two_people_sign_in_and_each_sees_only_their_own(api, isolated, tmp_path):
    from playwright.sync_api import sync_playwright

    with oidc_provider() as idp, sync_playwright() as p:
        port = free_port()
        secrets = write_auth_secrets(tmp_path, port, idp.url, other_sections={"access": {"allow": ["example.com"]}})
        env = dict(os.environ, ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url)
        app = App(env, streamlit_secrets_args(secrets), port).start()
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            stranger = new_page(browser)
            stranger.goto(app.url)
            stranger.get_by_role("button", name="Sign in").wait_for(timeout=30000)
            shown = idle(stranger)
            assert "Sign in to see your conversations" in shown
            assert stranger.locator('[data-testid="stChatInput"]').count() == 0
            assert stranger.locator('[data-testid="stSidebarNav"]').count() == 0
            stranger.screenshot(path=str(ARTIFACTS / "signin-before.png"))

            alice = signed_in_page(browser, app, "alice", "alice@example.com")
            send(alice, "alice's secret plan")
            alice.wait_for_function("() => document.body.innerText.includes('echo: alice')")
            idle(alice)
            alice_url = url_of(alice)
            assert "Signed in as" in alice.inner_text('[data-testid="stSidebar"]')

            bob = signed_in_page(browser, app, "bob", "bob@example.com")
            assert "alice" not in bob.inner_text("body")
            text = open_app(bob, alice_url)  # alice's conversation by its number
            assert "not found: this is a new chat" in text and "alice" not in bob.inner_text("body")
            bob.screenshot(path=str(ARTIFACTS / "signin-other-user.png"))

            refused = new_page(browser)
            refused.goto(app.url)
            refused.get_by_role("button", name="Sign in").click()
            sign_in(refused, "mallory", email="mallory@evil.example")
            refused.wait_for_function("() => document.body.innerText.includes('may not use this app')", timeout=30000)
            assert refused.locator('[data-testid="stChatInput"]').count() == 0

            alice.get_by_role("button", name="Sign out").click()
            sign_out(alice)
            alice.get_by_role("button", name="Sign in").wait_for(timeout=30000)
            assert "alice's secret plan" not in alice.inner_text("body")
        finally:
            browser.close()
            app.stop()
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    assert store.list_conversations() == []  # nothing belongs to the local owner
    assert [c.title for c in store.list_conversations(f"{idp.url}|alice")] == ["alice's secret plan"]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, read from /proc/net/tcp and tcp6."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in open(table).read().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:
                raw = bytes.fromhex(address)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
                found.add(socket.inet_ntop(family, words))
    return found


def test_without_sign_in_it_listens_on_this_machine_only_and_a_new_visitor_starts_fresh(api, isolated):
    from playwright.sync_api import sync_playwright

    env = dict(os.environ, ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url)
    app = App(env).start()
    try:
        assert listening_addresses(app.port) == {"127.0.0.1"}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            first = new_page(browser)
            open_app(first, app.url)
            send(first, "mine")
            first.wait_for_function("() => document.body.innerText.includes('echo: mine')")
            second = new_page(browser)
            text = open_app(second, app.url)
            assert "mine" not in text and "Hi! You are chatting" in text
            broken = App(dict(env, ANTHROPIC_BASE_URL="http://user:hunter2@127.0.0.1:9/")).start()
            try:
                open_app(second, broken.url)
                send(second, "anyone there?")
                second.wait_for_function("() => document.body.innerText.includes('Could not reach Claude')",
                                         timeout=60000)
                shown = idle(second)
                assert "http://user:(hidden)@127.0.0.1:9/" in shown and "hunter2" not in shown
            finally:
                broken.stop()
            browser.close()
    finally:
        app.stop()
    data = b"".join(path.read_bytes() for path in (isolated / "data").iterdir())
    logs = app.log.read_text() + broken.log.read_text()
    assert b"hunter2" not in data and "hunter2" not in logs and "Network URL" not in logs
    assert (isolated / "data").stat().st_mode & 0o777 == 0o700
    assert (isolated / "data" / "chat.db").stat().st_mode & 0o777 == 0o600
