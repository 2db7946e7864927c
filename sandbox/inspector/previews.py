"""What each received message would look like where it is read: in Slack, Teams, Discord or a
mail client. Each function returns the context of ``inspector/previews/<kind>.html``, with any
markup already turned into escaped HTML by :mod:`inspector.markup`; plain values are left to the
template, which escapes them."""

from __future__ import annotations

import json
from typing import Any

from .markup import markdown, safe_url, slack_mrkdwn


def _json(body: str) -> dict | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def slack(body: str) -> dict | None:
    message = _json(body)
    if message is None:
        return None
    blocks = []
    for block in message.get("blocks") or ():
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        text = block.get("text") if isinstance(block.get("text"), dict) else {}
        if kind == "header":
            blocks.append({"type": "header", "text": _text(text.get("text"))})
        elif kind == "section":
            content = _text(text.get("text"))
            html = slack_mrkdwn(content) if text.get("type") == "mrkdwn" else None
            blocks.append({"type": "section", "html": html, "text": content})
        elif kind == "context":
            elements = []
            for element in block.get("elements") or ():
                if not isinstance(element, dict):
                    continue
                content = _text(element.get("text"))
                html = slack_mrkdwn(content) if element.get("type") == "mrkdwn" else None
                elements.append({"html": html, "text": content})
            blocks.append({"type": "context", "elements": elements})
        elif kind == "divider":
            blocks.append({"type": "divider"})
        else:
            blocks.append({"type": "other", "name": str(kind)})
    fallback = _text(message.get("text"))
    return {
        "blocks": blocks,
        # Without blocks Slack shows the text; with them, the text is for notifications.
        "fallback": slack_mrkdwn(fallback) if fallback else None,
    }


def _teams_element(element: dict) -> dict:
    kind = element.get("type")
    if kind == "TextBlock":
        return {
            "type": "text",
            "html": markdown(_text(element.get("text"))),
            "bold": str(element.get("weight", "")).lower() == "bolder",
            "size": str(element.get("size", "default")).lower(),
            "subtle": bool(element.get("isSubtle")),
        }
    if kind == "FactSet":
        facts = [
            {"title": _text(fact.get("title")), "html": markdown(_text(fact.get("value")))}
            for fact in element.get("facts") or ()
            if isinstance(fact, dict)
        ]
        return {"type": "facts", "facts": facts}
    return {"type": "other", "name": str(kind)}


def teams(body: str) -> dict | None:
    message = _json(body)
    if message is None:
        return None
    cards = []
    for attachment in message.get("attachments") or ():
        if not isinstance(attachment, dict) or not isinstance(attachment.get("content"), dict):
            continue
        card = attachment["content"]
        elements = [_teams_element(e) for e in card.get("body") or () if isinstance(e, dict)]
        actions = []
        for action in card.get("actions") or ():
            if not isinstance(action, dict):
                continue
            url = (
                safe_url(_text(action.get("url")))
                if action.get("type") == "Action.OpenUrl"
                else None
            )
            actions.append({"title": _text(action.get("title")) or "Open", "url": url})
        cards.append(
            {
                "content_type": _text(attachment.get("contentType")),
                "version": _text(card.get("version")),
                "elements": elements,
                "actions": actions,
            }
        )
    return {"cards": cards}


def discord(body: str) -> dict | None:
    message = _json(body)
    if message is None:
        return None
    embeds = []
    for embed in message.get("embeds") or ():
        if not isinstance(embed, dict):
            continue
        colour = embed.get("color")
        title = markdown(_text(embed.get("title")))
        url = safe_url(_text(embed.get("url")))
        footer = embed.get("footer") if isinstance(embed.get("footer"), dict) else {}
        embeds.append(
            {
                # Formatted here from an int: never text from the message.
                "colour": f"#{colour:06x}"
                if isinstance(colour, int) and 0 <= colour <= 0xFFFFFF
                else "#4e5058",
                "title": title,
                "url": url,
                "description": markdown(_text(embed.get("description")))
                if embed.get("description")
                else None,
                "fields": [
                    {
                        "name": markdown(_text(field.get("name"))),
                        "value": markdown(_text(field.get("value"))),
                        "inline": bool(field.get("inline")),
                    }
                    for field in embed.get("fields") or ()
                    if isinstance(field, dict)
                ],
                "footer": _text(footer.get("text")),
                "timestamp": _text(embed.get("timestamp")),
            }
        )
    return {
        "username": _text(message.get("username")) or "Webhook",
        "content": markdown(_text(message.get("content"))) if message.get("content") else None,
        "embeds": embeds,
    }


def email(hook) -> dict:
    return {
        "from": hook.email_from,
        "to": hook.email_to,
        "subject": hook.email_subject,
        "text": hook.email_text,
        "html": hook.email_html,
    }


def preview(hook) -> dict | None:
    """``{"template": …, **context}`` for the hook's kind, or ``None`` (plain webhooks, and
    bodies that cannot be read)."""
    kind = hook.kind
    if kind == "email":
        context = email(hook)
    elif kind in ("slack", "teams", "discord"):
        context = {"slack": slack, "teams": teams, "discord": discord}[kind](hook.body)
    else:
        return None
    if context is None:
        return None
    return {"template": f"inspector/previews/{kind}.html", **context}
