"""A one-click copy button: the one element that may write to the clipboard is an
`st.iframe` (its own document). Its script is one constant, so the page's
Content-Security-Policy allows exactly it by hash (dashboard/csp.py); the text goes
in as data, a JSON string in a non-executed `<script type="application/json">`, never as markup."""

from __future__ import annotations

import json

import streamlit as st

# The frame is its own document and inherits no colour: its script takes the text colour of the
# element around it (the frame shares the page's origin), as the icons beside it have. Streamlit's
# own idea of the theme (often wrong on a session's first run) is only the colour before that.
ICON_COLOR = {"light": "#31333f", "dark": "#fafafa", None: "#8b8e99"}
SIZE = 16  # pixels: as wide as the icon buttons beside it, so the copy icons of all replies line up
ICON = ('<svg width="16" height="16" viewBox="0 0 24 24" fill="currentColor" aria-hidden="true">'
        '<path d="M16 1H4a2 2 0 0 0-2 2v14h2V3h12V1zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7'
        'a2 2 0 0 0-2-2zm0 16H8V7h11v14z"/></svg>')
SCRIPT = """
const button = document.getElementById("copy"), icon = button.innerHTML;
const text = JSON.parse(document.getElementById("text").textContent);
try { button.style.color = getComputedStyle(frameElement.parentElement).color; } catch (e) { /* keep the theme's */ }
button.onclick = () => navigator.clipboard.writeText(text).then(() => {
  button.textContent = "\\u2713"; setTimeout(() => { button.innerHTML = icon; }, 1500); });
"""
MARKUP = """<style>
html, body { margin: 0; background: transparent; }
button { border: none; background: none; cursor: pointer; padding: 0; width: 16px; height: 32px;
  display: flex; align-items: center; justify-content: center; color: %(color)s; font: 16px sans-serif; }
button:hover { opacity: 0.6; }
</style>
<button id="copy" title="Copy as Markdown" aria-label="Copy as Markdown">%(icon)s</button>
<script type="application/json" id="text">%(text)s</script>
<script>%(script)s</script>"""


def copy_button(text: str) -> None:
    """One click copies `text`, as Markdown, to the clipboard."""
    data = json.dumps(text).replace("<", "\\u003c")  # no "</script>" can end the data early
    color = ICON_COLOR.get(st.context.theme.type, ICON_COLOR[None])
    st.iframe(MARKUP % {"icon": ICON, "text": data, "script": SCRIPT, "color": color}, height=32, width=SIZE)
