"""End to end in headless Chromium (Debian's) against `streamlit run` and the loopback Claude API.

Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.conftest import ROOT, TEST_KEY
from chat_core.storage import Store
from tests.loopback_api import reply

CHROMIUM = "/usr/bin/chromium"
MAIN = '[data-testid="stMainBlockContainer"]'  # the main area in Streamlit 1.67
ARTIFACTS = ROOT / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`streamlit run streamlit_app.py` on loopback, restartable."""

    def __init__(self, env: dict, args: list[str] | None = None, port: int | None = None):
        self.env, self.args, self.port, self.proc = env, args or [], port or free_port(), None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = ARTIFACTS / f"streamlit-{self.port}.log"

    def start(self) -> "App":
        ARTIFACTS.mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.fileWatcherType", "none", *self.args],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2).read() == b"ok":
                    return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"streamlit did not start on port {self.port}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


@pytest.fixture
def served(api, isolated):
    env = dict(os.environ, ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url)
    app = App(env).start()
    yield app
    app.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        yield tab
        browser.close()


def idle(page, timeout=30.0) -> str:
    """Wait until no run is in progress, no reply streams (no Stop control) and the main text is
    stable; return that text."""
    deadline, last, stable = time.time() + timeout, None, 0
    while time.time() < deadline:
        running, text = page.evaluate("""() => {
            const s = document.querySelector('[data-testid="stStatusWidget"]');
            const m = document.querySelector('[data-testid="stMainBlockContainer"]');
            return [(!!s && s.innerText.includes('Running')) || !!document.querySelector('.st-key-chat_stop'),
                    m ? m.innerText : ''];
        }""")
        stable = stable + 1 if (not running and text and text == last) else 0
        if stable >= 3:
            return text
        last = text
        time.sleep(0.25)
    raise AssertionError("the page never settled")


def open_app(page, url: str) -> str:
    page.goto(url)
    page.wait_for_selector('[data-testid="stChatInput"] textarea', timeout=30000)
    return idle(page)


def send(page, text: str) -> None:
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill(text)
    box.press("Enter")


def url_of(page) -> str:
    """The address bar as it is now (Streamlit changes it with history.replaceState, which page.url can miss)."""
    return page.evaluate("() => location.href")


def last_bubble(page) -> str:
    return page.evaluate("""() => {
        const all = document.querySelectorAll('[data-testid="stChatMessage"]');
        return all.length ? all[all.length - 1].innerText : '';
    }""")


def test_chat_streams_window_stop_and_token_page(served, api, page):
    open_app(page, served.url)
    assert "Hi! You are chatting with anthropic · claude-haiku-4-5" in page.inner_text(MAIN)

    words = " ".join(f"w{i}" for i in range(40))
    api.queue(reply(words, delay=0.05))
    send(page, "stream please")
    seen = set()
    deadline = time.time() + 20
    while time.time() < deadline and "w39" not in last_bubble(page):
        seen.add(last_bubble(page).count(" w"))
        time.sleep(0.05)
    assert len(seen) >= 3, "the reply did not appear piece by piece"
    idle(page)
    page.screenshot(path=str(ARTIFACTS / "chat-streamed.png"))

    send(page, "second")
    idle(page)
    assert len(api.requests[-1]["messages"]) == 3
    slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    slider.press("Home")  # window = 1 exchange
    idle(page)
    send(page, "third")
    idle(page)
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["second", "echo: second", "third"]
    assert "outside the window" in page.inner_text(MAIN)

    api.queue(reply(" ".join(f"s{i}" for i in range(200)), delay=0.05))
    send(page, "a long one")
    page.wait_for_function("() => document.body.innerText.includes('s5')", timeout=20000)
    page.locator('.st-key-chat_stop button').first.click()
    idle(page)
    send(page, "after the stop")
    text = idle(page)
    assert "Stopped: partial reply." in text and "echo: after the stop" in text
    stopped = api.requests[-1]["messages"][-2]["content"]
    assert stopped.startswith("s0 s1 s2") and "s199" not in stopped
    assert "Traceback" not in text and page.locator('[data-testid="stException"]').count() == 0
    metric = page.locator('[data-testid="stMetric"]').first.inner_text()
    assert "Input tokens" in metric
    page.screenshot(path=str(ARTIFACTS / "chat-after-stop.png"))

    page.locator('[data-testid="stSidebarNav"] a', has_text="Tokens").click()
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=30000)
    idle(page)
    assert "Tokens per turn" in page.inner_text(MAIN)
    page.screenshot(path=str(ARTIFACTS / "token-page.png"), full_page=True)


def test_conversation_survives_reload_and_restart_and_html_stays_inert(served, api, page):
    open_app(page, served.url)
    payload = '<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> **bold**'
    api.queue(reply(payload))
    send(page, 'hello <img src=y onerror="window.__pwned = 3">')
    text = idle(page)
    assert page.evaluate("() => window.__pwned") is None
    assert page.locator('[data-testid="stChatMessage"] img').count() == 0
    assert 'onerror="window.__pwned = 3"' in text  # shown as text

    here = url_of(page)
    assert "?c=" in here
    page.reload()
    page.wait_for_selector('[data-testid="stChatInput"] textarea', timeout=30000)
    text = idle(page)
    assert "echo" not in text and "hello <img" in text  # the conversation is back after a refresh

    served.stop()
    served.start()
    text = open_app(page, here)
    assert "hello <img" in text and "bold" in text
    assert page.evaluate("() => window.__pwned") is None
    page.screenshot(path=str(ARTIFACTS / "after-restart.png"))


def bubble_texts(page) -> list[str]:
    return page.evaluate("""() => [...document.querySelectorAll('[data-testid="stChatMessage"]')]
        .map(m => [...m.querySelectorAll('[data-testid="stText"], [data-testid="stChatMessageContent"] > div [data-testid="stMarkdownContainer"]')]
            .filter(e => !e.closest('[data-testid="stCaptionContainer"]') && !e.closest('[data-testid="stPopover"]')
                         && !e.closest('[data-testid="stButton"]'))
            .map(e => e.innerText).join(' '))""")


def test_a_stop_redraws_the_page_from_the_store_by_itself(served, api, page, isolated):
    open_app(page, served.url)
    api.queue(reply(" ".join(f"s{i}" for i in range(300)), delay=0.05))
    send(page, "a long one")
    page.wait_for_function("() => document.body.innerText.includes('s5')", timeout=20000)
    page.locator('.st-key-chat_stop button').first.click()
    # No other action: the page notices the stored partial reply and redraws.
    page.wait_for_function("() => document.body.innerText.includes('Stopped: partial reply.')", timeout=15000)
    text = idle(page)
    assert "Cost" in page.inner_text('[data-testid="stSidebar"]')
    metric = page.locator('[data-testid="stMetric"]').first.inner_text()
    assert "Input tokens" in metric and metric.split()[-1] != "0"
    store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
    stored = store.load(store.latest_id()).messages
    assert stored[-1].status == "stopped" and stored[-1].text.split()[-1] in text
    page.screenshot(path=str(ARTIFACTS / "after-stop.png"))


def test_two_browsers_on_one_conversation_stay_in_step(served, api, isolated):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        a = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        b = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        open_app(a, served.url)
        send(a, "from A")
        a.wait_for_function("() => document.body.innerText.includes('echo: from A')")
        idle(a)
        a.wait_for_function("() => location.search.includes('c=')")  # the stored chat's id reaches the URL
        open_app(b, url_of(a))
        assert "echo: from A" in idle(b)
        send(a, "A again")
        # B follows the store by itself, then sends with everything stored.
        b.wait_for_function("() => document.body.innerText.includes('echo: A again')", timeout=15000)
        send(b, "from B")
        b.wait_for_function("() => document.body.innerText.includes('echo: from B')")
        idle(b)
        assert [m["content"] for m in api.requests[-1]["messages"]] == [
            "from A", "echo: from A", "A again", "echo: A again", "from B"]
        a.wait_for_function("() => document.body.innerText.includes('echo: from B')", timeout=15000)
        idle(a)
        assert bubble_texts(a) == bubble_texts(b) == [
            "from A", "echo: from A", "A again", "echo: A again", "from B", "echo: from B"]
        store = Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")
        stored = store.load(store.latest_id())
        assert [r.turn for r in stored.records] == [1, 2, 3]
        assert "Not sent" not in idle(a)
        b.screenshot(path=str(ARTIFACTS / "two-browsers.png"))
        browser.close()


def test_pages_keep_the_conversation_and_odd_urls_say_so(served, api, page):
    open_app(page, served.url)
    send(page, "keep me")
    page.wait_for_function("() => document.body.innerText.includes('echo: keep me')")
    idle(page)
    chat_url = url_of(page)
    page.locator('[data-testid="stSidebarNav"] a', has_text="Tokens").click()
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=30000)
    idle(page)
    assert chat_url.split("?")[1] in url_of(page) and "keep me" in page.inner_text(MAIN)
    page.reload()
    page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=30000)
    assert "keep me" in idle(page)
    page.screenshot(path=str(ARTIFACTS / "tokens-page.png"), full_page=True)
    box = page.locator('[data-testid="stVegaLiteChart"]').first.bounding_box()
    main = page.locator(MAIN).bounding_box()
    assert box["x"] + box["width"] <= main["x"] + main["width"] + 1  # the chart fits its container
    for odd in ["abc", "99999999999999999999", "%C2%B2", "0"]:
        text = open_app(page, f"{served.url}/?c={odd}")
        assert "not found: this is a new chat" in text and "keep me" not in text
        assert page.locator('[data-testid="stException"]').count() == 0
    page.screenshot(path=str(ARTIFACTS / "odd-url.png"))


def test_regenerate_edit_and_versions_survive_a_reload_and_a_restart(served, api, page):
    open_app(page, served.url)
    api.queue(reply("first answer"), reply("second answer"))
    send(page, "a question")
    page.wait_for_function("() => document.body.innerText.includes('first answer')")
    idle(page)
    page.locator(".st-key-chat_regenerate button").first.click()
    page.wait_for_function("() => document.body.innerText.includes('second answer')")
    text = idle(page)
    assert "2/2" in text and "first answer" not in text
    page.reload()
    page.wait_for_selector('[data-testid="stChatInput"] textarea', timeout=30000)
    assert "second answer" in idle(page)
    page.locator('[class*="st-key-chat_prev_"] button').first.click()
    page.wait_for_function("() => document.body.innerText.includes('first answer')")
    text = idle(page)
    assert "1/2" in text and "second answer" not in text
    page.screenshot(path=str(ARTIFACTS / "versions.png"))
    here = url_of(page)
    served.stop()
    served.start()
    text = open_app(page, here)  # the versions and the choice survive a restart
    assert "first answer" in text and "1/2" in text
    page.locator(".st-key-chat_edit button").first.click()
    box = page.locator('[class*="st-key-chat_edit_text_"] textarea')
    box.fill("a better question")
    page.locator(".st-key-chat_edit_send button").first.click()
    page.wait_for_function("() => document.body.innerText.includes('echo: a better question')")
    text = idle(page)
    assert "a better question" in text and "2/2" in text and "a question\n" not in text
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["a better question"]


def test_a_reply_is_copied_as_markdown_in_one_click(served, api):
    from playwright.sync_api import sync_playwright

    text = 'Some **bold** and `code` </script> "quoted"'
    api.queue(reply(text))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
        page = context.new_page()
        open_app(page, served.url)
        send(page, "copy me")
        page.wait_for_function("() => document.body.innerText.includes('quoted')")
        idle(page)
        frames = page.locator("iframe")
        frames.last.content_frame.get_by_role("button", name="Copy as Markdown").click()
        page.wait_for_timeout(300)
        assert page.evaluate("() => navigator.clipboard.readText()") == text
        browser.close()
