"""Speed a user feels when arriving (issue 7), in headless Chromium. Prints figures; asserts nothing.

    python bench/bench_startup.py [--samples 9] [--rounds 3] [--only usable|first-reply]

1. Page open -> usable chat input, on a NEW browser session (a new browser context per
   sample, so no cache, cookies or Streamlit session are shared), server already warm (one
   throwaway visit first). Our `streamlit_app.py` and the tutorial pattern
   (`bench/tutorial_app.py`) are served side by side by `streamlit run` on loopback ports
   and sampled interleaved in the same run. Both talk to the loopback Messages API with a
   dummy key, so neither calls out; ours gets a temporary CHAT_DATA_DIR. A second, unscored
   figure: a returning visitor (a new tab in a browser whose cache already holds
   Streamlit's scripts), also a new Streamlit session.
   "Usable", the same for both apps: the chat input's textarea is present and enabled, and
   the script run has finished (stApp's data-test-script-state is "notRunning" and the
   status widget does not say "Running").
2. First reply on the bundled local model right after the server starts: no API key, the
   page is opened as soon as /_stcore/health answers, a message is sent as soon as the chat
   input is enabled, and submit -> first streamed chunk is timed; then a second message
   the same way. Repeated over --rounds fresh servers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.loopback_api import LoopbackAPI  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}
DUMMY_KEY = "sk-ant-bench-loopback-0123456789"

# The chat input can be typed into (present, enabled).
INPUT_READY = """() => {
    const box = document.querySelector('[data-testid="stChatInput"] textarea');
    return !!box && !box.disabled;
}"""

# Usable: the chat input can be typed into AND the script run has finished.
USABLE = """() => {
    const box = document.querySelector('[data-testid="stChatInput"] textarea');
    if (!box || box.disabled) return false;
    const app = document.querySelector('[data-testid="stApp"]');
    if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
    const status = document.querySelector('[data-testid="stStatusWidget"]');
    return !(status && status.innerText.includes('Running'));
}"""

# Milestones in page time (ms since navigation start), recorded by an init script in every
# new page: when React mounted stApp, when the websocket connected, when the chat input
# appeared, was enabled, and when the first run finished.
MILESTONES = """(() => {
    const ms = window.__bench = {};
    const mark = (name) => { if (!(name in ms)) ms[name] = performance.now(); };
    const check = () => {
        const app = document.querySelector('[data-testid="stApp"]');
        if (app) {
            mark('app');
            if (app.getAttribute('data-test-connection-state') === 'CONNECTED') mark('connected');
            if (app.getAttribute('data-test-script-state') === 'running') mark('running');
        }
        const box = document.querySelector('[data-testid="stChatInput"] textarea');
        if (box) { mark('input'); if (!box.disabled) mark('enabled'); }
        if (box && !box.disabled && app && app.getAttribute('data-test-script-state') === 'notRunning') {
            mark('usable');
            ms.elements = document.querySelectorAll('[data-testid="stElementContainer"]').length;
            ms.dom = document.getElementsByTagName('*').length;
        }
    };
    new MutationObserver(check).observe(document, {subtree: true, childList: true, attributes: true});
})()"""

# The bubble after the user's message (found by its unique marker) shows streamed text:
# Markdown that is not a caption or an alert. An alert there means the reply failed.
FIRST_CHUNK = """(marker) => {
    const all = [...document.querySelectorAll('[data-testid="stChatMessage"]')]
        .filter(el => !el.closest('[data-stale="true"]'));
    let at = -1;
    all.forEach((el, i) => { if (el.innerText.includes(marker)) at = i; });
    if (at < 0 || at + 1 >= all.length) return false;
    const bubble = all[at + 1];
    const alert = bubble.querySelector('[data-testid="stAlert"]');
    if (alert) return 'error: ' + alert.innerText;
    return [...bubble.querySelectorAll('[data-testid="stMarkdownContainer"]')].some(md =>
        !md.closest('[data-testid="stCaptionContainer"]') && md.innerText.trim().length > 0);
}"""

# The reply is over: no Stop control beside it, the run finished.
IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !document.querySelector('.st-key-chat_stop')
        && !!app && app.getAttribute('data-test-script-state') === 'notRunning';
}"""


def base_env() -> dict:
    """This environment without the developer's key, settings or database."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CHAT_"))}


def health(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


class Server:
    """`streamlit run SCRIPT` on a loopback port, with the flags the browser tests use."""

    def __init__(self, script: str, env: dict):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.script, self.env, self.proc = script, env, None
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = self.healthy = 0.0

    def start(self, poll: float = 0.02) -> "Server":
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", self.script, "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 90
        while time.time() < deadline:
            if health(self.url):
                self.healthy = time.perf_counter()
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(poll)
        self.stop()
        raise RuntimeError(f"streamlit run {self.script} did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def visit(browser, url: str, timeout: float = 60, context=None) -> dict:
    """One new browser session: page open -> usable. Returns the seconds and what the page showed.
    With `context` (a returning visitor: its HTTP cache already holds the page's scripts), a new
    tab in it; else a new context (nothing cached, a first-time visitor)."""
    own = context is None
    if own:
        context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    try:
        page.add_init_script(MILESTONES)
        received = {"bytes": 0, "frames": 0}

        def on_socket(ws):
            def frame(payload):
                received["frames"] += 1
                received["bytes"] += len(payload)

            ws.on("framereceived", frame)

        page.on("websocket", on_socket)
        start = time.perf_counter()
        page.goto(url, wait_until="commit")
        page.wait_for_function(USABLE, polling="raf", timeout=timeout * 1000)
        seconds = time.perf_counter() - start
        marks = page.evaluate("() => window.__bench || {}")
        return {"seconds": seconds, **received, **marks}
    finally:
        page.close()
        if own:
            context.close()


def usable_figures(samples: int) -> None:
    from playwright.sync_api import sync_playwright

    api = LoopbackAPI().start()
    servers = {}
    with tempfile.TemporaryDirectory() as folder:
        env = dict(base_env(), ANTHROPIC_API_KEY=DUMMY_KEY, ANTHROPIC_BASE_URL=api.url)
        try:
            servers["ours (streamlit_app.py)"] = Server("streamlit_app.py", dict(env, CHAT_DATA_DIR=folder)).start()
            servers["tutorial (bench/tutorial_app.py)"] = Server("bench/tutorial_app.py", env).start()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                returning = {}
                for name, server in servers.items():  # warm: imports, caches, the store's first open
                    visit(browser, server.url, timeout=180)
                    returning[name] = browser.new_context(viewport=VIEWPORT)
                    visit(browser, server.url, context=returning[name])
                runs = {name: [] for name in servers}
                cached = {name: [] for name in servers}
                names = list(servers)
                for i in range(samples):
                    for name in names if i % 2 == 0 else names[::-1]:
                        runs[name].append(visit(browser, servers[name].url))
                        cached[name].append(visit(browser, servers[name].url, context=returning[name]))
                browser.close()
        finally:
            for server in servers.values():
                server.stop()
            api.stop()

    def median(name: str, key: str) -> float:
        values = [r[key] for r in runs[name] if key in r]
        return statistics.median(values) if values else float("nan")

    def side_by_side(title: str, samples_of: dict, goal: str) -> None:
        print(title)
        for name in names:
            times = [r["seconds"] for r in samples_of[name]]
            print(f"  {name:<33} {statistics.median(times) * 1000:6.0f} ms  (min {min(times) * 1000:.0f}, "
                  f"max {max(times) * 1000:.0f})")
        ours, tutorial = (statistics.median(r["seconds"] for r in samples_of[name]) for name in names)
        print(f"  ratio ours/tutorial = {ours / tutorial:.2f}x{goal}")

    side_by_side(f"page open -> usable chat input, new browser session, warm server, median of {samples} (interleaved):",
                 runs, " (goal <= 1.15x)")
    print("  where the time goes (page clock, ms since navigation; medians):")
    print(f"    {'':<33} {'app':>6} {'socket':>7} {'input':>6} {'enabled':>8} {'usable':>7} "
          f"{'elements':>9} {'ws KB':>7} {'frames':>7}")
    for name in names:
        print(f"    {name:<33} {median(name, 'app'):6.0f} {median(name, 'connected'):7.0f} "
              f"{median(name, 'input'):6.0f} {median(name, 'enabled'):8.0f} {median(name, 'usable'):7.0f} "
              f"{median(name, 'elements'):9.0f} {median(name, 'bytes') / 1024:7.1f} {median(name, 'frames'):7.0f}")
    side_by_side(f"returning visitor (new tab, the browser's cache already holds the page's scripts), median of {samples}:",
                 cached, "")


def wait_first_chunk(page, marker: str, timeout: float = 120) -> None:
    handle = page.wait_for_function(FIRST_CHUNK, arg=marker, polling="raf", timeout=timeout * 1000)
    value = handle.json_value()
    if isinstance(value, str):
        raise RuntimeError(f"the reply failed: {value}")


def first_reply_round(browser, round_no: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        env = dict(base_env(), CHAT_DATA_DIR=folder, CHAT_MAX_TOKENS="32")  # no key: the local model
        server = Server("streamlit_app.py", env)
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        try:
            server.start(poll=0.01)
            page.goto(server.url, wait_until="commit")
            page.wait_for_function(INPUT_READY, polling="raf", timeout=120000)
            ready = time.perf_counter()
            figures = {"health": server.healthy - server.started, "input": ready - server.healthy}
            for n in (1, 2):
                marker = f"bench{round_no}x{n}"
                box = page.locator('[data-testid="stChatInput"] textarea')
                box.fill(f"Say hi ({marker})")
                start = time.perf_counter()
                box.press("Enter")
                wait_first_chunk(page, marker)
                figures[n] = time.perf_counter() - start
                if n == 1:
                    figures["health_to_chunk"] = time.perf_counter() - server.healthy
                page.wait_for_function(IDLE, polling=50, timeout=120000)
                page.wait_for_function(INPUT_READY, polling="raf", timeout=60000)
            return figures
        finally:
            context.close()
            server.stop()


def first_reply_figures(rounds: int) -> None:
    from playwright.sync_api import sync_playwright

    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        for i in range(rounds):
            results.append(first_reply_round(browser, i))
        browser.close()
    print(f"bundled local model, a fresh server each round ({rounds} rounds), message sent as soon as the input is enabled:")
    for i, r in enumerate(results, 1):
        print(f"  round {i}: start->health {r['health'] * 1000:5.0f} ms, health->chat input {r['input'] * 1000:5.0f} ms, "
              f"first reply: submit->first chunk {r[1] * 1000:5.0f} ms (health->first chunk "
              f"{r['health_to_chunk'] * 1000:.0f} ms), second reply: submit->first chunk {r[2] * 1000:5.0f} ms")
    first = statistics.median(r[1] for r in results)
    second = statistics.median(r[2] for r in results)
    whole = statistics.median(r["health_to_chunk"] for r in results)
    print(f"  first reply right after start: submit->first chunk median {first * 1000:6.0f} ms "
          f"(health->first chunk {whole * 1000:.0f} ms)")
    print(f"  second reply:                  submit->first chunk median {second * 1000:6.0f} ms")
    print(f"  first/second = {first / second:.2f}x (goal: first as quick as the second)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=9, help="new-session visits per app (default 9)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh servers for the first-reply figure (default 3)")
    parser.add_argument("--only", choices=("usable", "first-reply"))
    args = parser.parse_args()
    if args.only != "first-reply":
        usable_figures(args.samples)
    if args.only != "usable":
        first_reply_figures(args.rounds)


if __name__ == "__main__":
    main()
