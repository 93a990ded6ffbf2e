"""The chat page's view of content beyond text (chat_core.content): the files a message carries
(image thumbnails served by the app itself; a PDF or a text file as a chip with its name and size),
a reply's thinking in a collapsible panel above it, and its sources, numbered, beneath it.

What a model wrote is data: thinking goes through safe_markdown like a reply; a source's title and
passage are plain text, and a web source's address a link that loads only when clicked."""

from __future__ import annotations

import io
import time
from typing import Iterable, Iterator, Sequence

import streamlit as st

from chat_core.content import (
    ACCEPTED_SUFFIXES, IMAGE, Attachment, AttachmentRefused, Citation, CitationFound, ThinkingChunk, ToolStatus,
    fit_request, prepare,
)
from chat_core.markdown_safety import literal, safe_markdown
from chat_core.thinking import LEVELS, can_think

THUMB_PX = 160  # the long edge of an image thumbnail
FILE_TYPES = [suffix.lstrip(".") for suffix in ACCEPTED_SUFFIXES]  # st.chat_input's file_type
MAX_UPLOAD_MB = 32  # the API's limit for a whole request
THINKING_LABELS = {"off": "Off", "low": "Low", "medium": "Medium", "high": "High"}


def from_input(value) -> tuple[str | None, list]:
    """(text, uploaded files) of what st.chat_input returned (None: nothing was submitted)."""
    if value is None:
        return None, []
    if isinstance(value, str):
        return value, []
    return value.text or "", list(getattr(value, "files", None) or [])


def prepared(files: Iterable) -> tuple[list[Attachment], list[str]]:
    """The uploaded files as attachments, and one line for each refused (what and why)."""
    attachments, refused = [], []
    for upload in files:
        try:
            attachments.append(prepare(upload.name, upload.getvalue()))
        except AttachmentRefused as exc:
            refused.append(exc.message)
    kept, too_much = fit_request(attachments)
    return kept, refused + too_much


def thumbnail(data: bytes) -> bytes | None:
    """A small PNG of an image (a JPEG is decoded at a reduced scale: fast); None if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (THUMB_PX, THUMB_PX))
            image.thumbnail((THUMB_PX, THUMB_PX))
            out = io.BytesIO()
            image.convert("RGBA").save(out, "PNG")
    except (UnidentifiedImageError, OSError):
        return None
    return out.getvalue()


@st.cache_data(max_entries=512, show_spinner=False)
def _stored_thumbnail(sha256: str, _load) -> bytes | None:
    """The thumbnail of a stored image, made once per content hash (cached across reruns and sessions)."""
    data = _load(sha256)
    return None if data is None else thumbnail(data)


def show_files(attachments: Sequence[Attachment], store) -> None:
    """The files a message carries: images as thumbnails, other files as chips (name and size)."""
    if not attachments:
        return
    row = st.container(horizontal=True, gap="small", vertical_alignment="center")
    for attachment in attachments:
        thumb = None
        if attachment.kind == IMAGE:
            thumb = (thumbnail(attachment.data) if attachment.data is not None
                     else _stored_thumbnail(attachment.sha256, store.blob) if store is not None else None)
        if thumb is not None:
            row.image(thumb, width=THUMB_PX, caption=attachment.label())
        else:
            icon = ":material/picture_as_pdf:" if attachment.media_type == "application/pdf" else ":material/description:"
            row.badge(literal(attachment.label()), icon=icon, color="gray")


def thinking_panel(message) -> None:
    """A stored reply's thinking, collapsed, above it."""
    blocks = [t for t in message.thinking if t.text or t.redacted is not None]
    if not blocks:
        return
    seconds = message.thinking[0].seconds
    with st.expander(f"Thought for {seconds:.0f} s" if seconds is not None else "Thought",
                     icon=":material/psychology:"):
        for block in blocks:
            if block.text:
                st.markdown(safe_markdown(block.text))
            else:
                st.caption("Part of the thinking was encrypted by Claude's safety systems; it is kept and sent back.")


def sources(citations: Sequence[Citation]) -> None:
    """The cited passages, numbered as the reply's markers: plain text, a web address a link."""
    if not citations:
        return
    lines = []
    for citation in citations:
        passage = " ".join(citation.cited_text.split())
        where = literal(citation.where())
        if citation.url and citation.url.startswith(("https://", "http://")):
            where = f"[{where}](<{citation.url.replace('>', '%3E')}>)"
        lines.append(f"{citation.number}. {where}: “{literal(passage)}”")
    st.caption("Sources")
    st.markdown("\n".join(lines))


def claude_controls(chat, cid) -> None:
    """A Claude conversation's own settings: extended thinking, and the web tools (off by default)."""
    thinking_control(chat, f"chat_thinking_{cid}")
    key = f"chat_web_{cid}"
    st.toggle("Web search and fetch", value=chat.settings.web, key=key,
              on_change=lambda: chat.update(web=st.session_state[key]),
              help="Claude may search the web and read pages to answer. Each search costs $0.01 and sends its words "
                   "to the search provider; sources show under the reply as links that open only when clicked.")


def thinking_control(chat, key: str) -> None:
    """The conversation's extended-thinking setting (disabled, with why, for a model without it)."""
    thinks = chat.backend.name == "anthropic" and can_think(chat.backend.model)
    st.radio(
        "Thinking", LEVELS, index=LEVELS.index(chat.settings.thinking), format_func=THINKING_LABELS.get, key=key,
        horizontal=True, disabled=not thinks, on_change=lambda: chat.update(thinking=st.session_state[key]),
        help="Claude thinks before it answers; the thinking shows above the reply and counts as output tokens."
        if thinks else f"{chat.backend.model} does not think.")


class LiveReply:
    """A streaming reply's bubble: the thinking panel above ("Thinking…", then "Thought for N s",
    collapsed when the answer starts), the text in `body`, and the sources beneath as they come."""

    def __init__(self):
        self._thinking = st.empty()
        self._tool = st.empty()  # "Searching: …" while a server tool works
        self.body = st.container()
        self._sources = st.empty()
        self._status = self._box = None
        self._thought, self._started, self._open = "", 0.0, False
        self._cited: list[Citation] = []

    def text(self, events: Iterator[object]) -> Iterator[str]:
        """The text chunks of `events`, drawing the others in their places as they come."""
        for event in events:
            if isinstance(event, ThinkingChunk):
                self._think(event.text)
            elif isinstance(event, ToolStatus):
                self._done_thinking()
                self._tool.caption(f":material/travel_explore: {literal(event.text)}")
            elif isinstance(event, CitationFound):
                self._cited.append(event.citation)
                with self._sources.container():
                    sources(self._cited)
            else:
                self._done_thinking()
                yield event
        self._done_thinking()

    def _think(self, text: str) -> None:
        if self._status is None:
            self._started, self._open = time.monotonic(), True
            with self._thinking.container():
                self._status = st.status("Thinking…", expanded=True)
            self._box = self._status.empty()
        self._thought += text
        self._box.markdown(safe_markdown(self._thought))

    def _done_thinking(self) -> None:
        if self._open:
            self._open = False
            self._status.update(label=f"Thought for {time.monotonic() - self._started:.0f} s", state="complete",
                                expanded=False)
