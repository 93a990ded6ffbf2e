"""A reply outlives the page run (issue 14), in headless Chromium against `streamlit run` and the
loopback Claude API streaming slowly: nothing a person does while it streams cuts it or loses it.

One server for the module (each test opens its own conversation). Screenshots: test-artifacts/live-*.png.
"""

from __future__ import annotations

import os
import time

import pytest

from chat_core.conversation import COMPLETE, STOPPED
from chat_core.storage import Store
from tests.conftest import POSTGRES_URL, TEST_KEY, empty_postgres
from tests.loopback_api import reply
from tests.test_browser import ARTIFACTS, CHROMIUM, FLAGS, MAIN, App, send, url_of
from tests.test_browser import idle as settled

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")

WORDS = " ".join(f"w{i}" for i in range(60))  # 60 deltas, 0.06 s apart: a reply of about 4 s


def slow(text: str = WORDS, delay: float = 0.06):
    return reply(text, delay=delay)


@pytest.fixture(scope="module")
def server(api_server, tmp_path_factory):
    data = tmp_path_factory.mktemp("live")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}
    env.update(ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api_server.url, CHAT_DATA_DIR=str(data))
    app = App(env).start()
    app.store = Store(f"sqlite:///{data / 'chat.db'}")
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def api(api_server):
    api_server.reset()
    yield api_server
    api_server.reset()


def new_tab(browser):
    tab = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    tab.set_default_timeout(60_000)
    return tab


@pytest.fixture
def tab(browser):
    tab = new_tab(browser)
    yield tab
    tab.context.close()


def idle(tab, timeout: float = 60) -> str:
    return settled(tab, timeout=timeout)


def open_at(tab, url: str) -> str:
    tab.goto(url)
    tab.wait_for_selector('[data-testid="stChatInput"] textarea')
    return idle(tab, timeout=60)


def shows(tab, text: str, timeout: float = 30_000) -> None:
    tab.wait_for_function("(t) => document.querySelector('[data-testid=\"stMainBlockContainer\"]')"
                          "?.innerText.includes(t)", arg=text, timeout=timeout)


def conversation_of(tab) -> int:
    tab.wait_for_function("() => location.search.includes('c=')")
    return int(url_of(tab).split("c=")[1].split("&")[0])


def stored(server, cid: int, timeout: float = 30) -> list[tuple[str, str, str]]:
    """(role, text, status) of the conversation once no reply in it is streaming any more."""
    deadline = time.time() + timeout
    while True:
        messages = server.store.load(cid).messages
        if all(m.status != "streaming" for m in messages) or time.time() > deadline:
            return [(m.role, m.text, m.status) for m in messages]
        time.sleep(0.2)


def test_slider_page_switch_and_new_chat_mid_reply_never_cut_the_reply(server, api, tab):
    open_at(tab, server.url)
    api.queue(slow(), slow(), slow())
    send(tab, "first")
    shows(tab, "w5")
    cid = conversation_of(tab)  # in the URL while the first reply still streams
    slider = tab.locator('[data-testid="stSlider"] input[type="range"]').first
    slider.focus()
    slider.press("ArrowLeft")  # a rerun mid-reply
    shows(tab, "w59")  # the page goes on showing the reply to its end
    text = idle(tab)
    assert "Not sent with the next message" not in text and "Stopped" not in text
    assert stored(server, cid) == [("user", "first", COMPLETE), ("assistant", WORDS, COMPLETE)]

    send(tab, "second")
    shows(tab, "w5")
    tab.locator('[data-testid="stSidebarNav"] a', has_text="Tokens").click()  # leave mid-reply
    tab.wait_for_selector('[data-testid="stVegaLiteChart"]')
    assert stored(server, cid)[-1] == ("assistant", WORDS, COMPLETE)
    tab.locator('[data-testid="stSidebarNav"] a', has_text="Chat").click()
    shows(tab, "second")

    send(tab, "third")
    shows(tab, "w5")
    tab.locator('.st-key-chat_new button').first.click()  # a new chat mid-reply
    shows(tab, "Ask me anything")
    assert stored(server, cid)[-2:] == [("user", "third", COMPLETE), ("assistant", WORDS, COMPLETE)]
    tab.screenshot(path=str(ARTIFACTS / "live-after-new-chat.png"))
    assert tab.locator('[data-testid="stException"]').count() == 0


def test_a_reload_mid_reply_shows_it_continue_also_a_new_chats_first_reply(server, api, tab):
    open_at(tab, server.url)
    api.queue(slow())
    send(tab, "a new chat's first message")
    shows(tab, "w8")
    cid = conversation_of(tab)  # set before the reply ends
    tab.reload()
    tab.wait_for_selector('[data-testid="stChatInput"] textarea')
    shows(tab, "a new chat's first message")
    at_reload = tab.inner_text(MAIN)
    assert "w59" not in at_reload, "the reply ended before the reload came back: make it slower"
    shows(tab, "w59")  # it continues on the reloaded page
    text = idle(tab)
    assert "Stopped" not in text
    assert stored(server, cid)[-1] == ("assistant", WORDS, COMPLETE)
    tab.screenshot(path=str(ARTIFACTS / "live-after-reload.png"))


def test_a_second_browser_watches_the_reply_live(server, api, browser, tab):
    open_at(tab, server.url)
    send(tab, "hello")
    shows(tab, "echo: hello")
    idle(tab)
    cid = conversation_of(tab)
    other = new_tab(browser)
    try:
        open_at(other, url_of(tab))
        api.queue(slow())
        send(tab, "stream to both")
        shows(other, "w3", timeout=15_000)  # the second view shows the reply while it streams
        partial = other.inner_text(MAIN)
        assert "w59" not in partial and "stream to both" in partial
        shows(other, "w59")
        idle(other)
        assert stored(server, cid)[-1] == ("assistant", WORDS, COMPLETE)
        other.screenshot(path=str(ARTIFACTS / "live-second-browser.png"))
    finally:
        other.context.close()


def test_a_second_tab_crossing_into_the_queued_reply_shows_the_first_once(server, api, browser, tab):
    open_at(tab, server.url)
    api.queue(slow())
    send(tab, "first of two")
    shows(tab, "w5")
    api.queue(slow(" ".join(f"q{i}" for i in range(60)), delay=0.08))
    send(tab, "second, queued")
    other = new_tab(browser)
    try:
        other.goto(url_of(tab))  # shows the first reply live, then reruns as the queued one starts
        shows(other, "q8")
        main = other.inner_text(MAIN)
        # the run before drew the first reply live here: none of it lingers beside the stored reply
        assert main.count("w59") == 1 and other.locator(".st-key-chat_stop").count() == 1, main
        other.screenshot(path=str(ARTIFACTS / "live-second-tab-queued.png"))
        idle(other)
    finally:
        other.context.close()


def test_a_message_sent_mid_reply_is_queued_and_answered_after(server, api, tab):
    open_at(tab, server.url)
    api.queue(slow())
    send(tab, "long one")
    shows(tab, "w5")
    box = tab.locator('[data-testid="stChatInput"] textarea')
    assert box.is_editable()  # the input stays usable while the reply streams
    send(tab, "next one")
    shows(tab, "Queued: sent when the reply above ends.")
    tab.screenshot(path=str(ARTIFACTS / "live-queued.png"))
    shows(tab, "echo: next one")
    text = idle(tab)
    assert text.index("w59") < text.index("next one") < text.index("echo: next one")
    assert [m["content"] for m in api.requests[-1]["messages"]] == ["long one", WORDS, "next one"]
    cid = conversation_of(tab)
    assert [(r, s) for r, _, s in stored(server, cid)] == [("user", COMPLETE), ("assistant", COMPLETE)] * 2


def test_stop_in_the_page_keeps_and_counts_the_partial_reply_also_for_regenerate_and_edit(server, api, tab):
    open_at(tab, server.url)
    api.queue(slow(delay=0.1))
    send(tab, "stop me")
    shows(tab, "w5")
    tab.locator('.st-key-chat_stop button').first.click()
    shows(tab, "Stopped: partial reply.")
    idle(tab)
    cid = conversation_of(tab)
    role, text, status = stored(server, cid)[-1]
    assert status == STOPPED and text.startswith("w0 w1 w2") and "w59" not in text
    records = server.store.load(cid).records
    assert records[-1].status == STOPPED and records[-1].usage.output_tokens > 0

    api.queue(slow(delay=0.1))
    tab.locator(".st-key-chat_regenerate button").first.click()
    shows(tab, "w5")
    tab.locator('.st-key-chat_stop button').first.click()  # Regenerate has a stop control too
    shows(tab, "2/2")
    idle(tab)
    assert len(server.store.load(cid).records) == 2 and server.store.load(cid).records[-1].status == STOPPED

    api.queue(slow(delay=0.1))
    tab.locator(".st-key-chat_edit button").first.click()  # and Edit
    tab.locator('[class*="st-key-chat_edit_text_"] textarea').fill("stop me, edited")
    tab.locator(".st-key-chat_edit_send button").first.click()
    shows(tab, "w5")
    tab.locator('.st-key-chat_stop button').first.click()
    shows(tab, "Stopped: partial reply.")
    idle(tab)
    stopped = server.store.load(cid)
    assert [m.text for m in stopped.messages][0] == "stop me, edited" and stopped.messages[-1].status == STOPPED
    assert len(stopped.records) == 3 and stopped.records[-1].status == STOPPED
    tab.screenshot(path=str(ARTIFACTS / "live-stopped.png"))


@pytest.mark.skipif(not POSTGRES_URL, reason="no PostgreSQL: set CHAT_TEST_POSTGRES_URL (.ci/start-postgres starts one)")
def test_a_reply_started_on_one_server_is_followed_live_on_another(api, browser, tmp_path):
    empty_postgres(POSTGRES_URL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}
    env.update(ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url, CHAT_DATABASE_URL=POSTGRES_URL,
               CHAT_DATA_DIR=str(tmp_path))
    a, b = App(env).start(), App(env).start()
    on_a, on_b = new_tab(browser), new_tab(browser)
    try:
        open_at(on_a, a.url)
        send(on_a, "hello")
        shows(on_a, "echo: hello")
        idle(on_a)
        cid = conversation_of(on_a)
        open_at(on_b, f"{b.url}/?c={cid}")
        api.queue(slow(delay=0.08))
        send(on_a, "on A")
        shows(on_b, "w5", timeout=15_000)  # B sees it while A's server writes it
        assert "w59" not in on_b.inner_text(MAIN)
        shows(on_b, "w59")
        idle(on_b)
        on_b.screenshot(path=str(ARTIFACTS / "live-second-server.png"))
        assert Store(POSTGRES_URL).load(cid).messages[-1].status == COMPLETE
    finally:
        on_a.context.close()
        on_b.context.close()
        a.stop()
        b.stop()


LEFTOVERS = """() => [...document.querySelectorAll('[data-testid="stChatMessage"]')].flatMap(bubble =>
    [...bubble.querySelectorAll('[data-stale="true"]')].filter(e => getComputedStyle(e).display !== 'none'
        && e.innerText.trim()).map(e => e.innerText.trim().replace(/\\n/g, ' ')))"""


def test_while_a_reply_streams_no_earlier_reply_shows_a_leftover_of_the_run_before(server, api, tab):
    """From the third message on, and after a message is queued, the rows under earlier replies keep their
    shape: nothing of the run before (such as the model's name, a second time) lingers beside them for as
    long as the reply streams."""
    open_at(tab, server.url)
    for text in ("one", "two"):
        send(tab, text)
        shows(tab, f"echo: {text}")
        idle(tab)
    api.queue(slow(delay=0.1))
    send(tab, "three")
    shows(tab, "w8")
    assert tab.evaluate(LEFTOVERS) == []
    send(tab, "four, queued")
    shows(tab, "Queued: sent when the reply above ends.")
    shows(tab, "w16")
    assert tab.evaluate(LEFTOVERS) == []
    tab.screenshot(path=str(ARTIFACTS / "live-rows-while-streaming.png"))
    idle(tab)


def counters(tab) -> dict[str, str]:
    return dict(tab.evaluate("""() => [...document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stMetric"]')]
        .map(m => [m.querySelector('[data-testid="stMetricLabel"]').innerText.trim(),
                   m.querySelector('[data-testid="stMetricValue"]').innerText.trim()])"""))


def test_back_during_a_new_chats_first_reply_leaves_it_and_the_reply_goes_on(server, api, tab):
    """The new chat's page becomes the conversation its first message starts: Back leaves it for what was
    open before (not for an empty new chat), the reply goes on meanwhile, and Forward finds it whole, counted."""
    tab.goto("about:blank")
    open_at(tab, server.url)
    send(tab, "an earlier chat")
    shows(tab, "echo: an earlier chat")
    idle(tab)
    earlier = conversation_of(tab)
    tab.locator('.st-key-chat_new button').first.click()  # a new chat: an entry of its own
    tab.wait_for_function("() => !location.search.includes('c=')")
    idle(tab)
    entries = tab.evaluate("() => history.length")
    api.queue(slow())
    send(tab, "a new chat's first message")
    shows(tab, "w5")
    tab.wait_for_function("() => location.search.includes('c=')")  # set at once: a reload comes back to it
    new = conversation_of(tab)
    assert new != earlier and tab.evaluate("() => history.length") == entries
    tab.go_back()
    shows(tab, "echo: an earlier chat")
    text = idle(tab)
    assert url_of(tab).endswith(f"/?c={earlier}") and "a new chat's first message" not in text
    assert stored(server, new)[-1] == ("assistant", WORDS, COMPLETE)  # it went on, and was stored whole
    tab.go_forward()
    shows(tab, "w59")
    idle(tab)
    assert url_of(tab).endswith(f"/?c={new}")
    assert counters(tab)["Input tokens"] != "0" and counters(tab)["Output tokens"] == "60"
    tab.go_back()
    shows(tab, "echo: an earlier chat")
    tab.go_back()  # before the app: the earlier chat's first message had made its new-chat page into it too
    tab.wait_for_url("about:blank")


def test_an_odd_c_is_rewritten_in_place_so_back_leaves_the_app(server, api, tab):
    open_at(tab, server.url)
    send(tab, "here")
    shows(tab, "echo: here")
    idle(tab)
    cid = conversation_of(tab)
    for given, named in [("abc", None), ("99999", None), (f"{cid}%20", cid), (f"{cid}&c=x1", None), ("", None)]:
        tab.goto("about:blank")
        text = open_at(tab, f"{server.url}/?c={given}")
        assert ("echo: here" in text) if named else ("Ask me anything" in text), given
        assert url_of(tab) == (f"{server.url}/?c={named}" if named else f"{server.url}/"), given
        tab.locator('[data-testid="stSidebarNav"] a', has_text="Tokens").click()  # the rewritten address carries on
        tab.wait_for_url(f"{server.url}/tokens" + (f"?c={named}" if named else ""))
        tab.go_back()
        tab.wait_for_url(f"{server.url}/" + (f"?c={named}" if named else ""))
        tab.go_back()
        tab.wait_for_url("about:blank")
