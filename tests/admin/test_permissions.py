"""Who sees the deliveries screens and who may act: view_delivery and redeliver_delivery."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.support.admin import admin_url, make_delivery, user_with
from wagtail_publish_hooks.models import Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)


def viewing_urls(delivery: Delivery, page_id: int) -> list[str]:
    return [
        admin_url("deliveries"),
        admin_url("deliveries_results"),
        admin_url("delivery", delivery.pk),
        admin_url("page_deliveries", page_id),
        admin_url("page_deliveries_results", page_id),
    ]


def acting_urls(delivery: Delivery) -> list[str]:
    return [
        admin_url("redeliver", delivery.pk),
        admin_url("cancel", delivery.pk),
        admin_url("redeliver_failed"),
        admin_url("cancel_pending"),
    ]


def settings_menu(client) -> str:
    return client.get(reverse("wagtailadmin_home")).content.decode()


def test_without_view_delivery_no_menu_and_403(client, django_user_model, site_root):
    client.force_login(user_with(django_user_model))
    delivery = make_delivery(status=DeliveryStatus.FAILED)
    home = settings_menu(client)
    assert "publish-hooks-deliveries" not in home
    assert '"publish-hooks"' not in home
    for url in viewing_urls(delivery, site_root.pk) + acting_urls(delivery):
        assert client.get(url).status_code == 403, url
    for url in acting_urls(delivery):
        assert client.post(url).status_code == 403, url
    assert Delivery.objects.get().status == DeliveryStatus.FAILED


def test_a_missing_object_is_403_not_404_without_permission(client, django_user_model):
    client.force_login(user_with(django_user_model))
    assert client.get(admin_url("delivery", 999)).status_code == 403
    assert client.get(admin_url("page_deliveries", 999)).status_code == 403


def grant_page_permission(user, page, codename: str = "change_page") -> None:
    from django.contrib.auth.models import Permission
    from wagtail.models import GroupPagePermission

    GroupPagePermission.objects.create(
        group=user.groups.get(),
        page=page,
        permission=Permission.objects.get(content_type__app_label="wagtailcore", codename=codename),
    )


def test_view_delivery_sees_but_cannot_act(client, django_user_model, site_root):
    user = user_with(django_user_model, "view_delivery")
    client.force_login(user)
    delivery = make_delivery(status=DeliveryStatus.FAILED)
    # A page's deliveries need access to the page too.
    assert client.get(admin_url("page_deliveries", site_root.pk)).status_code == 403
    grant_page_permission(user, site_root)
    home = settings_menu(client)
    assert "publish-hooks-deliveries" in home
    assert reverse("wagtail_publish_hooks:deliveries") in home
    for url in viewing_urls(delivery, site_root.pk):
        assert client.get(url).status_code == 200, url
    report = client.get(admin_url("deliveries")).content.decode()
    assert admin_url("redeliver", delivery.pk) not in report
    assert admin_url("redeliver_failed") not in report
    detail = client.get(admin_url("delivery", delivery.pk)).content.decode()
    assert admin_url("redeliver", delivery.pk) not in detail
    for url in acting_urls(delivery):
        assert client.get(url).status_code == 403, url
        assert client.post(url).status_code == 403, url
    assert Delivery.objects.get().status == DeliveryStatus.FAILED


def test_redeliver_delivery_without_view_cannot_see_the_report(client, django_user_model):
    client.force_login(user_with(django_user_model, "redeliver_delivery"))
    delivery = make_delivery(status=DeliveryStatus.PENDING)
    assert client.get(admin_url("deliveries")).status_code == 403
    assert "publish-hooks-deliveries" not in settings_menu(client)
    # The permission to act is the permission to act.
    assert client.post(admin_url("cancel", delivery.pk)).status_code == 302
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED


def test_both_permissions_can_act(client, django_user_model):
    client.force_login(user_with(django_user_model, "view_delivery", "redeliver_delivery"))
    delivery = make_delivery(status=DeliveryStatus.PENDING)
    report = client.get(admin_url("deliveries")).content.decode()
    assert admin_url("cancel", delivery.pk) in report
    assert client.get(admin_url("cancel", delivery.pk)).status_code == 200
    assert client.post(admin_url("cancel", delivery.pk)).status_code == 302
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED


def test_anonymous_users_are_sent_to_log_in(client):
    delivery = make_delivery()
    response = client.get(admin_url("delivery", delivery.pk))
    assert response.status_code == 302
    assert reverse("wagtailadmin_login") in response["Location"]
