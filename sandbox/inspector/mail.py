"""An email backend for the sandbox: every message is stored for the inspector, none is sent.

Configured as the default mailer in the sandbox's settings (``MAILERS["default"]`` on Django 6.1
and later, ``EMAIL_BACKEND`` before), so that the ``email`` destination's messages show up at
``/inspector/`` next to the webhooks and chat messages.
"""

from __future__ import annotations

from django.core.mail.backends.base import BaseEmailBackend

from .extract import summarise_email
from .models import ReceivedWebhook


def alternative_html(message) -> str:
    """The ``text/html`` alternative of a message, or ``""``."""
    for alternative in getattr(message, "alternatives", None) or ():
        content, mimetype = alternative[0], alternative[1]
        if mimetype == "text/html":
            return str(content)
    return ""


class InspectorEmailBackend(BaseEmailBackend):
    """Stores each message (recipients, subject, text and HTML bodies) as a ``ReceivedWebhook``
    of kind ``email``."""

    def send_messages(self, email_messages) -> int:
        count = 0
        for message in email_messages or ():
            recipients = message.recipients()
            if not recipients:
                continue
            headers = {
                "From": message.from_email,
                "To": ", ".join(message.to),
                "Subject": message.subject,
                **{str(name): str(value) for name, value in (message.extra_headers or {}).items()},
            }
            if message.cc:
                headers["Cc"] = ", ".join(message.cc)
            ReceivedWebhook.objects.create(
                kind=ReceivedWebhook.Kind.EMAIL,
                method="SMTP",
                path="(email)",
                headers=headers,
                body=message.message().as_string(),
                email_from=str(message.from_email or "")[:500],
                email_to=", ".join(recipients),
                email_subject=str(message.subject or ""),
                email_text=str(message.body or ""),
                email_html=alternative_html(message),
                **summarise_email(message.subject or ""),
            )
            count += 1
        return count
