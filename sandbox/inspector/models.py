import json

from django.db import models


class ReceivedWebhook(models.Model):
    """One message received by the inspector, kept as it arrived.

    ``kind`` says which endpoint it came in by: a signed webhook at ``/inspector/hooks/``, a
    Slack, Teams or Discord message at the endpoints that answer like those services, or an
    email handed over by the sandbox's email backend (:mod:`inspector.mail`).
    """

    class Kind(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        SLACK = "slack", "Slack"
        TEAMS = "teams", "Teams"
        DISCORD = "discord", "Discord"
        EMAIL = "email", "Email"
        BUILD = "build", "Build hook"
        REVALIDATE = "revalidate", "Revalidation"

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.WEBHOOK)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    headers = models.JSONField(default=dict)
    #: The request body; for an email, the whole message as it would go over SMTP.
    body = models.TextField(blank=True)
    verified = models.BooleanField(default=False)
    verification_error = models.TextField(blank=True)
    # Read from the headers and body, for listing and searching. For the chat kinds and email,
    # ``event_type`` holds the event's label ("Page published") as the message shows it.
    webhook_id = models.CharField(max_length=200, blank=True, db_index=True)
    event_type = models.CharField(max_length=200, blank=True)
    page_id = models.IntegerField(null=True, blank=True)
    page_title = models.CharField(max_length=500, blank=True)
    # Emails only.
    email_from = models.CharField(max_length=500, blank=True)
    email_to = models.TextField(blank=True)
    email_subject = models.TextField(blank=True)
    email_text = models.TextField(blank=True)
    email_html = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.event_type or self.method} {self.webhook_id}".strip()

    @property
    def payload(self):
        """The body parsed as JSON, or ``None`` if it is not JSON."""
        if self.kind == self.Kind.EMAIL:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def pretty_body(self) -> str:
        payload = self.payload
        if payload is None:
            return self.body
        return json.dumps(payload, indent=2, ensure_ascii=False, sort_keys=False)

    @property
    def pretty_headers(self) -> str:
        return json.dumps(self.headers, indent=2, ensure_ascii=False, sort_keys=True)

    @property
    def headline(self) -> str:
        """What the list shows as the row's title."""
        return self.page_title or self.email_subject

    @property
    def preview(self):
        """How the message would look where it is read (see :mod:`inspector.previews`)."""
        from .previews import preview

        return preview(self)
