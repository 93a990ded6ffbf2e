"""What a message carries besides its text: attachments, and for a reply its thinking and citations.

Plain values and pure functions; no provider and no UI. `prepare` turns a file a person gave
(a name and its bytes) into an `Attachment` the API will take, or refuses it with one line
(`AttachmentRefused`) saying what and why: the API's limits are enforced here, before anything
is sent. `api_content` makes a message's content blocks in the shape of the SDK's own params
(`ImageBlockParam`, `DocumentBlockParam`, `ThinkingBlockParam`, `TextBlockParam`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Callable, Iterable

from .errors import ChatError
from .window import estimate_tokens

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
PDF = "application/pdf"
TEXT = "text/plain"
IMAGE, DOCUMENT, TEXT_FILE = "image", "pdf", "text"

# The Messages API's limits (platform.claude.com: vision, PDF support, request size).
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # a whole request
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # one image, as sent
MAX_IMAGE_EDGE = 8000  # pixels, either side
MAX_PDF_PAGES = 100
LONG_EDGE = 1568  # a longer image is scaled down by the API anyway: do it here, and send less
IMAGE_TOKEN_PIXELS = 750  # an image costs about width x height / 750 tokens
PDF_PAGE_TOKENS = 1500  # a PDF page, text and image, costs about this many tokens (an estimate)
MAX_TEXT_BYTES = 2 * 1024 * 1024  # a text file: anything longer would not fit a context window
TEXT_SUFFIXES = {
    ".txt", ".md", ".markdown", ".csv", ".tsv", ".json", ".jsonl", ".yaml", ".yml", ".toml", ".ini", ".cfg",
    ".xml", ".html", ".htm", ".css", ".log", ".rst", ".tex", ".sql", ".sh", ".bash", ".zsh", ".ps1", ".bat",
    ".py", ".pyi", ".ipynb", ".js", ".mjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".scala", ".go", ".rs", ".c",
    ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".pl", ".lua", ".r", ".swift", ".m", ".dart", ".hs",
    ".ex", ".exs", ".erl", ".clj", ".vue", ".svelte", ".dockerfile", ".makefile", ".gitignore", ".env.example",
}
# What the page's uploader offers (st.chat_input's file_type): images, PDFs and text files.
ACCEPTED_SUFFIXES = sorted({".png", ".jpg", ".jpeg", ".gif", ".webp", ".pdf"} | TEXT_SUFFIXES)
_MAGIC = [(b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"), (b"%PDF-", PDF)]


class AttachmentRefused(ChatError):
    """A file that cannot go to the model, with why (one line); the message and other files stay."""


@dataclass
class Attachment:
    """One file a message carries. Its bytes live in the store once per content hash (`sha256`);
    `data` holds them while they are in hand, and is None in a message loaded from the store until
    a request needs them."""

    name: str
    media_type: str
    size: int  # bytes, as sent (after any downscaling)
    sha256: str
    width: int | None = None  # images
    height: int | None = None
    pages: int | None = None  # PDFs
    tokens: int = 0  # what it adds to a request, estimated (images: width x height / 750)
    data: bytes | None = field(default=None, repr=False)
    note: str | None = None  # what was done to it on the way in ("scaled down from 4000x3000")

    @property
    def kind(self) -> str:
        return IMAGE if self.media_type in IMAGE_TYPES else DOCUMENT if self.media_type == PDF else TEXT_FILE

    @property
    def text(self) -> str:
        """A text file's text (its bytes must be in hand)."""
        return (self.data or b"").decode("utf-8", errors="replace")

    def label(self) -> str:
        """How a file reads to a person: its name, size and what it is."""
        extra = (f", {self.width}×{self.height}" if self.kind == IMAGE and self.width
                 else f", {self.pages} page{'s' * (self.pages != 1)}" if self.pages else "")
        return f"{self.name} ({human_size(self.size)}{extra})"


@dataclass
class Thinking:
    """One thinking block of a reply, kept exactly as Claude sent it (the signature proves it
    unchanged when it goes back); a redacted block keeps only its opaque `redacted` data."""

    text: str = ""
    signature: str = ""
    redacted: str | None = None
    seconds: float | None = None  # how long the reply thought before its first text (its first block)

    def as_param(self) -> dict:
        if self.redacted is not None:
            return {"type": "redacted_thinking", "data": self.redacted}
        return {"type": "thinking", "thinking": self.text, "signature": self.signature}


@dataclass
class Citation:
    """A passage of an attached document that a reply's text cites, numbered in the order cited."""

    number: int
    cited_text: str
    document_index: int
    document_title: str | None = None
    start_page: int | None = None  # PDFs: pages, 1-based, end inclusive
    end_page: int | None = None
    url: str | None = None  # a web source: data, shown as a link, never loaded

    def where(self) -> str:
        title = self.document_title or f"document {self.document_index + 1}"
        if self.start_page is None:
            return title
        pages = (f"p. {self.start_page}" if self.end_page in (None, self.start_page, self.start_page + 1)
                 else f"pp. {self.start_page}–{self.end_page - 1}")
        return f"{title}, {pages}"


# Events a reply's stream carries besides its text chunks (str): see Backend.stream.
@dataclass(frozen=True)
class ThinkingChunk:
    text: str


@dataclass(frozen=True)
class CitationFound:
    citation: Citation


@dataclass(frozen=True)
class ToolStatus:
    """A server tool at work ("Searching: …", "Fetching: …"): a status line, not part of the reply."""

    text: str


def human_size(size: int) -> str:
    for unit, scale in (("MB", 1024 * 1024), ("KB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sniff(name: str, data: bytes) -> str | None:
    """The media type of a file by its first bytes (and, for text, its name); None when unsupported."""
    for magic, media_type in _MAGIC:
        if data.startswith(magic):
            return media_type
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    path = PurePath(name.lower())
    if path.suffix in TEXT_SUFFIXES or path.name in ("makefile", "dockerfile", "readme", "license"):
        return TEXT
    return None


def prepare(name: str, data: bytes) -> Attachment:
    """The file `name` with these bytes as an attachment the API takes, or AttachmentRefused (one line).
    A large image is scaled down (long edge at most 1,568 px); a PDF's pages are counted."""
    name = PurePath(name.replace("\\", "/")).name or "file"
    media_type = sniff(name, data)
    if not data:
        raise AttachmentRefused(f"{name} was not attached: the file is empty.")
    if media_type is None:
        raise AttachmentRefused(f"{name} was not attached: only images (PNG, JPEG, GIF, WebP), PDFs and "
                                "plain-text files can be sent.")
    if media_type in IMAGE_TYPES:
        return _image(name, media_type, data)
    if media_type == PDF:
        return _pdf(name, data)
    if len(data) > MAX_TEXT_BYTES:
        raise AttachmentRefused(f"{name} was not attached: {human_size(len(data))} of text is over the "
                                f"{human_size(MAX_TEXT_BYTES)} a text file may have.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise AttachmentRefused(f"{name} was not attached: it is not UTF-8 text.") from None
    if "\x00" in text:
        raise AttachmentRefused(f"{name} was not attached: it holds binary data, not text.")
    return Attachment(name, TEXT, len(data), digest(data), tokens=estimate_tokens(text), data=data)


def _image(name: str, media_type: str, data: bytes) -> Attachment:
    from PIL import Image, UnidentifiedImageError  # imported lazily: only attaching needs Pillow

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if max(width, height) <= LONG_EDGE:  # sent as it is: read it through (a damaged one fails here),
                image.draft(image.mode, (width // 8, height // 8))  # a JPEG at an eighth of its size: quick
            image.load()
            note = None
            if max(width, height) > LONG_EDGE:
                scale = LONG_EDGE / max(width, height)
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                animated = getattr(image, "is_animated", False)
                if animated or media_type == "image/gif":  # a GIF's first frame, as the API reads it
                    image.seek(0)
                smaller = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB").resize(size)
                out = io.BytesIO()
                if smaller.mode == "RGBA" or media_type == "image/png":
                    smaller.save(out, "PNG", optimize=True)
                    media_type = "image/png"
                else:
                    smaller.save(out, "JPEG", quality=88)
                    media_type = "image/jpeg"
                note = f"scaled down from {width}×{height}"
                data, (width, height) = out.getvalue(), size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise AttachmentRefused(f"{name} was not attached: the image is damaged or not really an image.") from None
    if max(width, height) > MAX_IMAGE_EDGE or len(data) > MAX_IMAGE_BYTES:
        raise AttachmentRefused(f"{name} was not attached: an image may have at most {MAX_IMAGE_EDGE:,} pixels a side "
                                f"and {human_size(MAX_IMAGE_BYTES)}.")
    return Attachment(name, media_type, len(data), digest(data), width, height,
                      tokens=image_tokens(width, height), data=data, note=note)


def image_tokens(width: int, height: int) -> int:
    return max(1, round(width * height / IMAGE_TOKEN_PIXELS))


def _pdf(name: str, data: bytes) -> Attachment:
    from pypdf import PdfReader  # imported lazily: only attaching a PDF needs it
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file is said in one line, not logged too

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise AttachmentRefused(f"{name} was not attached: the PDF is password-protected.")
        pages = len(reader.pages)
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise AttachmentRefused(f"{name} was not attached: the PDF is damaged and cannot be read.") from None
    if pages > MAX_PDF_PAGES:
        raise AttachmentRefused(f"{name} was not attached: it has {pages} pages; Claude reads PDFs of at most "
                                f"{MAX_PDF_PAGES}.")
    if pages == 0:
        raise AttachmentRefused(f"{name} was not attached: the PDF has no pages.")
    return Attachment(name, PDF, len(data), digest(data), pages=pages, tokens=pages * PDF_PAGE_TOKENS, data=data)


def request_bytes(attachments: Iterable[Attachment]) -> int:
    """What the attachments add to a request on the wire (base64 for binary files)."""
    return sum(a.size if a.kind == TEXT_FILE else 4 * -(-a.size // 3) for a in attachments)


def fit_request(attachments: list[Attachment], already: int = 0) -> tuple[list[Attachment], list[str]]:
    """The attachments that keep a request under MAX_REQUEST_BYTES (with `already` bytes of other
    attachments in it), and one line for each left out."""
    kept, refused, total = [], [], already
    for attachment in attachments:
        size = request_bytes([attachment])
        if total + size > MAX_REQUEST_BYTES - 1024 * 1024:  # room for the text and the history
            refused.append(f"{attachment.name} was not attached: with it the request would pass the API's "
                           f"{human_size(MAX_REQUEST_BYTES)} limit.")
            continue
        kept.append(attachment)
        total += size
    return kept, refused


def api_content(role: str, text: str, attachments: Iterable[Attachment] = (), thinking: Iterable[Thinking] = (),
                citations: bool = False) -> str | list[dict]:
    """A message's content for the Messages API: a plain string when it is text alone, else blocks:
    thinking first (a reply's, exactly as it came), then attachments (images before the text they
    go with, as the API advises), then the text. `citations` asks for citations on documents."""
    # A thinking block goes back only as the API signed it (one cut short by a stop has no signature).
    attachments, thinking = list(attachments), [t for t in thinking if t.redacted is not None or t.signature]
    if not attachments and not thinking:
        return text
    blocks: list[dict] = [block.as_param() for block in thinking]
    for attachment in attachments:
        blocks.append(_attachment_block(attachment, citations))
    if text.strip():
        blocks.append({"type": "text", "text": text})
    return blocks


def _attachment_block(attachment: Attachment, citations: bool) -> dict:
    if attachment.data is None:
        raise ValueError(f"the bytes of {attachment.name} were not loaded")
    if attachment.kind == IMAGE:
        return {"type": "image", "source": {"type": "base64", "media_type": attachment.media_type,
                                            "data": base64.b64encode(attachment.data).decode("ascii")}}
    if attachment.kind == DOCUMENT:
        source = {"type": "base64", "media_type": PDF, "data": base64.b64encode(attachment.data).decode("ascii")}
    else:
        source = {"type": "text", "media_type": TEXT, "data": attachment.text}
    block = {"type": "document", "source": source, "title": attachment.name}
    if citations:
        block["citations"] = {"enabled": True}
    return block


def local_text(text: str, attachments: Iterable[Attachment]) -> str:
    """A message for a model that reads text only: each text file's text, and for an image or a PDF
    one line saying it cannot be read here."""
    parts = []
    for attachment in attachments:
        if attachment.kind == TEXT_FILE:
            parts.append(f"[File {attachment.name}]\n{attachment.text}\n[End of {attachment.name}]"
                         if attachment.data is not None else f"[{attachment.name}: its text is not at hand.]")
        else:
            what = "an image" if attachment.kind == IMAGE else "a PDF"
            parts.append(f"[{attachment.name} is {what}, which this model cannot read.]")
    return "\n\n".join(parts + ([text] if text.strip() else []))


def search_text(attachment: Attachment) -> str:
    """What search finds a file by: its name, and a text file's words."""
    words = re.sub(r"[._-]+", " ", PurePath(attachment.name).stem)
    body = attachment.text[:100_000] if attachment.kind == TEXT_FILE and attachment.data is not None else ""
    return f"{attachment.name} {words}\n{body}"


def load_all(messages, load: Callable[[str], bytes | None]) -> None:
    """Fill in the bytes of every attachment of `messages` that lacks them, by content hash."""
    for message in messages:
        for attachment in message.attachments:
            if attachment.data is None:
                attachment.data = load(attachment.sha256)
