"""Scroll the message a search result opened into view: one constant script, so the page's
Content-Security-Policy allows exactly it by hash (dashboard/csp.py). No text of a message
ever goes into it."""

from __future__ import annotations

import streamlit as st

FOUND_KEY = "chat_found"  # the key of the container around the message the search found
SCRIPT = """
(() => {
  let tries = 0, steady = 0;
  const look = () => {
    const target = document.querySelector(".st-key-chat_found");
    if (target) {
      const box = target.getBoundingClientRect();
      if (box.top < 0 || box.bottom > innerHeight) {
        target.scrollIntoView({block: "center"});
        steady = 0;
      } else {
        steady++;
      }
    }
    // The page around it is drawn in steps (frames, replies, a rerun): look again until it has stayed
    // in view for 1.5 s (at most 9 s).
    if (++tries < 60 && steady < 10) setTimeout(look, 150);
  };
  look();
})();
"""


def scroll_to_found() -> None:
    """Scroll the page so the container keyed FOUND_KEY is in the middle of the view."""
    st.html(f"<script>{SCRIPT}</script>", unsafe_allow_javascript=True, width="content")
