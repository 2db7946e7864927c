import json

from django.db import models


class ReceivedWebhook(models.Model):
    """One request received at ``/inspector/hooks/``, kept as it arrived."""

    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    headers = models.JSONField(default=dict)
    body = models.TextField(blank=True)
    verified = models.BooleanField(default=False)
    verification_error = models.TextField(blank=True)
    # Read from the headers and body, for listing and searching.
    webhook_id = models.CharField(max_length=200, blank=True, db_index=True)
    event_type = models.CharField(max_length=200, blank=True)
    page_id = models.IntegerField(null=True, blank=True)
    page_title = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type or self.method} {self.webhook_id}".strip()

    @property
    def payload(self):
        """The body parsed as JSON, or ``None`` if it is not JSON."""
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
