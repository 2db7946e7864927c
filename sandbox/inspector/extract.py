"""What the inspector's list shows of each message: its event and the title of its page.

Read from the bodies as each service would receive them; best effort, so anything unexpected
gives empty values rather than an error.
"""

from __future__ import annotations

import html
import json
import re

from .markup import unescape_markdown

_SLACK_LINK = re.compile(r"<([^<>|]*)\|([^<>]*)>")
_SUBJECT = re.compile(r"^(?:\[[^\]]*\]\s*)?(?P<label>[^:]+):\s*(?P<title>.*)$", re.DOTALL)


def _json(body: bytes):
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _result(event: str = "", title: str = "") -> dict:
    return {"event_type": str(event or "")[:200], "page_title": str(title or "")[:500]}


def summarise_webhook(body: bytes) -> dict:
    """Event type and page from a publish-hooks body; empty values for anything else."""
    payload = _json(body)
    if payload is None:
        return {}
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    page = data.get("page") if isinstance(data.get("page"), dict) else {}
    page_id = page.get("id")
    return {
        "event_type": str(payload.get("type") or "")[:200],
        "page_id": page_id if isinstance(page_id, int) else None,
        "page_title": str(page.get("title") or "")[:500],
    }


def summarise_slack(body: bytes) -> dict:
    """The header block's label, and the label of the section's first link (the title)."""
    message = _json(body)
    if message is None:
        return {}
    event = title = ""
    for block in message.get("blocks") or ():
        if not isinstance(block, dict) or not isinstance(block.get("text"), dict):
            continue
        text = str(block["text"].get("text") or "")
        if block.get("type") == "header" and not event:
            event = text
        elif block.get("type") == "section" and not title:
            link = _SLACK_LINK.search(text)
            if link:
                title = html.unescape(link.group(2).replace("¦", "|"))
    return _result(event, title)


def summarise_teams(body: bytes) -> dict:
    """The card's first TextBlock (the title) and its "Event" fact."""
    message = _json(body)
    if message is None:
        return {}
    event = title = ""
    for attachment in message.get("attachments") or ():
        card = attachment.get("content") if isinstance(attachment, dict) else None
        if not isinstance(card, dict):
            continue
        for element in card.get("body") or ():
            if not isinstance(element, dict):
                continue
            if element.get("type") == "TextBlock" and not title:
                title = unescape_markdown(str(element.get("text") or ""))
            elif element.get("type") == "FactSet" and not event:
                for fact in element.get("facts") or ():
                    if isinstance(fact, dict) and fact.get("title") == "Event":
                        event = unescape_markdown(str(fact.get("value") or ""))
        break
    return _result(event, title)


def summarise_discord(body: bytes) -> dict:
    """The first embed's title and its "Event" field."""
    message = _json(body)
    if message is None:
        return {}
    embeds = [embed for embed in message.get("embeds") or () if isinstance(embed, dict)]
    if not embeds:
        return {}
    embed = embeds[0]
    event = next(
        (
            str(field.get("value") or "")
            for field in embed.get("fields") or ()
            if isinstance(field, dict) and field.get("name") == "Event"
        ),
        "",
    )
    return _result(unescape_markdown(event), unescape_markdown(str(embed.get("title") or "")))


def summarise_email(subject: str) -> dict:
    """``[Site] Page published: Title`` read as its label and title."""
    match = _SUBJECT.match(" ".join(subject.split()))
    if not match:
        return _result("", "")
    return _result(match.group("label").strip(), match.group("title").strip())


def summarise_build(body: bytes) -> dict:
    """A coalesced build trigger: its title says how many events it covers."""
    payload = _json(body) or {}
    return _result("Build triggered", str(payload.get("title") or ""))


def summarise_revalidate(body: bytes) -> dict:
    """A coalesced revalidation: the paths it asks the frontend to refresh."""
    payload = _json(body) or {}
    paths = payload.get("paths") or []
    return _result("Revalidate", ", ".join(str(path) for path in paths))


SUMMARISERS = {
    "build": summarise_build,
    "revalidate": summarise_revalidate,
    "webhook": summarise_webhook,
    "slack": summarise_slack,
    "teams": summarise_teams,
    "discord": summarise_discord,
}
