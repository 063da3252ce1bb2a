"""Text from the platforms is data: one home for making it safe to keep, print and paste (issue 19).

- :func:`loads_answer`: a platform's JSON answer, decoded without ever holding a lone surrogate. JSON may
  escape one (``"\\ud800"``: a JavaScript server's ``JSON.stringify`` writes them so, ES2019 "well-formed
  JSON.stringify"), Python's ``json`` reads it back as a lone surrogate, and encoding that str later (a parquet
  column, a file, the terminal) raises. Each is read as U+FFFD, as Go's ``encoding/json`` writes invalid text.
- :func:`clean`: one value of a frame's text column. Lone surrogates, C0/C1 control characters and the bidi
  controls (U+202A–U+202E, U+2066–U+2069, which reorder what a reader sees) become U+FFFD; a message-like
  column keeps tabs and newlines. :func:`clean_column` counts the values it changed: the frame says so
  (``attrs["sanitised"]`` and its note), the evidence that the platform's text differed from what is shown.
- :func:`for_terminal`: a line for the terminal, with every control character, bidi control and line break
  shown as its escape (``\\x1b``, ``\\r``, ``\\u202e``), never obeyed: no ANSI colour, OSC-8 link, carriage
  return or reordering reaches the terminal, and no platform text starts a line of its own.
- :func:`md`: a value in Markdown (``postmortem.md``), every character Markdown or HTML would act on escaped.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SURROGATE = "\ud800-\udfff"
_C0_C1 = "\x00-\x08\x0b-\x1f\x7f-\x9f"  # \t (x09) and \n (x0a) are decided per column
#: Every character a kept value may not hold, and the same with tab and newline (message-like columns keep them).
_UNSAFE_LINE = re.compile(f"[{_SURROGATE}{_C0_C1}\t\n{BIDI_CONTROLS}]")
_UNSAFE_TEXT = re.compile(f"[{_SURROGATE}{_C0_C1}{BIDI_CONTROLS}]")
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")  # how a lone surrogate can reach JSON text
_LONE_SURROGATE = re.compile(f"[{_SURROGATE}]")


# --------------------------------------------------------------------------- answers


def loads_answer(content: bytes | str) -> Any:
    """``json.loads`` of a platform's answer, never holding a lone surrogate (read as U+FFFD), and never failing
    on bytes that are not UTF-8 (read as U+FFFD too: the rest of the answer is still the platform's word).
    ValueError when it is not JSON."""
    try:
        value = json.loads(content)
    except UnicodeDecodeError:
        if not isinstance(content, bytes):
            raise ValueError("not JSON") from None
        value = json.loads(content.decode("utf-8", errors="replace"))
        return without_lone_surrogates(value)
    raw = content if isinstance(content, bytes) else content.encode("utf-8", errors="surrogatepass")
    if _ESCAPED_SURROGATE.search(raw) is None and b"\xed" not in raw:  # \xed: CESU-encoded surrogates
        return value
    return without_lone_surrogates(value)


def without_lone_surrogates(value: Any) -> Any:
    """A decoded JSON value with every lone surrogate read as U+FFFD (for answers a library decoded)."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, list):
        return [without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {without_lone_surrogates(k): without_lone_surrogates(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------- frames


def clean(value: str, *, multiline: bool = False) -> str:
    """``value`` with lone surrogates, control characters and bidi controls replaced by U+FFFD (tabs and
    newlines kept when ``multiline``)."""
    return (_UNSAFE_TEXT if multiline else _UNSAFE_LINE).sub(REPLACEMENT, value)


def clean_column(values: list[Any], *, multiline: bool = False) -> tuple[list[Any], int]:
    """The column's cells cleaned (non-strings as they are) and how many held text that could not be kept as
    is: changed here, or already U+FFFD (a platform, or :func:`loads_answer`, replaced what it could not
    encode)."""
    pattern = _UNSAFE_TEXT if multiline else _UNSAFE_LINE
    if _nothing_to_clean(" ".join(v for v in values if isinstance(v, str)), pattern, multiline):
        return values, 0
    changed = 0
    out = values
    for i, v in enumerate(values):
        if not isinstance(v, str) or (pattern.search(v) is None and REPLACEMENT not in v):
            continue
        if out is values:
            out = list(values)
        out[i] = pattern.sub(REPLACEMENT, v)
        changed += 1
    return out, changed


_SAFE_ASCII = bytes(range(0x20, 0x7F))
_SAFE_ASCII_TEXT = _SAFE_ASCII + b"\t\n"


def _nothing_to_clean(joined: str, pattern: re.Pattern[str], multiline: bool) -> bool:
    """Whether a column's cells (joined) hold nothing :func:`clean` would change: the common case, checked in one
    pass; ASCII text (most of it: log lines, ids) by deleting its printable bytes, which is twice as fast."""
    if joined.isascii():
        return not joined.encode("ascii").translate(None, _SAFE_ASCII_TEXT if multiline else _SAFE_ASCII)
    return pattern.search(joined) is None and REPLACEMENT not in joined


def sanitised_note(counts: dict[str, int]) -> str:
    """What a frame says when some of its values were not kept as the platform sent them (count per column)."""
    if not counts:
        return ""
    where = ", ".join(f"{column} {n}" for column, n in counts.items())
    return (
        f"{sum(counts.values())} text value(s) ({where}) held characters that are not kept as sent (lone "
        "surrogates, control or bidi characters, or text the platform could not encode): shown as U+FFFD"
    )


# --------------------------------------------------------------------------- terminal


def for_terminal(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` safe to print: every control character (ANSI and OSC-8 escapes, carriage returns), bidi control
    and lone surrogate is shown as its escape, never obeyed; newlines and tabs stay only when ``keep_newlines``
    (a line vyxops wrote); platform text goes through :func:`one_line` first."""
    if text.isprintable():
        return text
    keep = "\n\t" if keep_newlines else ""
    return "".join(ch if ch.isprintable() or ch in keep else _escape(ch) for ch in text)


def one_line(text: str) -> str:
    """Platform text inside a line vyxops prints: no line break of its own (so it can never start a line that
    reads like vyxops' own), no control character."""
    return for_terminal(text, keep_newlines=False)


def _escape(ch: str) -> str:
    """How a character is shown instead of obeyed: its Python escape (``\\x1b``, ``\\r``, ``\\u202e``)."""
    return ch.encode("unicode_escape").decode("ascii")


# --------------------------------------------------------------------------- Markdown

# The characters that start Markdown markup inside a line, each backslash-escaped (CommonMark 0.31 "Backslash
# escapes": any ASCII punctuation may be): emphasis and strikethrough (* _ ~), code spans (`), links and images
# ([ ]: with the brackets escaped, neither `[text](url)` nor `![](url)` nor a reference link can form, so the
# parentheses and `!` stay as they are), table cells (|) and the backslash itself. HTML tags, autolinks
# (<http://…>) and entities are written as entities (< > &), since a backslash does not stop a tag. Line-start
# markup (#, -, +, 1.) cannot occur: a value never starts a line of postmortem.md, and its line breaks become spaces.
_MD_SPECIAL = re.compile(r"([\\`*_~\[\]|])")
_LINE_BREAKS = re.compile("[\r\n\t\v\f\x85\u2028\u2029]+")


def md(value: object) -> str:
    """A platform value inside Markdown: one line, and no link, image, emphasis, code span, HTML tag or table cell
    break of its own (shown as the text it is)."""
    text = clean(_LINE_BREAKS.sub(" ", "" if value is None else str(value)))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)
