"""The deliveries listings' cells, stamped once and filled per row: the same markup as Wagtail's
cell templates render for each row, for every status, for a user who may redeliver and one who
may only view, with titles that need escaping and titles withheld."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from wagtail.admin.ui.tables import BaseColumn, DateColumn

from tests.support.admin import make_delivery, rows, user_with
from wagtail_publish_hooks.admin.deliveries.cells import HumanDateColumn, StampedColumn, hole
from wagtail_publish_hooks.models import DeliveryStatus

pytestmark = pytest.mark.django_db

REPORT = "wagtail_publish_hooks:deliveries"


def table(response) -> str:
    """The listing's table, whitespace between and inside tags evened out."""
    content = response.content.decode()
    start = content.index('<table class="listing')
    found = content[start : content.index("</table>", start)]
    found = re.sub(r"\s+", " ", found)
    return re.sub(r"\s*([<>])\s*", r"\1", found)


def wagtail_rendered(monkeypatch) -> None:
    """Every cell rendered by its Wagtail template, as before stamps."""
    monkeypatch.setattr(StampedColumn, "render_cell_html", BaseColumn.render_cell_html)
    monkeypatch.setattr(HumanDateColumn, "render_cell_html", DateColumn.render_cell_html)


def every_kind_of_row(blog_page) -> None:
    now = timezone.now()
    for n, status in enumerate(DeliveryStatus.values):
        make_delivery(
            f"Page {n} <b>“quoted” & 'single'</b> !hole1! {hole(0)}",
            status=status,
            destination=f"dest-{n}",
            created_at=now - timedelta(days=n, minutes=7 * n),
            attempts=1000 * n,
        )
    make_delivery("", event_type="custom.thing", status=DeliveryStatus.FAILED)
    make_delivery(instance=blog_page, status=DeliveryStatus.PENDING)
    make_delivery("A year ago", created_at=now - timedelta(days=400))


@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_cells_match_wagtails_templates(
    who, admin_client, client, django_user_model, draft_blog_page
):
    every_kind_of_row(draft_blog_page)
    if who == "viewer":
        # May view deliveries only (no redeliver or cancel), and may not see the page's title.
        client.force_login(user_with(django_user_model, "view_delivery"))
    else:
        client = admin_client
    stamped = client.get(reverse(REPORT))
    assert stamped.status_code == 200
    with monkeypatch_context() as monkeypatch:
        wagtail_rendered(monkeypatch)
        templated = client.get(reverse(REPORT))
    assert len(rows(stamped)) == len(DeliveryStatus.values) + 3
    assert table(stamped) == table(templated)
    shown = stamped.content.decode()
    # Titles are escaped once; a title that looks like a hole is shown as it is.
    assert f"&lt;b&gt;“quoted” &amp; &#x27;single&#x27;&lt;/b&gt; !hole1! {hole(0)}" in shown
    if who == "viewer":
        assert draft_blog_page.title not in shown
        assert "/redeliver/" not in shown
    else:
        assert draft_blog_page.title in shown
        assert "/redeliver/" in shown and "/cancel/" in shown


def monkeypatch_context():
    return pytest.MonkeyPatch.context()
