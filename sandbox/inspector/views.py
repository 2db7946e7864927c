"""A tiny receiver for every kind of message the sandbox sends, and a page listing them.

``/inspector/hooks/`` takes the signed webhooks and verifies them. The Slack, Teams and Discord
endpoints take the chat messages and answer as those services do (Slack ``200 ok``, Teams
Workflows ``202``, Discord ``204``). Emails do not come in over HTTP: the sandbox's email backend
(:mod:`inspector.mail`) stores them directly.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from standardwebhooks import Webhook

from .extract import SUMMARISERS
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


def record(request: HttpRequest, kind: str) -> ReceivedWebhook:
    """Store the request as it arrived, with what the list shows of it."""
    body = request.body
    headers = dict(request.headers)
    fields = {}
    if kind == ReceivedWebhook.Kind.WEBHOOK:
        verified, error = verify_signature(body, headers)
        fields.update(
            verified=verified,
            verification_error=error,
            webhook_id=request.headers.get("webhook-id", "")[:200],
        )
    return ReceivedWebhook.objects.create(
        kind=kind,
        method=request.method,
        path=request.get_full_path()[:500],
        headers=headers,
        body=body.decode("utf-8", errors="replace"),
        **fields,
        **SUMMARISERS[kind](body),
    )


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    record(request, ReceivedWebhook.Kind.WEBHOOK)
    return JsonResponse({"ok": True})


@csrf_exempt
@require_POST
def slack(request: HttpRequest, rest: str) -> HttpResponse:
    """Like ``https://hooks.slack.com/services/…``: ``200`` with the body ``ok``."""
    record(request, ReceivedWebhook.Kind.SLACK)
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def teams(request: HttpRequest, rest: str) -> HttpResponse:
    """Like a Teams Workflows trigger: ``202 Accepted``, empty; the flow would run later."""
    record(request, ReceivedWebhook.Kind.TEAMS)
    return HttpResponse(status=202)


@csrf_exempt
@require_POST
def discord(request: HttpRequest, webhook_id: str, token: str) -> HttpResponse:
    """Like ``https://discord.com/api/webhooks/ID/TOKEN``: ``204``, or ``200`` with the
    message for ``?wait=true``."""
    received = record(request, ReceivedWebhook.Kind.DISCORD)
    if request.GET.get("wait", "").lower() == "true":
        return JsonResponse({"id": str(received.pk), "type": 0, "webhook_id": webhook_id})
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def build(request: HttpRequest, rest: str) -> HttpResponse:
    """Like a Netlify build hook: ``200``, empty."""
    record(request, ReceivedWebhook.Kind.BUILD)
    return HttpResponse(status=200)


@csrf_exempt
@require_POST
def revalidate(request: HttpRequest) -> HttpResponse:
    """Like a Next.js revalidation route: checks the secret, answers ``{"revalidated": true}``."""
    if request.headers.get("x-revalidate-secret") != settings.INSPECTOR_REVALIDATE_SECRET:
        return JsonResponse({"message": "Invalid secret"}, status=401)
    record(request, ReceivedWebhook.Kind.REVALIDATE)
    return JsonResponse({"revalidated": True})


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
