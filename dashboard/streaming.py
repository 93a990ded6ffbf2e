"""Streaming a reply into the page, made safe at every step.

`st.write_stream` renders the raw concatenation of the chunks, so a remote image in a
reply would load while it streams, before the finished reply is drawn again through
chat_core.markdown_safety. This does what `st.write_stream` does for text (one
placeholder, redrawn with the whole text so far, unclosed Markdown such as `**bold`
completed while streaming) but shows `safe(text)` instead of `text`.

The completion of unclosed Markdown is not public in Streamlit 1.67: `st.write_stream`
calls `DeltaGenerator._markdown(..., unterminated_parsing=True)`. This module is the one
place that relies on it; tests/test_browser_security.py checks it still exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import streamlit as st


def stream_markdown(chunks: Iterable[str], safe: Callable[[str], str]) -> str:
    """Show the text of `chunks` as it grows, each state passed through `safe`; return the text."""
    box, text = None, ""
    for chunk in chunks:
        if not chunk:
            continue
        text += chunk
        if box is None:
            box = st.empty()
        box._markdown(safe(text), unterminated_parsing=True)  # noqa: SLF001 (see the module's note)
    return text
