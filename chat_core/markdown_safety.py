"""Markdown that loads nothing by itself when it is shown.

What a model writes is data: a reply (or a title, or an export) must not make a
viewer fetch a URL it names, and must not run markup. Patterns cannot tell where
a Markdown renderer sees an image or raw HTML (code spans, fences, escapes and
references decide that), so this module asks a real CommonMark parser
(markdown-it-py) and rewrites exactly the spans it parsed:

- an image whose address is not an inline `data:` image becomes a plain link
  that names its host (`🖼 [alt (host)](url)`): one click away, never loaded;
- with `html=True` (for viewers that render raw HTML, as many Markdown viewers
  do), every raw HTML span or block gets its `<` and `&` escaped, so it shows
  as text.

Everything else is left as written, so the text renders as before. The result is
parsed again and checked; should a rewrite ever leave something live, the text
falls back to a blunt escape that is always inert.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.rules_inline import html_inline as _html_inline_rule
from markdown_it.rules_inline import image as _image_rule
from markdown_it.token import Token

__all__ = ["literal", "safe_markdown", "safe_streaming", "self_contained"]

IMAGE_ICON = "🖼"
_KEPT_IMAGE = re.compile(r"data:image/(?:png|gif|jpeg|webp);", re.IGNORECASE)  # inline bytes: no request
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)\\:\\/|www\\\.|\\@")  # "://", "www.", "@" once escaped: where literal() breaks them
_SPANS = "chat_core.markdown_safety.spans"


@dataclass
class _Span:
    source: str  # the inline text the parser read (identity tells which block it belongs to)
    start: int
    end: int
    token: Token


def _recording(rule, kind: str):
    def wrapped(state, silent: bool) -> bool:
        start = state.pos
        found = rule(state, silent)
        if found and not silent:
            state.env.setdefault(_SPANS, []).append((kind, _Span(state.src, start, state.pos, state.tokens[-1])))
        return found

    return wrapped


def _parser(html: bool) -> MarkdownIt:
    """CommonMark plus the GitHub extensions Streamlit renders (tables, strikethrough),
    with every image and raw HTML span recorded where it was parsed."""
    md = MarkdownIt("commonmark", {"html": html}).enable(["table", "strikethrough"])
    md.validateLink = lambda url: True  # see every image a lenient renderer would show
    md.inline.ruler.at("image", _recording(_image_rule, "image"))
    md.inline.ruler.at("html_inline", _recording(_html_inline_rule, "html"))
    return md


_PARSERS = {False: _parser(False), True: _parser(True)}


def safe_markdown(text: str, *, html: bool = False) -> str:
    """`text` as Markdown that renders the same but loads nothing by itself: every
    image with a remote (or any non-`data:`) address is a link naming its host.
    `html=True` is for viewers that render raw HTML: raw HTML is escaped as well
    (with `html=False` the viewer is trusted to show raw HTML as text, as
    Streamlit's `st.markdown` does)."""
    if "![" not in text and not (html and "<" in text):
        return text  # no image can start without "![", no raw HTML without "<": the common case costs nothing
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "\ufffd")  # as the parser reads it
    safe = text
    if html:
        safe = _rewrite(safe, html=True, kinds={"html"})
    safe = _rewrite(safe, html=html, kinds={"image"})
    if _live(safe, html):  # a rewrite the parser reads differently: never show it live
        safe = blunt(text, html)
    return safe


# The end of a text inside an image being written: its alt text, or its address, not closed yet.
_UNFINISHED_IMAGE = re.compile(r"!\[(?:[^\]]*|[^\]]*\]\([^)]*)\Z")
HELD_BACK = 2_000  # characters at most held back as an unfinished image


def safe_streaming(text: str) -> str:
    """`safe_markdown` for the text of a reply still streaming, for a renderer that completes unclosed
    Markdown as it streams (Streamlit's `st.write_stream` does): an image still being written at the
    end is left out until it is closed, as completing it would draw an image (of a half-written
    address, or of a placeholder) before the rewrite can see it."""
    start = text.rfind("![", max(0, len(text) - HELD_BACK))
    if start >= 0 and _UNFINISHED_IMAGE.match(text, start):
        text = text[:start]
    return safe_markdown(text)


def self_contained(text: str) -> str:
    """`text` with a code fence it leaves open closed, so that, placed before other Markdown
    (the next message of an export), it does not turn all that follows into code."""
    tokens = _PARSERS[False].parse(text)
    last = next((t for t in reversed(tokens) if t.level == 0), None)
    lines = text.rstrip("\n").split("\n")
    if last is None or last.type != "fence" or last.map[1] < len(lines):
        return text
    closing = re.compile(r" {0,3}%s{%d,}[ \t]*" % (re.escape(last.markup[0]), len(last.markup)))
    if last.map[1] - last.map[0] > 1 and closing.fullmatch(lines[-1]):
        return text
    return text.rstrip("\n") + "\n" + last.markup


def _parse(text: str, html: bool) -> tuple[list[Token], list[tuple[str, _Span]]]:
    env: dict = {}
    tokens = _PARSERS[html].parse(text, env)
    return tokens, env.get(_SPANS, [])


def _rewrite(text: str, html: bool, kinds: set[str]) -> str:
    tokens, spans = _parse(text, html)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    edits: list[tuple[int, int, str]] = []
    for token in tokens:
        if token.type == "html_block" and "html" in kinds:
            first, last = token.map
            start, end = line_starts[first], line_starts[last] if last < len(line_starts) else len(text)
            edits.append((start, end, _escape_html(text[start:end])))
    cursor = 0
    for block in (t for t in tokens if t.type == "inline"):
        cursor = max(cursor, line_starts[block.map[0]] if block.map else 0)
        # Outermost spans of this block only (an image inside an image's alt text is part of the outer one).
        for kind, span in _outermost([(k, s) for k, s in spans if s.source is block.content]):
            written = span.source[span.start:span.end]
            found = _find(text, written, cursor)
            if found is None:
                continue  # left for the check after the rewrite
            start, end = found
            cursor = end
            if kind in kinds:
                replacement = _escape_html(text[start:end]) if kind == "html" else _image_link(span.token)
                if replacement is not None:
                    edits.append((start, end, replacement))
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def _outermost(spans: list[tuple[str, _Span]]) -> list[tuple[str, _Span]]:
    spans = sorted(spans, key=lambda ks: (ks[1].start, -ks[1].end))
    kept: list[tuple[str, _Span]] = []
    for kind, span in spans:
        if not kept or span.start >= kept[-1][1].end:
            kept.append((kind, span))
    return kept


def _find(text: str, written: str, cursor: int) -> tuple[int, int] | None:
    """Where `written` (a span of a block's inline text) is in `text`: the parser strips
    each continuation line's indentation and blockquote markers, so those may differ."""
    pattern = r"\n[ \t>]*".join(re.escape(line) for line in written.split("\n"))
    match = re.compile(pattern).search(text, cursor)
    return (match.start(), match.end()) if match else None


def _escape_html(raw: str) -> str:
    return raw.replace("&", "&amp;").replace("<", "&lt;")


def _image_link(token: Token) -> str | None:
    """A remote image as a link that names its host; None keeps an inline `data:` image."""
    src = str(token.attrs.get("src", "")).strip()
    if _KEPT_IMAGE.match(src):
        return None
    alt = _plain(token.children or [])
    parts = urlsplit(src)
    if parts.scheme.lower() in ("http", "https", "") and parts.hostname:  # "" : protocol-relative
        return f"{IMAGE_ICON} [{literal(alt or 'image')} ({literal(parts.hostname)})](<{src}>)"
    if not parts.scheme and not parts.netloc and src:  # relative: this site's own address
        return f"{IMAGE_ICON} [{literal(alt or 'image')}](<{src}>)"
    shown = literal(src[:80].replace("\n", " "))
    return f"{IMAGE_ICON} {literal(alt or 'image')} (not loaded: {shown})"


def _plain(children: list[Token]) -> str:
    """An image's alt text as a renderer shows it (text only)."""
    out = []
    for child in children:
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif child.type == "image":
            out.append(_plain(child.children or []))
    return "".join(out)


def literal(text: str) -> str:
    """Markdown that shows `text` exactly as written, as plain text: ASCII punctuation is
    backslash-escaped, and what GitHub-flavoured Markdown would turn into a link by itself,
    even escaped (`http://…`, `www.…`, `a@b.c`), gets an invisible word joiner that breaks
    the pattern. For titles, personas and the like."""
    escaped = _PUNCTUATION.sub(r"\\\1", text)
    return _AUTOLINK.sub(lambda m: m[0][:-2] + WORD_JOINER + m[0][-2:], escaped)


def _live(text: str, html: bool) -> bool:
    """Whether `text` still holds a remote image, or (html) raw HTML, as the parser reads it."""
    tokens, _ = _parse(text, html)
    for token in tokens:
        if token.type == "html_block":
            return True
        for child in token.children or []:
            if child.type == "html_inline" or (child.type == "image" and _image_link(child) is not None):
                return True
    return False


def blunt(text: str, html: bool) -> str:
    """Always inert, at the cost of showing entities inside code: no `![` is left to
    start an image, and (html) no `<` to start a tag."""
    if html:
        text = _escape_html(text)
    return text.replace("![", "&#33;[")
