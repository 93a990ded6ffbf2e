"""The dashboard used as a person uses it (issue 13), in headless Chromium at 1280x800, light and dark.

Screenshots go to test-artifacts/ (ux-*.png).
"""

from __future__ import annotations

import csv
import os
import re

import pytest

from chat_core import Message, TurnRecord, Usage, cost, price_for
from chat_core.conversation import ASSISTANT, USER
from chat_core.storage import Store
from tests.conftest import TEST_KEY
from tests.loopback_api import http_error
from tests.test_browser import ARTIFACTS, CHROMIUM, MAIN, App, send, url_of
from tests.test_browser import page  # noqa: F401 (a fixture, wrapped by `tab`)
from tests.test_browser import idle as settled

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium (apt-get install chromium)")

SIDEBAR = '[data-testid="stSidebar"]'


@pytest.fixture
def theme(request):
    """The server's theme: light, or what a test's `both_themes` mark asks for."""
    return getattr(request, "param", "light")


both_themes = pytest.mark.parametrize("theme", ["light", "dark"], indirect=True)


@pytest.fixture
def served(api, isolated, theme):
    env = dict(os.environ, ANTHROPIC_API_KEY=TEST_KEY, ANTHROPIC_BASE_URL=api.url)
    app = App(env, ["--theme.base", theme]).start()
    yield app
    app.stop()


@pytest.fixture
def tab(page):
    """test_browser's page at 1280x800, patient: two cores are shared with other test runs."""
    page.set_viewport_size({"width": 1280, "height": 800})
    page.context.set_default_timeout(90_000)
    return page


def idle(tab) -> str:
    return settled(tab, timeout=90)


def open_app(tab, url: str) -> str:
    tab.goto(url)
    tab.wait_for_selector('[data-testid="stChatInput"] textarea')
    return idle(tab)


def store(isolated) -> Store:
    return Store(f"sqlite:///{isolated / 'data' / 'chat.db'}")


def stored_chat(db: Store, texts: list[str], model: str = "claude-haiku-4-5") -> int:
    """A conversation whose exchanges are `texts`, each answered `echo: TEXT`, written straight to the store."""
    cid = None
    for turn, text in enumerate(texts, 1):
        new = dict(system="You are concise.", window=10, backend="anthropic", model=model)
        cid, uid = db.add_user_message(cid, Message(USER, text), new=new)
        usage = Usage(10 * turn, 3)
        record = TurnRecord(turn, usage, 2 * turn - 1, model, "anthropic", 0.1, 0.2, "complete",
                            cost(usage, price_for("anthropic", model)))
        db.add_reply(cid, Message(ASSISTANT, f"echo: {text}", reply_to=uid), record)
    return cid


def shot(tab, name: str, theme: str) -> None:
    tab.screenshot(path=str(ARTIFACTS / f"ux-{name}-{theme}.png"))


def pick_conversation(tab, cid: int) -> None:
    tab.locator(f'{SIDEBAR} [class*="st-key-chat_pick_"] [role="combobox"]').click()
    tab.get_by_role("option").filter(has_text=f"#{cid}").click()


# Each Vega chart (drawn as SVG): its x and y axis labels with their transforms, and its legend's symbols.
CHART_PARTS = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"] svg')].map(svg => {
    const labels = axis => [...axis.querySelectorAll('.role-axis-label text')].map(t => [t.textContent, t.getAttribute('transform') || '']);
    const axes = [...svg.querySelectorAll('.role-axis')].map(labels).filter(l => l.length);
    return {x: axes[0], y: axes[1], legend: [...svg.querySelectorAll('.role-legend-symbol path')].map(p => p.getAttribute('d'))};
})"""


def main_text(tab) -> str:
    return tab.inner_text(MAIN)


def test_back_and_forward_step_through_the_conversations_opened(served, api, tab, isolated, theme):
    db = store(isolated)
    one, _, three = (stored_chat(db, [f"chat {n}"]) for n in (1, 2, 3))
    tab.goto("about:blank")
    open_app(tab, f"{served.url}/?c={three}")
    assert "echo: chat 3" in main_text(tab)
    length = tab.evaluate("() => history.length")
    pick_conversation(tab, one)
    tab.wait_for_function("() => document.body.innerText.includes('echo: chat 1')")
    idle(tab)
    assert url_of(tab).endswith(f"/?c={one}")
    assert tab.evaluate("() => history.length") == length + 1  # one entry per switch
    tab.go_back()
    tab.wait_for_function("() => document.body.innerText.includes('echo: chat 3')")
    text = idle(tab)
    assert url_of(tab).endswith(f"/?c={three}") and "echo: chat 1" not in text
    tab.go_forward()
    tab.wait_for_function("() => document.body.innerText.includes('echo: chat 1')")
    idle(tab)
    assert url_of(tab).endswith(f"/?c={one}")
    tab.go_back()
    tab.wait_for_function("() => document.body.innerText.includes('echo: chat 3')")
    idle(tab)
    tab.go_back()  # before the app: the tab it was opened from
    tab.wait_for_url("about:blank")
    shot(tab, "after-back", theme)


def test_odd_urls_open_what_they_name_and_are_rewritten(served, api, tab, isolated, theme):
    db = store(isolated)
    one, two = stored_chat(db, ["first"]), stored_chat(db, ["second"])
    for query, shown in [(f"c={one}%20", one), (f"c=+{two}", two), (f"c={two}&c={one}", one)]:
        text = open_app(tab, f"{served.url}/?{query}")
        assert "not found" not in text and f"echo: {'first' if shown == one else 'second'}" in text
        assert url_of(tab).endswith(f"/?c={shown}"), query
    text = open_app(tab, f"{served.url}/?c={one}&c=x9")
    assert "Conversation x9 not found: this is a new chat." in text and "?c=" not in url_of(tab)
    shot(tab, "odd-url", theme)


@both_themes
def test_a_search_result_scrolls_to_the_match_and_closes_the_search(served, api, tab, isolated, theme):
    db = store(isolated)
    filler = [f"filler message {n} " + "words " * 40 for n in range(30)]
    long = stored_chat(db, filler[:15] + ["planning a trip to Lisbon"] + filler[15:])  # neither at the top nor the end
    stored_chat(db, ["something else"])
    open_app(tab, f"{served.url}/?c={long + 1}")
    tab.locator(f"{SIDEBAR} .st-key-chat_search_open button").first.click()
    box = tab.locator('.st-key-chat_search input')
    box.fill("lisbon")
    box.press("Enter")
    tab.locator(f".st-key-chat_hit_{long} button").click()
    tab.wait_for_selector(".st-key-chat_found")
    idle(tab)
    tab.wait_for_function("""() => { const box = document.querySelector(".st-key-chat_found").getBoundingClientRect();
                                     return box.top >= 0 && box.bottom <= innerHeight; }""", timeout=10000)
    assert tab.locator('[data-testid="stPopoverBody"]').count() == 0 or not tab.locator(
        '[data-testid="stPopoverBody"]').first.is_visible()
    found = tab.locator(".st-key-chat_found").bounding_box()
    assert 0 <= found["y"] <= 800 - found["height"], found  # in view, not ~3,000 px above it
    assert url_of(tab).endswith(f"/?c={long}")
    shot(tab, "search-found", theme)


def test_a_persona_edit_survives_escape_and_is_sent(served, api, tab, theme):
    open_app(tab, served.url)
    tab.locator(f"{SIDEBAR} [data-testid='stExpander'] summary", has_text="Persona").click()
    persona = tab.locator('[class*="st-key-chat_system_"] textarea')
    persona.fill("You answer like a pirate.")
    persona.press("Escape")
    shot(tab, "persona-escape", theme)
    send(tab, "ahoy")
    tab.wait_for_function("() => document.body.innerText.includes('echo: ahoy')")
    idle(tab)
    assert api.requests[-1]["system"] == "You answer like a pirate."


@both_themes
def test_the_401_line_names_the_control_and_each_reply_names_its_model(served, api, tab, theme):
    open_app(tab, served.url)
    send(tab, "first")
    tab.wait_for_function("() => document.body.innerText.includes('echo: first')")
    idle(tab)
    api.queue(http_error(401, "authentication_error"))
    send(tab, "second")
    tab.wait_for_selector('[data-testid="stAlertContentError"]')
    text = idle(tab)
    error = tab.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "--backend" not in error and "in the sidebar and pick “Local model (offline)”" in error
    assert "anthropic · claude-haiku-4-5" in error and "anthropic · claude-haiku-4-5" in tab.inner_text(SIDEBAR)
    # the question that got no reply is not blamed on the window
    assert "it has no reply to go with it" in text and "outside the window" not in text
    labels = tab.locator('[data-testid="stChatMessage"] [data-testid="stCaptionContainer"]', has_text="claude-haiku-4-5")
    assert labels.count() == 2  # beside the reply, and beside the failed one
    shot(tab, "error-and-model", theme)


def test_the_claude_model_survives_a_trip_to_the_local_model(served, api, tab, theme):
    open_app(tab, served.url)
    tab.locator(f"{SIDEBAR} [data-testid='stPopover'] button", has_text="anthropic · claude-haiku-4-5").click()
    tab.locator('[class*="st-key-chat_model_"] [role="combobox"]').click()
    tab.get_by_role("option", name="claude-sonnet-4-6").click()
    tab.wait_for_function("() => document.body.innerText.includes('anthropic · claude-sonnet-4-6')")
    idle(tab)
    tab.get_by_text("Local model (offline)").click()
    tab.wait_for_function("() => document.body.innerText.includes('local · ')")
    idle(tab)
    tab.get_by_text("Claude", exact=True).click()
    tab.wait_for_function("() => document.body.innerText.includes('anthropic · claude-sonnet-4-6')")
    idle(tab)
    shot(tab, "model-back", theme)


@both_themes
def test_the_token_page_reads_at_a_glance(served, api, tab, isolated, theme):
    cid = stored_chat(store(isolated), ["one", "two", "three"])
    tab.goto(f"{served.url}/tokens?c={cid}")  # the first page of a new server: no pages/-folder mode (the adapter)
    tab.wait_for_selector('[data-testid="stVegaLiteChart"]')
    idle(tab)
    assert tab.locator('[data-testid="stException"]').count() == 0 and "Tokens per turn" in main_text(tab)
    tab.wait_for_timeout(800)  # the charts draw
    charts = tab.evaluate(CHART_PARTS)
    assert len(charts) == 4  # input, output, running cost, time to first token
    for chart in charts:
        assert all("rotate" not in where for _, where in chart["x"]), chart["x"]  # turn numbers upright
        assert len(chart["y"]) >= 3, chart["y"]  # a scale one can read (the output chart was squashed to "0")
    # The running cost's legend shows each line as a stroke, as drawn (not a point's circle or square).
    assert charts[2]["legend"] and all(re.fullmatch(r"M-?[\d.]+,0L[\d.]+,0", d) for d in charts[2]["legend"]), charts[2]
    for part, name in [('[data-testid="stVegaLiteChart"] >> nth=1', "output"),
                       ('[data-testid="stVegaLiteChart"] >> nth=2', "cost"), ('[data-testid="stDataFrame"]', "table")]:
        tab.locator(part).scroll_into_view_if_needed()
        tab.wait_for_timeout(800)  # the chart draws
        shot(tab, f"tokens-{name}", theme)
    with tab.expect_download() as download:
        tab.locator(".st-key-tokens_csv button").click()
    with open(download.value.path(), encoding="utf-8") as file:
        rows = list(csv.reader(file))
    assert rows[0][:3] == ["Turn", "Model", "Input, uncached"] and "Input read from cache" in rows[0]
    assert all("_" not in name for name in rows[0])
    costs = [row[rows[0].index("Cost (USD)")] for row in rows[1:]]
    assert len(costs) == 3 and all(len(cost.split(".")[-1]) <= 6 for cost in costs), costs


@both_themes
def test_the_reply_actions_line_up_in_the_themes_colours(served, api, tab, isolated, theme):
    """The last reply's copy button (a frame of its own, which inherits no colour) is drawn in the
    colour of the icons beside it, and in the same place as an earlier reply's copy button."""
    cid = stored_chat(store(isolated), ["first question", "second question"])
    open_app(tab, f"{served.url}/?c={cid}")  # a first load: Streamlit may not know the theme yet
    tab.wait_for_timeout(500)
    earlier = tab.locator('[class*="st-key-chat_copy_"] [data-testid="stIconMaterial"]').first
    regenerate = tab.locator('.st-key-chat_regenerate [data-testid="stIconMaterial"]').first
    frame = tab.locator('[data-testid="stChatMessage"] iframe').last
    copy = frame.content_frame.locator("svg")
    colour = lambda icon: icon.evaluate("e => getComputedStyle(e).color")  # noqa: E731
    assert colour(copy) == colour(regenerate) == colour(earlier)
    boxes = {name: icon.bounding_box() for name, icon in [("earlier", earlier), ("copy", copy), ("regenerate", regenerate)]}
    assert boxes["copy"]["x"] == boxes["earlier"]["x"], boxes  # one column of copy icons
    assert abs((boxes["copy"]["y"] + boxes["copy"]["height"] / 2) - (boxes["regenerate"]["y"] + boxes["regenerate"]["height"] / 2)) < 1, boxes
    assert boxes["copy"]["width"] == boxes["regenerate"]["width"], boxes
    gap = boxes["regenerate"]["x"] - boxes["copy"]["x"] - boxes["copy"]["width"]
    assert gap <= 16, boxes  # a tight row
    last = tab.locator('[data-testid="stChatMessage"]').last.bounding_box()
    tab.screenshot(path=str(ARTIFACTS / f"ux-reply-actions-{theme}.png"),
                   clip={"x": last["x"], "y": last["y"], "width": last["width"], "height": last["height"]})


def test_a_clean_start_on_the_local_model_logs_no_warning(isolated, tab):
    """Item 23 without a key: the bundled model answers a first tab and a second one, a page switch
    comes between; the server's whole log holds no warning (a Streamlit cache called from the reply's
    own thread printed "missing ScriptRunContext" at the first local reply)."""
    app = App(dict(os.environ, CHAT_MAX_TOKENS="24")).start()  # `isolated`: no key, so the local model
    try:
        open_app(tab, app.url)
        send(tab, "Say hello.")
        tab.wait_for_function("() => document.body.innerText.includes('(local)')")  # the reply names its model
        idle(tab)
        other = tab.context.browser.new_page(viewport={"width": 1280, "height": 800})  # a second session
        other.set_default_timeout(90_000)
        open_app(other, url_of(tab))
        send(other, "Say goodbye.")
        other.wait_for_function("() => document.body.innerText.includes('Say goodbye.')")
        other.wait_for_function("() => document.querySelectorAll('[data-testid=\"stChatMessage\"]').length == 4")
        idle(other)
        other.close()
        tab.locator('[data-testid="stSidebarNav"] a', has_text="Tokens").click()
        tab.wait_for_selector('[data-testid="stVegaLiteChart"]')
        idle(tab)
        tab.locator('[data-testid="stSidebarNav"] a', has_text="Chat").click()
        tab.wait_for_selector('[data-testid="stChatInput"] textarea')
        text = idle(tab)
        assert "Say goodbye." in text and text.count("(local)") == 2  # both replies, each beside its model
    finally:
        app.stop()
    log = app.log.read_text()
    assert "You can now view your Streamlit app" in log
    assert not re.search(r"WARNING|ERROR|missing ScriptRunContext|does not exist anymore|Traceback", log), log


def test_a_bad_setting_is_one_line_on_the_page_not_a_failed_start(isolated, tab):
    """Item 23: a setting the app cannot use stopped the server at its start with a traceback
    ("Application startup failed"); the server starts, and the page says what to fix in one line."""
    app = App(dict(os.environ, CHAT_WINDOW="many")).start()  # `isolated`: no key, so the model would preload
    try:
        tab.goto(app.url)
        tab.wait_for_selector('[data-testid="stAlertContentError"]')
        text = idle(tab)
        assert "CHAT_WINDOW='many' is not a whole number: fix or unset it." in text
        assert tab.locator('[data-testid="stException"]').count() == 0
    finally:
        app.stop()
    log = app.log.read_text()
    assert not re.search(r"WARNING|ERROR|Traceback|startup failed", log), log
