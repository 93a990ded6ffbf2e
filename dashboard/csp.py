"""The Content-Security-Policy sent with every response: the second wall behind
chat_core/markdown_safety.py. Whatever a reply manages to put on the page, the browser
loads images and opens connections only from the app itself (and `data:`/`blob:`),
runs only the app's own scripts, and lets no other site frame the app.

Streamlit has no setting for this: `st.App` takes Starlette middleware, and this is one.
Streamlit's `index.html` carries an inline script, allowed by its hash, computed from the
file Streamlit serves (so an upgrade that changes it keeps working; tests/test_browser_security.py
fails loudly if Streamlit ever needs more than this policy allows).
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import streamlit

from dashboard import clipboard, scroll, streamlit_adapter

HEADER = "content-security-policy"
INDEX_HTML = Path(streamlit.__file__).parent / "static" / "index.html"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def script_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def policy(index_html: str) -> str:
    ours = [clipboard.SCRIPT, scroll.SCRIPT, streamlit_adapter.REPLACE_URL_SCRIPT]
    scripts = [script_hash(s) for s in _INLINE_SCRIPT.findall(index_html)] + [script_hash(s) for s in ours]
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(scripts),
        "style-src 'self' 'unsafe-inline'",  # Streamlit styles its elements inline; loads still need img-src
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",  # also the app's own websocket
        "media-src 'self' data: blob:",
        "worker-src 'self' blob:",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ])


class ContentSecurityPolicy:
    """ASGI middleware: adds the policy to every HTTP response that does not set one."""

    def __init__(self, app, value: str | None = None):
        self.app = app
        self.value = (value or policy(INDEX_HTML.read_text(encoding="utf-8"))).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_policy(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == HEADER.encode() for name, _ in headers):
                    headers.append((HEADER.encode(), self.value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)
