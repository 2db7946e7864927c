"""Chat markup turned into HTML for the inspector's previews, roughly as the services show it.

Every piece of text from a message is HTML-escaped before any tag is added around it; the only
tags produced are the fixed ones below, and links only for http(s) and mailto URLs. The
functions return ``SafeString`` because of that, never because the input is trusted.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

SAFE_SCHEMES = ("http", "https", "mailto")

_TOKEN = re.compile(r"\x00(\d+)\x00")
_BACKSLASH_ESCAPE = re.compile(r"\\([^A-Za-z0-9\s])")  # \_ too: "_" is a \w character
_MARKDOWN_LINK = re.compile(r"\[([^\[\]\n]*)\]\(([^()\s]+)\)")
_BARE_URL = re.compile(r"https?://[^\s<>\x00]+[^\s<>\x00.,;:!?)\]'\"]")
_SLACK_ANGLE = re.compile(r"<([^<>\n]*)>")
_SLACK_CODE = re.compile(r"`([^`\n]+)`")


def safe_url(url: str) -> str | None:
    """``url`` if it is an absolute http(s) or mailto URL, else ``None``."""
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in SAFE_SCHEMES else None


def link(url: str, label: str) -> SafeString:
    """An ``<a>`` to ``url`` (if safe) around ``label``, both escaped."""
    target = safe_url(url)
    if target is None:
        return escape(label)
    return format_html(
        '<a href="{}" rel="noopener noreferrer" target="_blank">{}</a>', target, label
    )


class Tokens:
    """Placeholders for already-rendered (escaped) HTML, kept out of the formatting passes."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, rendered: str) -> str:
        self.parts.append(str(rendered))
        return f"\x00{len(self.parts) - 1}\x00"

    def restore(self, text: str) -> str:
        # Tokens may nest (a link inside bold text): restore until none are left.
        for _ in range(5):
            text, count = _TOKEN.subn(lambda m: self.parts[int(m.group(1))], text)
            if not count:
                break
        return text


def _emphasis(marker: str, tag: str) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    m = re.escape(marker)
    pattern = re.compile(rf"(?<![\w{m}]){m}(?=\S)([^\n]+?)(?<=\S){m}(?![\w{m}])")
    return pattern, lambda match: f"<{tag}>{match.group(1)}</{tag}>"


_SLACK_EMPHASIS = [_emphasis("*", "strong"), _emphasis("_", "em"), _emphasis("~", "s")]
_MARKDOWN_EMPHASIS = [
    (re.compile(r"\*\*(?=\S)([^\n]+?)(?<=\S)\*\*"), lambda m: f"<strong>{m.group(1)}</strong>"),
    (re.compile(r"__(?=\S)([^\n]+?)(?<=\S)__"), lambda m: f"<strong>{m.group(1)}</strong>"),
    _emphasis("*", "em"),
    _emphasis("_", "em"),
    (re.compile(r"~~(?=\S)([^\n]+?)(?<=\S)~~"), lambda m: f"<s>{m.group(1)}</s>"),
]


def _finish(text: str, tokens: Tokens, emphasis) -> SafeString:
    """Escape what is left, apply emphasis to the escaped text, then put the tokens back."""
    text = str(escape(text))  # the emphasis markers (* _ ~) are not touched by escaping
    for pattern, replace in emphasis:
        text = pattern.sub(replace, text)
    text = text.replace("\n", "<br>")
    return mark_safe(tokens.restore(text))  # noqa: S308 -- built from escaped text only


def slack_mrkdwn(text: str) -> SafeString:
    """Slack's mrkdwn as HTML: ``*bold*``, ``_italic_``, ``~strike~``, `` `code` ``,
    ``<url|label>`` and ``<url>`` links, ``<!channel>``/``<@U…>`` shown as text, and the
    ``&amp;``/``&lt;``/``&gt;`` entities Slack uses for literal characters."""
    text = str(text).replace("\x00", "")
    tokens = Tokens()

    def angle(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        target, label = html.unescape(target), html.unescape(label)
        if target[:1] in "!@#":
            # Mentions and channels: shown, never linked.
            shown = label or {"!channel": "@channel", "!here": "@here"}.get(target, target)
            return tokens.add(format_html('<span class="mention">{}</span>', shown))
        return tokens.add(link(target, label or target))

    text = _SLACK_ANGLE.sub(angle, text)
    text = _SLACK_CODE.sub(
        lambda m: tokens.add(format_html("<code>{}</code>", html.unescape(m.group(1)))), text
    )
    # What is left is text, with Slack's three entities for literal & < >.
    return _finish(html.unescape(text), tokens, _SLACK_EMPHASIS)


def markdown(text: str) -> SafeString:
    """The Markdown subset of Teams TextBlocks and Discord messages as HTML: backslash escapes,
    ``**bold**``, ``*italic*``/``_italic_``, ``~~strike~~``, ``[label](url)`` and bare URLs."""
    text = str(text).replace("\x00", "")
    tokens = Tokens()
    text = _BACKSLASH_ESCAPE.sub(lambda m: tokens.add(escape(m.group(1))), text)

    def md_link(match: re.Match[str]) -> str:
        # Escaped characters in the label come back as text (link() escapes them again).
        label = html.unescape(tokens.restore(match.group(1)))
        return tokens.add(link(match.group(2), label))

    text = _MARKDOWN_LINK.sub(md_link, text)
    text = _BARE_URL.sub(lambda m: tokens.add(link(m.group(0), m.group(0))), text)
    return _finish(text, tokens, _MARKDOWN_EMPHASIS)


def unescape_markdown(text: str) -> str:
    """Markdown's backslash escapes removed: the plain text a reader sees."""
    return _BACKSLASH_ESCAPE.sub(r"\1", text)
