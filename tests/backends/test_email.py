"""The email backend: recipients, one message each, templates, errors and retries that never
mail anybody twice."""

from __future__ import annotations

import importlib
import smtplib
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group
from django.core import checks
from django.core.mail.backends import locmem
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from wagtail.log_actions import LogContext
from wagtail.models import GroupApprovalTask, Workflow, WorkflowTask

from wagtail_publish_hooks.backends.email import EmailBackend
from wagtail_publish_hooks.checks.settings import check_settings
from wagtail_publish_hooks.delivery import redeliver
from wagtail_publish_hooks.models import Attempt, AttemptOutcome, Delivery, DeliveryStatus

pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "wagtail_publish_hooks.backends.email.EmailBackend"


class FlakyEmailBackend(locmem.EmailBackend):
    """Loses the connection once, on the ``fail_at``-th call to ``send_messages``."""

    fail_at: int | None = None
    calls = 0

    def send_messages(self, messages):
        FlakyEmailBackend.calls += 1
        if FlakyEmailBackend.calls == FlakyEmailBackend.fail_at:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return super().send_messages(messages)


class RefusingEmailBackend(locmem.EmailBackend):
    """Refuses the addresses in ``refused`` as an SMTP server would."""

    refused: dict[str, tuple[int, bytes]] = {}

    def send_messages(self, messages):
        for message in messages:
            refused = {a: self.refused[a] for a in message.to if a in self.refused}
            if refused:
                raise smtplib.SMTPRecipientsRefused(refused)
        return super().send_messages(messages)


class UnreachableEmailBackend(locmem.EmailBackend):
    def open(self):
        raise ConnectionRefusedError(111, "Connection refused")


@pytest.fixture
def email_destination(configure):
    def apply(events=None, **options):
        destination = {"BACKEND": EMAIL, "OPTIONS": options}
        if events is not None:
            destination["EVENTS"] = events
        return configure(
            DESTINATIONS={"editors": destination},
            RETRY_SCHEDULE=[0],
            MAX_ATTEMPTS=3,
        )

    return apply


@pytest.fixture
def people(django_user_model):
    """Editors (a group), a moderator, and users who must never be mailed."""
    make = django_user_model.objects.create_user
    editors, _ = Group.objects.get_or_create(name="Editors")  # Wagtail creates it
    users = {
        "alice": make("alice", "alice@example.com", first_name="Alice", last_name="Smith"),
        "bob": make("bob", "Bob@example.com"),
        "carol": make("carol", "carol@example.com"),
        # Bob's second account, same mailbox in another case: one message only.
        "bob2": make("bob2", "bob@example.COM"),
        "inactive": make("inactive", "inactive@example.com", is_active=False),
        "no_email": make("no_email", ""),
        "outsider": make("outsider", "outsider@example.com"),
    }
    for name in ("alice", "bob", "bob2", "inactive", "no_email"):
        users[name].groups.add(editors)
    return users


def ours(outbox) -> list:
    """The backend's messages (Wagtail mails moderators itself, too)."""
    return [m for m in outbox if "X-Publish-Hooks-Event" in m.extra_headers]


def recipients(outbox) -> list[str]:
    return [address for message in ours(outbox) for address in message.to]


# -- What is sent, and to whom ---------------------------------------------------------------------


def test_one_message_per_recipient_with_only_their_address(
    email_destination, people, draft_blog_page, mailoutbox, settings
):
    settings.DEFAULT_FROM_EMAIL = "cms@example.com"
    email_destination(TO_GROUPS=["Editors"], TO_USERS=["carol"])
    draft_blog_page.save_revision().publish()

    # Sorted by address; the inactive user, the user without an address and the second
    # account of the same mailbox are left out.
    assert recipients(mailoutbox) == ["alice@example.com", "Bob@example.com", "carol@example.com"]
    for message in mailoutbox:
        assert len(message.to) == 1
        assert message.cc == [] and message.bcc == []
        assert message.from_email == "cms@example.com"
        assert message.subject == "[Publish hooks tests] Page published: Hello world"
        assert message.extra_headers["Auto-Submitted"] == "auto-generated"
        assert message.extra_headers["X-Publish-Hooks-Event"].startswith("evt_")
    assert len({m.extra_headers["Message-ID"] for m in mailoutbox}) == 3

    body = mailoutbox[0].body
    assert body.startswith("Hello Alice Smith,\n\n“Hello world” was published.\n")
    assert "View it: http://localhost/news/hello-world/\n" in body
    edit = "http://testserver" + reverse("wagtailadmin_pages:edit", args=[draft_blog_page.pk])
    assert f"Edit it: {edit}\n" in body
    assert 'recipient of the "editors" notifications of Publish hooks tests' in body
    assert mailoutbox[1].body.startswith("Hello bob,\n")  # no full name: the username
    assert mailoutbox[0].alternatives == []

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    attempt = Attempt.objects.get()
    assert attempt.status_code is None
    assert attempt.response_body.splitlines() == [
        "sent: alice@example.com",
        "sent: Bob@example.com",
        "sent: carol@example.com",
    ]


def test_text_is_not_html_escaped_and_subject_is_one_line(
    email_destination, people, blog_index, mailoutbox
):
    from tests.testapp.models import BlogPage

    page = BlogPage(title="Tom & Jerry\n<b>again</b>", slug="tom", live=False)
    blog_index.add_child(instance=page)
    email_destination(TO_USERS=["alice"])
    page.save_revision().publish()

    [message] = mailoutbox
    assert message.subject == "[Publish hooks tests] Page published: Tom & Jerry <b>again</b>"
    assert "“Tom & Jerry\n<b>again</b>” was published" in message.body


def test_html_alternative_is_escaped(email_destination, people, blog_index, mailoutbox):
    from tests.testapp.models import BlogPage

    page = BlogPage(title="Tom & Jerry", slug="tom", live=False)
    blog_index.add_child(instance=page)
    email_destination(TO_USERS=["alice"], HTML_TEMPLATE="wagtail_publish_hooks/email/body.html")
    page.save_revision().publish()

    [(html, mimetype)] = mailoutbox[0].alternatives
    assert mimetype == "text/html"
    assert "Tom &amp; Jerry" in html
    assert 'href="http://localhost/news/tom/"' in html


def test_the_message_says_what_changed(email_destination, people, draft_blog_page, mailoutbox):
    from tests.testapp.models import BlogPage

    email_destination(TO_USERS=["alice"], HTML_TEMPLATE="wagtail_publish_hooks/email/body.html")
    draft_blog_page.save_revision().publish()
    page = BlogPage.objects.get(pk=draft_blog_page.pk)
    page.title, page.body = "Hello & goodbye", "<p>A long body</p>" * 50
    page.save_revision().publish()

    first, changed = ours(mailoutbox)
    assert "“Hello world” was published.\nFirst published.\n" in first.body
    assert "“Hello & goodbye” was published.\nTitle and body changed.\n" in changed.body
    [(html, _)] = changed.alternatives
    assert "was published.<br>Title and body changed.</p>" in html
    assert "A long body" not in changed.body and "A long body" not in html


def test_custom_templates_get_the_recipient_and_the_payload(
    email_destination, people, draft_blog_page, mailoutbox, settings
):
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [
                    (
                        "django.template.loaders.locmem.Loader",
                        {
                            "s.txt": "{{ summary.verb|upper }}\n  {{ data.page.slug }}\n",
                            "b.txt": "{{ recipient_email }} {{ payload.type }} {{ summary.actor }}",
                        },
                    )
                ]
            },
        }
    ]
    email_destination(
        TO_USERS=["alice"], SUBJECT_TEMPLATE="s.txt", BODY_TEMPLATE="b.txt", FROM_EMAIL="x@y.org"
    )
    draft_blog_page.save_revision().publish()

    [message] = mailoutbox
    assert message.subject == "PUBLISHED hello-world"
    assert message.body == "alice@example.com page.published None"
    assert message.from_email == "x@y.org"


def test_the_actor_is_not_mailed_about_their_own_action(
    email_destination, people, draft_blog_page, mailoutbox
):
    email_destination(TO_GROUPS=["Editors"])
    with LogContext(user=people["alice"]):
        draft_blog_page.save_revision().publish()

    assert recipients(mailoutbox) == ["Bob@example.com"]
    assert "“Hello world” was published by alice." in mailoutbox[0].body
    assert "not sent (the actor): alice@example.com" in Attempt.objects.get().response_body


def test_exclude_actor_false_mails_the_actor_too(
    email_destination, people, draft_blog_page, mailoutbox
):
    email_destination(TO_GROUPS=["Editors"], EXCLUDE_ACTOR=False)
    with LogContext(user=people["alice"]):
        draft_blog_page.save_revision().publish()

    assert recipients(mailoutbox) == ["alice@example.com", "Bob@example.com"]


def test_only_the_actor_is_a_success_with_nothing_sent(
    email_destination, people, draft_blog_page, mailoutbox
):
    email_destination(TO_USERS=["alice"])
    with LogContext(user=people["alice"]):
        draft_blog_page.save_revision().publish()

    assert mailoutbox == []
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert Attempt.objects.get().response_body == "not sent (the actor): alice@example.com"


def test_the_page_owner(email_destination, people, blog_index, mailoutbox):
    from tests.testapp.models import BlogPage

    page = BlogPage(title="Owned", slug="owned", live=False, owner=people["carol"])
    blog_index.add_child(instance=page)
    email_destination(TO_OWNER=True)
    page.save_revision().publish()

    assert recipients(mailoutbox) == ["carol@example.com"]


def test_the_workflow_submitter_hears_about_the_approval(
    email_destination, people, draft_blog_page, mailoutbox, django_user_model
):
    moderator = django_user_model.objects.create_superuser("mod", "mod@example.com", "pw")
    Group.objects.get_or_create(name="Moderators")[0].user_set.add(moderator)
    task = GroupApprovalTask.objects.create(name="Review")
    workflow = Workflow.objects.create(name="Editorial")
    WorkflowTask.objects.create(workflow=workflow, task=task, sort_order=0)
    email_destination(events=["workflow.*"], TO_SUBMITTER=True, TO_GROUPS=["Moderators"])
    Delivery.objects.all().delete()

    with LogContext(user=people["carol"]):
        state = workflow.start(draft_blog_page, people["carol"])
    # Submitted: the moderators hear of it; carol, who submitted, does not.
    assert recipients(mailoutbox) == ["mod@example.com"]
    [submitted] = ours(mailoutbox)
    assert submitted.subject == "[Publish hooks tests] Submitted for moderation: Hello world"
    assert "Workflow: Editorial, submitted by carol\n" in submitted.body
    mailoutbox.clear()

    with LogContext(user=moderator):
        state.current_task_state.approve(user=moderator)
    # Approved by the moderator: carol hears of it, the moderator does not.
    [approved] = ours(mailoutbox)
    assert recipients(mailoutbox) == ["carol@example.com"]
    assert approved.subject == "[Publish hooks tests] Workflow approved: Hello world"
    assert "“Hello world” was approved by mod." in approved.body


# -- Failures and retries ----------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_lost_connection_is_retried_without_mailing_anybody_twice(
    email_destination, people, draft_blog_page, mailoutbox, settings, fail_at
):
    settings.EMAIL_BACKEND = "tests.backends.test_email.FlakyEmailBackend"
    FlakyEmailBackend.calls, FlakyEmailBackend.fail_at = 0, fail_at
    email_destination(TO_GROUPS=["Editors"], TO_USERS=["carol"])
    draft_blog_page.save_revision().publish()  # the retry is due at once: the same run sends it

    assert recipients(mailoutbox) == ["alice@example.com", "Bob@example.com", "carol@example.com"]
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    first, second = Attempt.objects.order_by("number")
    assert first.outcome == AttemptOutcome.RETRY
    sent_first = ["alice@example.com", "Bob@example.com", "carol@example.com"][: fail_at - 1]
    assert first.error == (
        f"sent to {fail_at - 1} of 3 recipients; "
        "SMTPServerDisconnected: Connection unexpectedly closed"
    )
    assert [line for line in first.response_body.splitlines() if line.startswith("sent: ")] == [
        f"sent: {address}" for address in sent_first
    ]
    assert second.outcome == AttemptOutcome.SUCCESS
    assert second.response_body.splitlines()[: len(sent_first)] == [
        f"already sent: {address}" for address in sent_first
    ]


def test_addresses_an_attempt_sent_to_before_the_upgrade_are_not_mailed_again(
    configure, people, draft_blog_page, mailoutbox, settings, deliver
):
    """Attempts recorded before ``Attempt.detail["sent"]`` listed their addresses as ``sent: ``
    lines of the response body; migration 0013 copies them across, so a retry pending over the
    upgrade mails nobody twice."""
    migration = importlib.import_module("wagtail_publish_hooks.migrations.0013_email_sent_detail")
    settings.EMAIL_BACKEND = "tests.backends.test_email.FlakyEmailBackend"
    FlakyEmailBackend.calls, FlakyEmailBackend.fail_at = 0, 2
    configure(
        DESTINATIONS={"editors": {"BACKEND": EMAIL, "OPTIONS": {"TO_USERS": ["alice", "carol"]}}},
        RETRY_SCHEDULE=[3600],
    )
    draft_blog_page.save_revision().publish()
    first = Attempt.objects.get()
    assert first.outcome == AttemptOutcome.RETRY
    assert "sent: alice@example.com" in first.response_body.splitlines()
    Attempt.objects.update(detail={})  # as an attempt was recorded before the upgrade

    migration.copy_sent_addresses(django_apps, SimpleNamespace(connection=connection))

    assert Attempt.objects.get().detail == {"sent": ["alice@example.com"]}
    Delivery.objects.update(next_attempt_at=timezone.now())
    deliver()
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    assert recipients(mailoutbox) == ["alice@example.com", "carol@example.com"]


def test_an_unreachable_server_is_retried_then_fails(
    email_destination, people, draft_blog_page, mailoutbox, settings
):
    settings.EMAIL_BACKEND = "tests.backends.test_email.UnreachableEmailBackend"
    email_destination(TO_USERS=["alice"])
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 3  # MAX_ATTEMPTS
    assert delivery.last_error == (
        "sent to 0 of 1 recipients; ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert mailoutbox == []


def test_a_permanently_refused_address_fails_and_redelivery_mails_only_it(
    email_destination, people, draft_blog_page, mailoutbox, settings, deliver
):
    settings.EMAIL_BACKEND = "tests.backends.test_email.RefusingEmailBackend"
    RefusingEmailBackend.refused = {"Bob@example.com": (550, b"5.1.1 No such user")}
    email_destination(TO_GROUPS=["Editors"], TO_USERS=["carol"])
    draft_blog_page.save_revision().publish()

    assert recipients(mailoutbox) == ["alice@example.com", "carol@example.com"]
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED  # not retried: 5xx is permanent
    assert delivery.attempts == 1
    assert delivery.last_error == (
        "sent to 2 of 3 recipients; refused Bob@example.com (550 5.1.1 No such user)"
    )

    # Bob's address is fixed; a redelivery mails him, and only him.
    RefusingEmailBackend.refused = {}
    mailoutbox.clear()
    redeliver(Delivery.objects.all())
    deliver()
    assert recipients(mailoutbox) == ["Bob@example.com"]
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED


def test_a_temporarily_refused_address_is_retried(
    email_destination, people, draft_blog_page, mailoutbox, settings
):
    settings.EMAIL_BACKEND = "tests.backends.test_email.RefusingEmailBackend"
    RefusingEmailBackend.refused = {"carol@example.com": (450, b"4.2.1 Mailbox busy")}
    email_destination(TO_USERS=["alice", "carol"])
    draft_blog_page.save_revision().publish()

    # alice once; carol refused on every attempt until MAX_ATTEMPTS.
    assert recipients(mailoutbox) == ["alice@example.com"]
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert [a.outcome for a in Attempt.objects.order_by("number")] == ["retry", "retry", "failure"]


def test_nobody_to_mail_is_a_failure_that_says_why(
    email_destination, people, draft_blog_page, mailoutbox
):
    email_destination(TO_USERS=["inactive", "no_email", "ghost"], TO_GROUPS=["Nobody"])
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert delivery.last_error == (
        "no recipients: TO_USERS ['inactive', 'no_email', 'ghost'], TO_GROUPS ['Nobody'] matched "
        "no active user with an email address"
    )
    assert mailoutbox == []


def test_a_missing_template_fails_before_anything_is_sent(
    email_destination, people, draft_blog_page, mailoutbox
):
    email_destination(TO_USERS=["alice"], BODY_TEMPLATE="missing/body.txt")
    draft_blog_page.save_revision().publish()

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("cannot render the message: TemplateDoesNotExist")
    assert mailoutbox == []


# -- Checks -------------------------------------------------------------------------------------


def check_ids(configure, **options) -> list[tuple[str, str]]:
    configure(DESTINATIONS={"editors": {"BACKEND": EMAIL, "OPTIONS": options}})
    return [
        (message.id, message.msg)
        for message in check_settings()
        if isinstance(message, checks.CheckMessage)
    ]


def test_checks_accept_a_valid_configuration(configure):
    assert (
        check_ids(
            configure,
            TO_USERS=["alice"],
            TO_GROUPS=("Editors",),
            TO_OWNER=True,
            TO_SUBMITTER=False,
            EXCLUDE_ACTOR=False,
            FROM_EMAIL="cms@example.com",
            SUBJECT_TEMPLATE="wagtail_publish_hooks/email/subject.txt",
            HTML_TEMPLATE="wagtail_publish_hooks/email/body.html",
        )
        == []
    )


def test_checks_report_each_mistake(configure):
    prefix = "WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['editors']['OPTIONS']"
    assert check_ids(
        configure,
        TO_USERS="alice",
        TO_GROUPS=["Editors", ""],
        TO_OWNER="yes",
        FROM_EMAIL="",
        BODY_TEMPLATE="missing/body.txt",
        TO_USER=["x"],
    ) == [
        (
            "wagtail_publish_hooks.E010",
            f"{prefix}['TO_USER']: is not an option of EmailBackend.",
        ),
        ("wagtail_publish_hooks.E028", f"{prefix}['TO_USERS']: must be a list of usernames."),
        ("wagtail_publish_hooks.E028", f"{prefix}['TO_GROUPS']: must be a list of group names."),
        ("wagtail_publish_hooks.E029", f"{prefix}['TO_OWNER']: must be True or False."),
        ("wagtail_publish_hooks.E031", f"{prefix}['FROM_EMAIL']: must be a non-empty string."),
        (
            "wagtail_publish_hooks.W007",
            f"{prefix}['BODY_TEMPLATE']: template 'missing/body.txt' cannot be loaded "
            "(TemplateDoesNotExist: missing/body.txt); deliveries will fail until it can.",
        ),
    ]


def test_checks_require_a_recipient(configure):
    assert check_ids(configure, TO_OWNER=False, TO_USERS=[]) == [
        (
            "wagtail_publish_hooks.E030",
            "WAGTAIL_PUBLISH_HOOKS['DESTINATIONS']['editors']['OPTIONS']: names no recipients: "
            "this destination would mail nobody.",
        )
    ]


def test_describe():
    backend = EmailBackend(
        alias="editors", options={"TO_USERS": ["alice"], "TO_GROUPS": ["Editors"], "TO_OWNER": True}
    )
    assert backend.describe() == "Email to users alice; groups Editors; the owner"
