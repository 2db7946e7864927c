"""The administrators' "Subscriptions" screens: groups and users subscribed to a section, a
model or a workflow task."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from wagtail.models import Task

from tests.support.admin_users import KIND_PERMISSIONS, admin_user, logged_in
from tests.testapp.models import Advert, BlogPage
from wagtail_publish_hooks.subscription_models import Subscription

pytestmark = pytest.mark.django_db

S = "publish_hooks_subscriptions:"


@pytest.fixture
def administrator(blog_index):
    return admin_user(
        "subscriptions",
        *KIND_PERMISSIONS["subscriptions"],
        pages={blog_index: ("add_page", "change_page", "publish_page")},
    )


@pytest.fixture
def legal():
    return Group.objects.create(name="Legal")


def test_settings_menu_shows_subscriptions_to_administrators_only(administrator):
    url = reverse(f"{S}index")
    assert url in logged_in(administrator).get(reverse("wagtailadmin_home")).content.decode()
    editor = logged_in(admin_user("editor"))
    assert url not in editor.get(reverse("wagtailadmin_home")).content.decode()


def test_subscribe_a_group_to_a_section(administrator, legal, blog_index):
    client = logged_in(administrator)
    response = client.post(
        reverse(f"{S}add"),
        {
            "group": legal.pk,
            "target": "section",
            "page": blog_index.pk,
            "include_subpages": "on",
            "content_type": ContentType.objects.get_for_model(BlogPage).pk,
            "events": ["page.published", "workflow.submitted"],
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    subscription = Subscription.objects.get()
    assert subscription.group == legal and subscription.user is None
    assert subscription.page_id == blog_index.pk and subscription.include_subpages
    # Only the chosen target is kept.
    assert subscription.content_type is None and subscription.task is None
    assert subscription.created_by == administrator
    listing = html.unescape(client.get(reverse(f"{S}index")).content.decode())
    assert "Legal" in listing and "News and its subpages" in listing


def test_subscribe_a_user_to_a_model_and_a_group_to_a_task(administrator, legal):
    client = logged_in(administrator)
    reader = admin_user("reader")
    advert_type = ContentType.objects.get_for_model(Advert)
    response = client.post(
        reverse(f"{S}add"),
        {
            "user": reader.pk,
            "target": "model",
            "content_type": advert_type.pk,
            "events": ["snippet.published"],
        },
    )
    assert response.status_code == 302
    task = Task.objects.create(name="Legal review")
    response = client.post(
        reverse(f"{S}add"),
        {"group": legal.pk, "target": "task", "task": task.pk, "events": ["workflow.submitted"]},
    )
    assert response.status_code == 302
    by_user = Subscription.objects.get(user=reader)
    assert by_user.content_type == advert_type and by_user.object_id == ""
    assert Subscription.objects.get(group=legal).task_id == task.pk
    listing = html.unescape(client.get(reverse(f"{S}index")).content.decode())
    assert "Every advert" in listing and "Workflow task “Legal review”" in listing


@pytest.mark.parametrize(
    "data, error",
    [
        ({"target": "section", "events": ["page.published"]}, "a user or a group"),
        ({"group": "G", "user": "U", "target": "task", "events": []}, "a user or a group"),
        ({"group": "G", "target": "model", "events": ["page.published"]}, "required"),
        ({"group": "G", "target": "section", "events": ["shop.sold"]}, "not one of"),
        ({"group": "G", "target": "elsewhere", "events": ["page.published"]}, "not one of"),
    ],
)
def test_invalid_subscriptions_are_refused(administrator, legal, data, error):
    data = {
        k: legal.pk if v == "G" else administrator.pk if v == "U" else v for k, v in data.items()
    }
    response = logged_in(administrator).post(reverse(f"{S}add"), data)
    assert response.status_code == 200
    assert error in html.unescape(response.content.decode())
    assert not Subscription.objects.exists()


def test_edit_and_delete(administrator, legal, blog_index):
    subscription = Subscription.objects.create(group=legal, page=blog_index, events=["x"])
    client = logged_in(administrator)
    response = client.post(
        reverse(f"{S}edit", args=(subscription.pk,)),
        {"group": legal.pk, "target": "section", "page": blog_index.pk, "events": ["page.moved"]},
    )
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.events == ["page.moved"]
    response = client.post(reverse(f"{S}delete", args=(subscription.pk,)))
    assert response.status_code == 302
    assert not Subscription.objects.exists()


# -- Trying to break it ---------------------------------------------------------------------------


def test_a_page_the_administrator_cannot_see_is_neither_shown_nor_chosen(
    administrator, legal, site_root
):
    secret = site_root.add_child(instance=BlogPage(title="Merger plans", slug="merger"))
    theirs = Subscription.objects.create(group=legal, page=secret, events=["page.published"])
    client = logged_in(administrator)
    listing = client.get(reverse(f"{S}index")).content.decode()
    assert "Legal" in listing and "Merger plans" not in listing
    for name in ("edit", "delete", "history", "usage"):
        response = client.get(reverse(f"{S}{name}", args=(theirs.pk,)))
        assert response.status_code == 403, name
        assert "Merger plans" not in response.content.decode()
    response = client.post(reverse(f"{S}delete", args=(theirs.pk,)))
    assert response.status_code == 403
    assert Subscription.objects.filter(pk=theirs.pk).exists()
    response = client.post(
        reverse(f"{S}add"),
        {"group": legal.pk, "target": "section", "page": secret.pk, "events": ["page.published"]},
    )
    assert response.status_code == 200
    assert "Choose a page you have access to" in html.unescape(response.content.decode())
    assert Subscription.objects.count() == 1


def test_an_editor_without_the_permissions_is_refused(legal, blog_index):
    subscription = Subscription.objects.create(group=legal, page=blog_index, events=["x"])
    editor = logged_in(
        admin_user("editor", pages={blog_index: ("add_page", "change_page", "publish_page")})
    )
    assert editor.get(reverse(f"{S}index")).status_code == 403
    response = editor.post(
        reverse(f"{S}add"),
        {"group": legal.pk, "target": "section", "page": blog_index.pk, "events": ["x"]},
    )
    assert response.status_code == 403
    assert editor.post(reverse(f"{S}delete", args=(subscription.pk,))).status_code == 403
    assert Subscription.objects.count() == 1


def test_a_missing_subscription_is_not_found(administrator):
    response = logged_in(administrator).get(reverse(f"{S}edit", args=(999_999,)))
    assert response.status_code == 404


def test_group_permissions_screen_lists_the_subscription_permissions():
    client = logged_in(admin_user("root", superuser=True))
    content = client.get(reverse("wagtailusers_groups:add")).content.decode()
    for action in ("add", "change", "delete", "view"):
        codename = f"{action}_subscription"
        assert codename in content or f'value="{permission_pk(codename)}"' in content


def permission_pk(codename: str) -> int:
    from django.contrib.auth.models import Permission

    return Permission.objects.get(
        content_type__app_label="wagtail_publish_hooks", codename=codename
    ).pk
