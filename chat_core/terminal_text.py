"""Text made safe to print on a terminal.

Model replies, stored titles and other text that came from elsewhere may hold
escape sequences (`ESC]0;title BEL` retitles the window, `ESC[2J` clears the
screen). Dropping every C0 and C1 control character, except newline and tab,
leaves such a sequence as harmless printable text. Each character is judged on
its own, so a sequence split across streamed chunks is defused just the same.
"""

from __future__ import annotations

_KEPT = {ord("\n"), ord("\t")}
# C0 (U+0000-U+001F), DEL (U+007F) and C1 (U+0080-U+009F).
_CONTROLS = dict.fromkeys(code for code in [*range(0x20), *range(0x7F, 0xA0)] if code not in _KEPT)


def printable(text: str) -> str:
    """`text` without control characters, newline and tab aside."""
    return text.translate(_CONTROLS)
