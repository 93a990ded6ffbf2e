"""The dashboard while replies stream (issue 14), side by side with the tutorial pattern
(bench/tutorial_app.py) in the same run, against the loopback Claude API, in headless Chromium.
Prints figures; asserts nothing.

    python bench/bench_live.py [turns views idle memory crowd sql]     (all by default)

- turns: submit to first chunk at turns 1..30, and from a reply's last chunk to the page idle again
  (no Stop control, the run over, `?c=` in the URL, the counters updated), both timed in the page.
- idle: server CPU per idle tab at 0/5/10/20 tabs (each on its own conversation), and, on PostgreSQL
  (CHAT_TEST_POSTGRES_URL), the store's transactions per second per tab.
- views: how far a second view lags the first on the same server (and, on PostgreSQL, on another server).
- crowd: 16 people on one server sending 5 messages each: all served? first chunk p50.
- sql: SQL statements one exchange costs (AppTest, in process).
- memory: the server's memory over 400 runs, with and without Streamlit's full collection after each run.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_startup import Server, base_env  # noqa: E402
from chat_core.conversation import Message  # noqa: E402
from chat_core.storage import Store  # noqa: E402
from chat_core.usage import TurnRecord, Usage  # noqa: E402
from tests.conftest import empty_postgres  # noqa: E402
from tests.loopback_api import LoopbackAPI, reply  # noqa: E402
from tests.test_browser import CHROMIUM, FLAGS  # noqa: E402

APP, TUTORIAL = "streamlit_app.py", "bench/tutorial_app.py"
NAMES = {APP: "this app", TUTORIAL: "tutorial"}
POSTGRES = os.environ.get("CHAT_TEST_POSTGRES_URL")

# Installed before a submit: times, in the page, the reply's first chunk, its last, and the page idle again.
WATCH = """([before, last, app, counters]) => {
  const t0 = performance.now(); window.__t = {};
  const tick = () => {
    const t = window.__t, all = document.querySelectorAll('[data-testid="stChatMessage"]');
    const bubble = all.length >= before + 2 ? all[all.length - 1] : null;
    const md = bubble && bubble.querySelector('[data-testid="stMarkdownContainer"]');
    const text = md ? md.innerText : '';
    if (t.first === undefined && text.trim().length) t.first = performance.now() - t0;
    if (t.last === undefined && bubble && bubble.innerText.includes(last)) t.last = performance.now() - t0;
    if (t.last !== undefined && t.idle === undefined) {
      const stApp = document.querySelector('[data-testid="stApp"]');
      let idle = !!stApp && stApp.getAttribute('data-test-script-state') === 'notRunning';
      if (app) {
        const side = document.querySelector('[data-testid="stSidebar"] [data-testid="stMetric"]');
        idle = idle && !document.querySelector('.st-key-chat_stop') && location.search.includes('c=')
               && !!side && side.innerText !== counters;
      }
      if (idle) t.idle = performance.now() - t0;
    }
    if (t.idle === undefined) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def env_for(api: LoopbackAPI, folder: str, **extra) -> dict:
    return dict(base_env(), ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=api.url, CHAT_DATA_DIR=folder, **extra)


def is_idle(page, app: bool) -> bool:
    return page.evaluate("""(app) => { const s = document.querySelector('[data-testid="stApp"]');
        return !!s && s.getAttribute('data-test-script-state') === 'notRunning'
               && (!app || !document.querySelector('.st-key-chat_stop')); }""", app)


def wait_idle(page, app: bool, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    stable = 0
    while stable < 3:
        if time.time() > deadline:
            raise RuntimeError("the page never settled")
        stable = stable + 1 if is_idle(page, app) else 0
        time.sleep(0.1)


def open_page(browser, url: str):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector('[data-testid="stChatInput"] textarea')
    return page


def one_turn(page, app: bool, n: int) -> dict:
    """Send message n; the times (seconds) to its reply's first chunk, last chunk and the page idle."""
    before = page.locator('[data-testid="stChatMessage"]').count()
    if n == 1 and app:
        before = 0  # the welcome bubble is replaced
    counters = page.evaluate("""() => { const m = document.querySelector('[data-testid="stSidebar"] [data-testid="stMetric"]');
                                         return m ? m.innerText : ''; }""")
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill(f"message {n} end{n}")
    page.evaluate(WATCH, [before, f"end{n}", app, counters])
    box.press("Enter")
    page.wait_for_function("() => window.__t.idle !== undefined", timeout=120_000)
    t = page.evaluate("() => window.__t")
    wait_idle(page, app)
    return {k: v / 1000 for k, v in t.items()}


def turns(api: LoopbackAPI, browser, count: int = 30) -> None:
    print(f"\n== submit to first chunk by turn ({count} turns, echo replies), then last chunk to idle "
          "(8 more turns, each reply streaming for about a second) ==")
    results = {}
    for script in (APP, TUTORIAL):
        with tempfile.TemporaryDirectory() as folder:
            server = Server(script, env_for(api, folder)).start()
            try:
                page = open_page(browser, server.url)
                wait_idle(page, script == APP)
                results[script] = [one_turn(page, script == APP, n) for n in range(1, count + 1)]
                page.context.close()
                page, streamed = open_page(browser, server.url), []  # a new chat
                wait_idle(page, script == APP)
                for n in range(1, 9):  # replies that stream for about a second: the last chunk is live
                    api.queue(reply(" ".join(f"s{i}" for i in range(20)) + f" end{n}", delay=0.05))
                    streamed.append(one_turn(page, script == APP, n))
                results[script, "streamed"] = streamed
                page.context.close()
            finally:
                server.stop()
    for label, pick in (("turn 1", slice(0, 1)), ("turns 2-5", slice(1, 5)), ("turns 26-30", slice(25, 30))):
        row = [statistics.median(r["first"] for r in results[s][pick]) for s in (APP, TUTORIAL)]
        print(f"  first chunk, {label:<11}: this app {row[0] * 1000:6.0f} ms | tutorial {row[1] * 1000:6.0f} ms "
              f"| ratio {row[0] / row[1]:.2f}x" + ("  (goal <= 1.5x)" if "26" in label else ""))
    for script in (APP, TUTORIAL):
        gaps = [r["idle"] - r["last"] for r in results[script, "streamed"]]
        print(f"  last chunk to idle, {NAMES[script]:<8}: median {statistics.median(gaps) * 1000:5.0f} ms "
              f"(max {max(gaps) * 1000:.0f})" + ("  (goal <= 300 ms; idle = no Stop, run over, ?c= set, "
                                                 "counters updated)" if script == APP else "  (idle = run over)"))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def transactions(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count = conn.execute(sa.text("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                     "WHERE datname = current_database()")).scalar()
    engine.dispose()
    return count


def seeded(url: str, n: int) -> list[int]:
    """n conversations of one exchange each, straight into the store."""
    store = Store(url)
    ids = []
    for i in range(n):
        cid, asked = store.add_user_message(None, Message("user", f"tab {i}"), new=dict(
            system="s", window=10, backend="anthropic", model="claude-haiku-4-5"))
        store.add_reply(cid, Message("assistant", f"echo: tab {i}", reply_to=asked),
                        TurnRecord(1, Usage(10, 3), 1, "claude-haiku-4-5", "anthropic", 0.1, 0.2, "complete", 0.0))
        ids.append(cid)
    store.engine.dispose()
    return ids


def idle_cost(api: LoopbackAPI, browser, window: float = 30) -> None:
    where = "PostgreSQL" if POSTGRES else "SQLite (no CHAT_TEST_POSTGRES_URL: store traffic not counted)"
    print(f"\n== idle tabs: server CPU over {window:.0f} s, this app on {where} ==")
    for tabs in (0, 5, 10, 20):
        row = {}
        for script in (APP, TUTORIAL):
            with tempfile.TemporaryDirectory() as folder:
                extra = {}
                if script == APP and POSTGRES:
                    empty_postgres(POSTGRES)
                    extra["CHAT_DATABASE_URL"] = POSTGRES
                url = extra.get("CHAT_DATABASE_URL", f"sqlite:///{folder}/chat.db")
                server = Server(script, env_for(api, folder, **extra)).start()
                try:
                    ids = seeded(url, tabs) if script == APP else [None] * tabs
                    pages = [open_page(browser, f"{server.url}/?c={cid}" if cid else server.url) for cid in ids]
                    for page in pages:
                        wait_idle(page, script == APP)
                    time.sleep(3)
                    xacts = transactions(POSTGRES) if script == APP and POSTGRES else None
                    cpu, start = cpu_seconds(server.proc.pid), time.perf_counter()
                    time.sleep(window)
                    elapsed = time.perf_counter() - start
                    share = (cpu_seconds(server.proc.pid) - cpu) / elapsed * 100
                    queries = (transactions(POSTGRES) - xacts - 1) / elapsed if xacts is not None else None
                    row[script] = (share, queries)
                    for page in pages:
                        page.context.close()
                finally:
                    server.stop()
        ours, tutorial = row[APP], row[TUTORIAL]
        per_tab = f"{ours[0] / tabs:.2f}% a tab" if tabs else "-"
        store = f", store {ours[1]:.2f} transactions/s ({ours[1] / tabs:.3f} a tab)" if ours[1] is not None and tabs else ""
        print(f"  {tabs:>2} idle tabs: this app {ours[0]:5.1f}% of a core ({per_tab}){store} | "
              f"tutorial {tutorial[0]:5.1f}%  (goal <= 1% a tab, <= 0.1 queries/s a tab)")


# Installed in each view: when each word of the reply first shows, by the wall clock both pages share.
STAMPS = """() => { window.__seen = {}; const note = () => {
    const all = document.querySelectorAll('[data-testid="stChatMessage"]');
    const last = all.length ? all[all.length - 1].innerText : '';
    for (const w of last.match(/\\bv\\d+\\b/g) || []) if (!(w in window.__seen)) window.__seen[w] = Date.now();
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


def lag(first, second, api: LoopbackAPI, words: int = 40) -> list[float]:
    """Milliseconds the second view shows each word after the first did (first sends)."""
    for page in (first, second):
        page.evaluate(STAMPS)
    api.queue(reply(" ".join(f"v{i}" for i in range(words)), delay=0.05))
    box = first.locator('[data-testid="stChatInput"] textarea')
    box.fill("watch this")
    box.press("Enter")
    second.wait_for_function(f"() => 'v{words - 1}' in window.__seen", timeout=60_000)
    a, b = first.evaluate("() => window.__seen"), second.evaluate("() => window.__seen")
    return [b[w] - a[w] for w in a if w in b]


def opened_with_a_chat(browser, url: str):
    """A page on `url` that sent "hello" and is idle again, its conversation in the URL (`?c=`)."""
    page = open_page(browser, url)
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill("hello")
    box.press("Enter")
    page.wait_for_function("() => location.search.includes('c=')")
    wait_idle(page, True)
    return page


def views(api: LoopbackAPI, browser) -> None:
    print("\n== a second view of a live reply: how far behind the first ==")
    with tempfile.TemporaryDirectory() as folder:
        server = Server(APP, env_for(api, folder)).start()
        try:
            a = opened_with_a_chat(browser, server.url)
            b = open_page(browser, a.evaluate("() => location.href"))
            wait_idle(b, True)
            gaps = lag(a, b, api)
            print(f"  same server: median {statistics.median(gaps):4.0f} ms behind (max {max(gaps):.0f}; goal <= 150 ms)")
        finally:
            server.stop()
    if not POSTGRES:
        print("  another server: skipped (set CHAT_TEST_POSTGRES_URL)")
        return
    empty_postgres(POSTGRES)
    with tempfile.TemporaryDirectory() as folder:
        env = env_for(api, folder, CHAT_DATABASE_URL=POSTGRES)
        one, two = Server(APP, env).start(), Server(APP, env).start()
        try:
            a = opened_with_a_chat(browser, one.url)
            b = open_page(browser, two.url + "/" + a.evaluate("() => location.search"))
            wait_idle(b, True)
            gaps = lag(a, b, api)
            print(f"  another server (PostgreSQL): median {statistics.median(gaps):4.0f} ms behind "
                  f"(max {max(gaps):.0f}; goal <= 1000 ms)")
        finally:
            one.stop()
            two.stop()


async def person(browser, url: str, app: bool, messages: int, firsts: list, served: list) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(180_000)
    try:
        await page.goto(url)
        await page.wait_for_selector('[data-testid="stChatInput"] textarea')
        for n in range(1, messages + 1):
            before = 0 if n == 1 and app else await page.locator('[data-testid="stChatMessage"]').count()
            box = page.locator('[data-testid="stChatInput"] textarea')
            await box.fill(f"crowd {n} end{n}")
            await page.evaluate(WATCH, [before, f"end{n}", False, ""])
            await box.press("Enter")
            await page.wait_for_function("() => window.__t.idle !== undefined", timeout=180_000)
            firsts.append((await page.evaluate("() => window.__t.first")) / 1000)
            while not await page.evaluate("""() => { const s = document.querySelector('[data-testid="stApp"]');
                    return s.getAttribute('data-test-script-state') === 'notRunning'
                           && !document.querySelector('.st-key-chat_stop'); }"""):
                await asyncio.sleep(0.1)
            served.append(n)
    finally:
        await context.close()


async def crowd_run(url: str, app: bool, people: int, messages: int) -> tuple[list, list, float]:
    from playwright.async_api import async_playwright

    firsts, served = [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        start = time.perf_counter()
        results = await asyncio.gather(*(person(browser, url, app, messages, firsts, served) for _ in range(people)),
                                       return_exceptions=True)
        took = time.perf_counter() - start
        await browser.close()
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        print(f"    {len(failed)} people failed: {type(failed[0]).__name__}: {str(failed[0]).splitlines()[0]}")
    return firsts, served, took


def crowd(api: LoopbackAPI, people: int = 16, messages: int = 5) -> None:
    print(f"\n== {people} people on one server, {messages} messages each ==")
    for script in (APP, TUTORIAL):
        with tempfile.TemporaryDirectory() as folder:
            server = Server(script, env_for(api, folder)).start()
            try:
                firsts, served, took = asyncio.run(crowd_run(server.url, script == APP, people, messages))
            finally:
                server.stop()
        p50 = statistics.median(firsts) if firsts else float("nan")
        print(f"  {NAMES[script]:<8}: {len(served)}/{people * messages} messages served in {took:.0f} s, "
              f"first chunk p50 {p50:.2f} s, p90 {statistics.quantiles(firsts, n=10)[-1] if len(firsts) > 1 else p50:.2f} s")


def sql(api: LoopbackAPI) -> None:
    """Statements one exchange costs the page: the run that sends, the reply's job, the redraw after."""
    import sqlalchemy as sa
    from streamlit.testing.v1 import AppTest

    from tests.conftest import pin_navigation_pages

    print("\n== SQL statements per exchange (AppTest, a stored conversation on SQLite) ==")
    pin_navigation_pages()
    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(CHAT_DATA_DIR=folder, ANTHROPIC_API_KEY="bench", ANTHROPIC_BASE_URL=api.url)
        cid = seeded(f"sqlite:///{folder}/chat.db", 1)[0]
        at = AppTest.from_file(str(ROOT / APP), default_timeout=120)
        at.query_params["c"] = str(cid)
        at.run()
        from dashboard import state

        store = state.store(state.base_settings().database_url)
        seen: list[str] = []
        sa.event.listen(store.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
        counts = []
        for n in range(10):
            seen.clear()
            at.chat_input[0].set_value(f"question {n}").run()
            time.sleep(0.3)  # the job's last save, if any, lands
            counts.append(len([s for s in seen if s not in ("BEGIN", "COMMIT")]))
        print(f"  statements per exchange: median {statistics.median(counts):.0f} (min {min(counts)}, max {max(counts)}; "
              f"goal <= 10, was ~36)")


def memory(api: LoopbackAPI, browser, runs: int = 400) -> None:
    """Server memory over many runs, with Streamlit's full collection after each run (its default) and
    without it (.streamlit/config.toml): every 5th run sends a message, the others move the slider."""
    print(f"\n== server memory over {runs} runs (one tab; a message every 5th run, the slider otherwise) ==")
    for label, gc_on in (("postScriptGC on ", "true"), ("postScriptGC off", "false")):
        with tempfile.TemporaryDirectory() as folder:
            server = Server(APP, env_for(api, folder, STREAMLIT_RUNNER_POST_SCRIPT_GC=gc_on)).start()
            try:
                page = open_page(browser, server.url)
                wait_idle(page, True)
                slider = page.locator('[data-testid="stSlider"] input[type="range"]').first
                samples, start = [], time.perf_counter()
                for n in range(runs + 1):
                    if n % 50 == 0:
                        samples.append(rss_mb(server.proc.pid))
                    if n % 5 == 4:
                        box = page.locator('[data-testid="stChatInput"] textarea')
                        box.fill(f"message {n}")
                        box.press("Enter")
                    else:
                        slider.focus()
                        slider.press("ArrowLeft" if n % 2 else "ArrowRight")
                    wait_idle(page, True)
                took = time.perf_counter() - start
                page.context.close()
            finally:
                server.stop()
        print(f"  {label}: RSS every 50 runs (MB): {' '.join(f'{m:.0f}' for m in samples)}  "
              f"({took / runs * 1000:.0f} ms a run)")


def main() -> None:
    wanted = set(sys.argv[1:]) or {"turns", "idle", "views", "crowd", "sql", "memory"}
    from playwright.sync_api import sync_playwright

    api = LoopbackAPI().start()
    try:
        if "sql" in wanted:
            sql(api)
        if wanted & {"turns", "idle", "views", "memory"}:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                if "turns" in wanted:
                    turns(api, browser)
                if "views" in wanted:
                    views(api, browser)
                if "idle" in wanted:
                    idle_cost(api, browser)
                if "memory" in wanted:
                    memory(api, browser)
                browser.close()
        if "crowd" in wanted:
            crowd(api)
    finally:
        api.stop()


if __name__ == "__main__":
    main()
