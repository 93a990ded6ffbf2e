"""What the loopback Messages server (tests/loopback_api.py) knows of content beyond text.

- Checks image and document blocks as the API does: a base64 image of a supported type, at
  most 5 MB and 8,000 px a side; a base64 PDF of at most 100 pages; a plain-text document;
  citations on for all documents or none; a request of at most 32 MB (413 past it). A thinking
  block sent back must carry a signature this server issued, unchanged.
- Counts an image as width x height / 750 tokens, a PDF page as 1,500, a text document by words.
- Streams thinking (thinking_delta, then signature_delta) when the request asks for it, and,
  when documents with citations are attached, a cited text block (citations_delta: page_location
  for a PDF, char_location for text).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import io
import json

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
MAX_REQUEST_BYTES = 32 * 1024 * 1024
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_IMAGE_EDGE = 8000
MAX_PDF_PAGES = 100
PDF_PAGE_TOKENS = 1500
SIGNING_KEY = b"loopback"


class Invalid(ValueError):
    """The API would answer 400 invalid_request_error with this message."""


def sign(thinking: str) -> str:
    return base64.b64encode(hmac.new(SIGNING_KEY, thinking.encode(), hashlib.sha256).digest()).decode()


def _decoded(source: dict, what: str) -> bytes:
    if source.get("type") != "base64":
        raise Invalid(f"{what}: source.type must be base64 here")
    try:
        return base64.b64decode(source["data"], validate=True)
    except (binascii.Error, KeyError, TypeError):
        raise Invalid(f"{what}: source.data is not valid base64") from None


def image_size(source: dict) -> tuple[int, int]:
    media_type = source.get("media_type")
    if media_type not in IMAGE_TYPES:
        raise Invalid(f"image: media_type {media_type!r} is not one of {sorted(IMAGE_TYPES)}")
    if source.get("type") != "base64":
        raise Invalid("image: source.type must be base64 here")
    return _image_size(source.get("data"), media_type)


@functools.lru_cache(maxsize=16)  # checked, then counted: the same image once per request
def _image_size(encoded: str, media_type: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    data = _decoded({"type": "base64", "data": encoded}, "image")
    if len(data) > MAX_IMAGE_BYTES:
        raise Invalid(f"image exceeds 5 MB maximum: {len(data)} bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            actual = Image.MIME.get(image.format)
    except (UnidentifiedImageError, OSError):
        raise Invalid("Could not process image") from None
    if actual != media_type:
        raise Invalid(f"Image does not match the provided media type {media_type}")
    if max(width, height) > MAX_IMAGE_EDGE:
        raise Invalid(f"image dimensions exceed max allowed size: {MAX_IMAGE_EDGE} pixels")
    return width, height


def pdf_pages(source: dict) -> list[str]:
    """The text of each page of a base64 PDF document."""
    if source.get("media_type") != "application/pdf":
        raise Invalid("document: a base64 source must be application/pdf")
    return list(_pdf_pages(str(source.get("data")) if source.get("type") == "base64" else None))


@functools.lru_cache(maxsize=16)
def _pdf_pages(encoded: str | None) -> tuple[str, ...]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if encoded is None:
        raise Invalid("document: source.type must be base64 or text here")
    try:
        reader = PdfReader(io.BytesIO(_decoded({"type": "base64", "data": encoded}, "document")))
        pages = tuple(page.extract_text() or "" for page in reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError):
        raise Invalid("The PDF specified was not valid.") from None
    if len(pages) > MAX_PDF_PAGES:
        raise Invalid(f"A maximum of {MAX_PDF_PAGES} PDF pages may be provided.")
    return pages


def block_tokens(part: dict) -> int:
    """Tokens of an image or document block in the stand-in tokenizer (0 for other blocks)."""
    if part.get("type") == "image":
        width, height = image_size(part["source"])
        return max(1, round(width * height / 750))
    if part.get("type") == "document":
        source = part["source"]
        if source.get("type") == "text":
            return len(str(source.get("data", "")).split())
        return len(pdf_pages(source)) * PDF_PAGE_TOKENS
    if part.get("type") in ("thinking", "redacted_thinking"):
        return 0  # thinking from earlier turns is not counted as input
    return 0


def documents(body: dict) -> list[dict]:
    """The request's document blocks, in order (their index is what a citation names)."""
    return [part for message in body.get("messages", []) if isinstance(message.get("content"), list)
            for part in message["content"] if part.get("type") == "document"]


def check(body: dict) -> None:
    """Raise Invalid where the API would refuse the request's content."""
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens", 0)
        if budget < 1024 or budget >= body.get("max_tokens", 0):
            raise Invalid("thinking.budget_tokens must be >= 1024 and less than max_tokens")
    for message in body.get("messages", []):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            kind = part.get("type")
            if kind in ("image", "document"):
                if message["role"] != "user":
                    raise Invalid(f"{kind} blocks are only allowed in user messages")
                block_tokens(part)  # checks the source
                if kind == "document" and part["source"].get("type") == "text" and part["source"].get(
                        "media_type") != "text/plain":
                    raise Invalid("document: a text source must be text/plain")
            elif kind == "thinking":
                if message["role"] != "assistant":
                    raise Invalid("thinking blocks are only allowed in assistant messages")
                if not hmac.compare_digest(part.get("signature", ""), sign(part.get("thinking", ""))):
                    raise Invalid("Invalid `signature` in `thinking` block")
            elif kind == "text" and not part.get("text", "").strip():
                raise Invalid("text content blocks must be non-empty")
    cited = {bool((part.get("citations") or {}).get("enabled")) for part in documents(body)}
    if len(cited) > 1:
        raise Invalid("Citations must be enabled on all documents or on none")


def wants_thinking(body: dict) -> bool:
    return (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")


def citation_for(body: dict) -> dict | None:
    """A citation of the first document, when the request asked for citations; None otherwise."""
    docs = documents(body)
    if not docs or not (docs[0].get("citations") or {}).get("enabled"):
        return None
    doc, title = docs[0], docs[0].get("title")
    source = doc["source"]
    if source.get("type") == "text":
        text = str(source.get("data", ""))
        cited = text[:80]
        return {"type": "char_location", "cited_text": cited, "document_index": 0, "document_title": title,
                "start_char_index": 0, "end_char_index": len(cited)}
    pages = pdf_pages(source)
    page = next((i for i, text in enumerate(pages) if text.strip()), 0)
    return {"type": "page_location", "cited_text": pages[page].strip()[:80], "document_index": 0,
            "document_title": title, "start_page_number": page + 1, "end_page_number": page + 2}


WEB_RESULT = {"url": "https://example.org/figures", "title": "Figures of the year"}


def wants_search(body: dict) -> bool:
    return any(tool.get("name") == "web_search" for tool in body.get("tools") or [])


def search_blocks(query: str, first: int) -> list[tuple[str, dict]]:
    """The SSE events of one web search (a server_tool_use block, then its result block),
    numbered from content block `first`."""
    start = {"type": "server_tool_use", "id": "srvtoolu_loopback", "name": "web_search", "input": {}}
    result = {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_loopback",
              "content": [{"type": "web_search_result", "encrypted_content": "loopback", "page_age": None, **WEB_RESULT}]}
    return [
        ("content_block_start", {"type": "content_block_start", "index": first, "content_block": start}),
        ("content_block_delta", {"type": "content_block_delta", "index": first,
                                 "delta": {"type": "input_json_delta", "partial_json": json.dumps({"query": query})}}),
        ("content_block_stop", {"type": "content_block_stop", "index": first}),
        ("content_block_start", {"type": "content_block_start", "index": first + 1, "content_block": result}),
        ("content_block_stop", {"type": "content_block_stop", "index": first + 1}),
    ]


def web_citation(cited: str) -> dict:
    return {"type": "web_search_result_location", "cited_text": cited, "encrypted_index": "loopback", **WEB_RESULT}
