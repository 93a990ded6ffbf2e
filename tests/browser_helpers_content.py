"""Browser steps for attachments: Streamlit 1.67's chat input takes files through its hidden file input."""

from __future__ import annotations

import time


def attach(page, paths) -> None:
    """Attach `paths` in the chat input and wait until each shows in it, uploaded."""
    page.locator('[data-testid="stChatInput"] input[type="file"]').set_input_files([str(p) for p in paths])
    deadline = time.time() + 20
    while time.time() < deadline:
        names, uploading = page.evaluate("""() => { const box = document.querySelector('[data-testid="stChatInput"]');
            return [box.innerText, !!box.querySelector('[data-testid="stFileChipIconSpinner"]')]; }""")
        if all(p.name in names for p in paths) and not uploading:  # a chip shows a spinner while it uploads
            return
        time.sleep(0.1)
    raise AssertionError(f"the chat input never showed {[p.name for p in paths]}")


def upload_and_send(page, paths, text: str) -> None:
    """Attach `paths`, then send `text` with them."""
    attach(page, paths)
    box = page.locator('[data-testid="stChatInput"] textarea')
    box.fill(text)
    box.press("Enter")
