"""Attaching files in a real browser (headless Chromium) against `streamlit run` and the loopback
API: a PNG and a PDF go with the message, show as a thumbnail (served by the app itself) and a
chip, and the cited answer lists its source. Screenshot in test-artifacts/."""

from __future__ import annotations

from tests.browser_helpers_content import upload_and_send
from tests.content_files import pdf, png
from tests.test_browser import ARTIFACTS, idle, last_bubble, open_app, page, served  # noqa: F401 (fixtures)


def test_a_png_and_a_pdf_are_uploaded_sent_shown_and_cited(served, api, page, tmp_path):  # noqa: F811
    (tmp_path / "chart.png").write_bytes(png(2400, 1200, (30, 120, 200)))
    (tmp_path / "report.pdf").write_bytes(pdf(2))
    open_app(page, served.url)
    upload_and_send(page, [tmp_path / "chart.png", tmp_path / "report.pdf"], "What do these show?")
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stChatMessage"]')]
        .some(m => m.innerText.includes('Sources'))""", timeout=60000)  # the reply, cited, is on the page
    text = idle(page)
    sent = api.requests[-1]["messages"][-1]["content"]
    assert [b["type"] for b in sent] == ["image", "document", "text"]
    assert "report.pdf (" in text and "2 pages" in text
    question = page.locator('[data-testid="stChatMessage"]').first
    image = question.locator("img").first
    source = image.get_attribute("src")
    assert source.startswith(("/media/", served.url + "/media/")), source  # from the app itself
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) > 0  # it loaded
    answer = last_bubble(page)
    assert "Sources" in answer and "The quarterly figure is 42 on page 1" in answer
    page.screenshot(path=str(ARTIFACTS / "content-attachments.png"), full_page=True)
