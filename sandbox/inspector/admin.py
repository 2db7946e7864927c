from django.contrib import admin

from .models import ReceivedWebhook


@admin.register(ReceivedWebhook)
class ReceivedWebhookAdmin(admin.ModelAdmin):
    list_display = ["received_at", "kind", "event_type", "page_title", "webhook_id", "verified"]
    list_filter = ["kind", "verified", "event_type"]
    search_fields = ["webhook_id", "page_title", "body", "email_to", "email_subject"]
