"""A tiny webhook receiver and a page listing what it received."""

import json

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from standardwebhooks import Webhook

from .models import ReceivedWebhook

LIST_LIMIT = 50


def verify_signature(body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
    """Whether the Standard Webhooks signature verifies, and the error text if it does not."""
    try:
        Webhook(settings.INSPECTOR_SECRET).verify(body.decode("utf-8"), headers, json_parse=False)
    except Exception as exc:  # any failure is a "not verified", shown on the page
        message = str(exc)
        return False, f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return True, ""


def summarise(body: bytes) -> dict:
    """Event type and page from a publish-hooks body; empty values for anything else."""
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(payload, dict):
        return {}
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    page = data.get("page") if isinstance(data.get("page"), dict) else {}
    page_id = page.get("id")
    return {
        "event_type": str(payload.get("type") or "")[:200],
        "page_id": page_id if isinstance(page_id, int) else None,
        "page_title": str(page.get("title") or "")[:500],
    }


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    body = request.body
    headers = dict(request.headers)
    verified, error = verify_signature(body, headers)
    ReceivedWebhook.objects.create(
        method=request.method,
        path=request.get_full_path()[:500],
        headers=headers,
        body=body.decode("utf-8", errors="replace"),
        verified=verified,
        verification_error=error,
        webhook_id=request.headers.get("webhook-id", "")[:200],
        **summarise(body),
    )
    return JsonResponse({"ok": True})


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    received = ReceivedWebhook.objects.order_by("-received_at", "-id")[:LIST_LIMIT]
    return render(
        request,
        "inspector/index.html",
        {
            "received": received,
            "total": ReceivedWebhook.objects.count(),
            "limit": LIST_LIMIT,
            "hook_url": request.build_absolute_uri("/inspector/hooks/"),
        },
    )
