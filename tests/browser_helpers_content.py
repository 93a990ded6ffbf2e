"""Browser steps for attachments: Streamlit 1.67's chat input takes files through its hidden file input."""

from __future__ import annotations

import time


def upload_and_send(page, paths, text: str) -> None:
    """Attach `paths` in the chat input, wait until each shows as uploaded, then send `text`."""
    page.locator('[data-testid="stChatInput"] input[type="file"]').set_input_files([str(p) for p in paths])
    deadline = time.time() + 20
    while time.time() < deadline:
        names = page.evaluate("""() => document.querySelector('[data-testid="stChatInput"]').innerText""")
        if all(p.name in names for p in paths):
            break
        time.sleep(0.2)
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill(text)
    box.press("Enter")
