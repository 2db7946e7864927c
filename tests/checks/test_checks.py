"""Every system check id fires on the bad setting it names, and names the alias and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from tests.conftest import IMMEDIATE_BACKEND, make_secret

WEBHOOK = "wagtail_publish_hooks.backends.webhook.WebhookBackend"
SECRET = make_secret()
GOOD_OPTIONS = {"URL": "https://consumer.example/hooks", "SECRET": SECRET}
DB_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def dest(**overrides):
    config = {"BACKEND": WEBHOOK, "OPTIONS": dict(GOOD_OPTIONS)}
    options = overrides.pop("OPTIONS", None)
    if options is not None:
        config["OPTIONS"] = {**GOOD_OPTIONS, **options}
    config.update(overrides)
    return {"DESTINATIONS": {"consumer": config}}


def run(settings, value, tasks=DB_TASKS):
    settings.TASKS = tasks
    settings.WAGTAIL_PUBLISH_HOOKS = value
    return checks.run_checks(tags=["wagtail_publish_hooks"])


CASES = [
    ("E001", ["not", "a", "dict"], "must be a dict"),
    ("E002", {"MAX_ATEMPTS": 3}, "['MAX_ATEMPTS']: is not a known setting"),
    ("E003", {"DESTINATIONS": ["consumer"]}, "['DESTINATIONS']: must be a dict"),
    ("E003", {"DESTINATIONS": {"consumer": "https://x.example"}}, "['consumer']: must be a dict"),
    (
        "E004",
        {"DESTINATIONS": {"consumer": {"OPTIONS": GOOD_OPTIONS}}},
        "['consumer']['BACKEND']: is required",
    ),
    (
        "E005",
        dest(BACKEND="wagtail_publish_hooks.backends.nope.NopeBackend"),
        "['consumer']['BACKEND']: 'wagtail_publish_hooks.backends.nope.NopeBackend' cannot be",
    ),
    (
        "E006",
        dest(BACKEND="tests.support.backends.NotABackend"),
        "['consumer']['BACKEND']: 'tests.support.backends.NotABackend' is not a subclass",
    ),
    ("E007", dest(EVENT=["page.published"]), "['consumer']['EVENT']: is not a known destination"),
    ("E008", dest(EVENTS=["page.publish"]), "['consumer']['EVENTS']: 'page.publish' is not a"),
    ("E008", dest(EVENTS="page.published"), "['consumer']['EVENTS']: must be a list"),
    ("E009", dest(MODELS=["blog.BlogPage"]), "['consumer']['MODELS']: 'blog.BlogPage' is not"),
    ("E009", dest(MODELS=[42]), "['consumer']['MODELS']: must be a list"),
    (
        "E010",
        dest(OPTIONS={"URLS": "https://x.example"}),
        "['consumer']['OPTIONS']['URLS']: is not an option of WebhookBackend",
    ),
    (
        "E010",
        {"DESTINATIONS": {"consumer": {"BACKEND": WEBHOOK, "OPTIONS": "https://x"}}},
        "['consumer']['OPTIONS']: must be a dict",
    ),
    (
        "E011",
        {"DESTINATIONS": {"consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"SECRET": SECRET}}}},
        "['consumer']['OPTIONS']['URL']: is required",
    ),
    (
        "E012",
        dest(OPTIONS={"URL": "consumer.example/hooks"}),
        "['consumer']['OPTIONS']['URL']: must be an absolute",
    ),
    (
        "E012",
        dest(OPTIONS={"URL": "ftp://consumer.example/hooks"}),
        "['consumer']['OPTIONS']['URL']: must be an absolute",
    ),
    (
        "E012",
        dest(OPTIONS={"URL": "https://consumer.example:99999/"}),
        "['consumer']['OPTIONS']['URL']: is not a valid URL",
    ),
    (
        "E013",
        dest(OPTIONS={"URL": "https://user:pw@consumer.example/hooks"}),
        "['consumer']['OPTIONS']['URL']: contains credentials",
    ),
    (
        "E014",
        dest(OPTIONS={"SECRET": "hunter2hunter2hunter2"}),
        "['consumer']['OPTIONS']['SECRET']: must start with 'whsec_'",
    ),
    (
        "E014",
        dest(OPTIONS={"SECRET": "whsec_!!!not-base64!!!"}),
        "['consumer']['OPTIONS']['SECRET']: must be 'whsec_' followed by base64",
    ),
    (
        "E014",
        dest(OPTIONS={"SECRET": [SECRET, "nope"]}),
        "['consumer']['OPTIONS']['SECRET']['1']: must start with 'whsec_'",
    ),
    ("E014", dest(OPTIONS={"SECRET": []}), "['consumer']['OPTIONS']['SECRET']: must be a secret"),
    ("E015", {"MAX_ATTEMPTS": -1}, "['MAX_ATTEMPTS']: must be an integer greater than zero"),
    ("E015", {"MAX_ATTEMPTS": 2.5}, "['MAX_ATTEMPTS']: must be an integer"),
    ("E015", {"RETENTION_DAYS": "30"}, "['RETENTION_DAYS']: must be an integer"),
    ("E015", {"BATCH_SIZE": 0}, "['BATCH_SIZE']: must be an integer greater than zero"),
    ("E015", {"CONCURRENCY": 0}, "['CONCURRENCY']: must be an integer greater than zero"),
    (
        "E015",
        dest(OPTIONS={"TIMEOUT": 0}),
        "['consumer']['OPTIONS']['TIMEOUT']: must be a number greater than zero",
    ),
    ("E015", dest(OPTIONS={"TIMEOUT": "15"}), "['consumer']['OPTIONS']['TIMEOUT']: must be a"),
    ("E016", {"ENABLED": "yes"}, "['ENABLED']: must be True or False"),
    ("E017", {"ALLOW_PRIVATE_NETWORKS": "10.0.0.0/8"}, "['ALLOW_PRIVATE_NETWORKS']: must be"),
    (
        "E017",
        {"ALLOW_PRIVATE_NETWORKS": ["127.0.0.0/33"]},
        "['ALLOW_PRIVATE_NETWORKS']: '127.0.0.0/33' is not a network",
    ),
    ("E018", {"TASK_BACKEND": "missing"}, "['TASK_BACKEND']: names task backend 'missing'"),
    ("E018", {"QUEUE_NAME": ""}, "['QUEUE_NAME']: must be a non-empty string"),
    (
        "E019",
        dest(OPTIONS={"HEADERS": {"webhook-signature": "x"}}),
        "['consumer']['OPTIONS']['HEADERS']: may not set webhook-signature",
    ),
    (
        "E019",
        dest(OPTIONS={"HEADERS": {"X-Token": 1}}),
        "['consumer']['OPTIONS']['HEADERS']: must be a dict",
    ),
    (
        "E019",
        dest(OPTIONS={"HEADERS": {"X-Evil": "a\r\nInjected: yes"}}),
        "['consumer']['OPTIONS']['HEADERS']: has an invalid header",
    ),
    ("E020", {"RETRY_SCHEDULE": [5, -1]}, "['RETRY_SCHEDULE']: must be a non-empty list"),
    ("E020", {"RETRY_SCHEDULE": []}, "['RETRY_SCHEDULE']: must be a non-empty list"),
    (
        "E048",
        {"RETRY_SCHEDULE": [5, 1e12]},
        "['RETRY_SCHEDULE']['1']: must be a number zero or more and at most 604800 (seconds), "
        "not a number above 604800.",
    ),
    (
        "E048",
        {"RETRY_SCHEDULE": [float("inf")]},
        "['RETRY_SCHEDULE']['0']: must be a number zero or more and at most 604800",
    ),
    (
        "E048",
        {"MAX_ATTEMPTS": 10**30},
        "['MAX_ATTEMPTS']: must be an integer greater than zero and at most 100 (attempts), "
        "not a number above 100.",
    ),
    ("E048", {"LEASE_SECONDS": 10**12}, "['LEASE_SECONDS']: must be an integer greater than"),
    ("E048", {"MAX_RUN_SECONDS": float("nan")}, "['MAX_RUN_SECONDS']: must be a number greater"),
    ("E048", {"BATCH_SIZE": 5000}, "['BATCH_SIZE']: must be an integer greater than zero and at"),
    ("E048", {"CONCURRENCY": 1000}, "['CONCURRENCY']: must be an integer greater than zero and"),
    (
        "E048",
        {"DESTINATIONS_REFRESH_SECONDS": float("inf")},
        "['DESTINATIONS_REFRESH_SECONDS']: must be a number zero or more and at most 3600 "
        "(seconds), not infinity.",
    ),
    ("E048", {"RETENTION_DAYS": 10**6}, "['RETENTION_DAYS']: must be an integer greater than"),
    (
        "E048",
        dest(OPTIONS={"TIMEOUT": float("nan")}),
        "['consumer']['OPTIONS']['TIMEOUT']: must be a number greater than zero and at most 300 "
        "(seconds), not NaN.",
    ),
    (
        "E048",
        dest(OPTIONS={"CONNECT_TIMEOUT": float("inf")}),
        "['consumer']['OPTIONS']['CONNECT_TIMEOUT']: must be a number greater than zero and at "
        "most 300 (seconds), not infinity.",
    ),
    ("E015", dest(OPTIONS={"TIMEOUT": True}), "['TIMEOUT']: must be a number greater than zero"),
    ("E015", dest(OPTIONS={"TIMEOUT": None}), "(seconds), not null."),
    ("E008", dest(EVENTS=["shop"]), "['consumer']['EVENTS']: 'shop' is not a known event type"),
    ("E008", dest(EVENTS=["Shop.Order"]), "['consumer']['EVENTS']: 'Shop.Order' is not a"),
    ("E008", dest(EVENTS=["workflow.aproved"]), "['EVENTS']: 'workflow.aproved' is not a"),
    ("E021", dest(EXCLUDE_ALIASES="no"), "['consumer']['EXCLUDE_ALIASES']: must be True or False"),
    ("E022", dest(INCLUDE="api"), "['consumer']['INCLUDE']: must be a list of names"),
    ("E022", dest(INCLUDE=["apii"]), "['consumer']['INCLUDE']: 'apii' is not something"),
    (
        "E023",
        {"DESTINATIONS": {"python:mine": dest()["DESTINATIONS"]["consumer"]}},
        "['python:mine']: destination aliases may not start with 'python:'",
    ),
    (
        "W003",
        dest(OPTIONS={"URL": "http://consumer.example/hooks"}),
        "['consumer']['OPTIONS']['URL']: uses plain http://",
    ),
    (
        "W004",
        {
            "DESTINATIONS": {
                "consumer": {"BACKEND": WEBHOOK, "OPTIONS": {"URL": "https://x.example/"}}
            }
        },
        "['consumer']['OPTIONS']['SECRET']: is not set",
    ),
    ("W005", dest(EVENTS=[]), "['consumer']['EVENTS']: is empty"),
    ("W005", dest(MODELS=[]), "['consumer']['MODELS']: is empty"),
    (
        "W017",
        {**dest(OPTIONS={"TIMEOUT": 30}), "LEASE_SECONDS": 60},
        "['consumer']['OPTIONS']['TIMEOUT']: a request may take 30 s",
    ),
    (
        "W017",
        {**dest(), "LEASE_SECONDS": 20},
        "['consumer']['OPTIONS']['TIMEOUT']: a request may take 15 s",
    ),
    # A destination's own retry policy is held to the bounds of the globals.
    ("E052", dest(MAX_ATTEMPTS=0), "['consumer']['MAX_ATTEMPTS']: must be an integer greater"),
    ("E052", dest(MAX_ATTEMPTS="3"), "['consumer']['MAX_ATTEMPTS']: must be an integer"),
    ("E052", dest(MAX_ATTEMPTS=2.0), "not a number with a decimal point"),
    (
        "E048",
        dest(MAX_ATTEMPTS=101),
        "['consumer']['MAX_ATTEMPTS']: must be an integer greater than zero and at most 100",
    ),
    ("E052", dest(RETRY_SCHEDULE=[]), "['consumer']['RETRY_SCHEDULE']: must be a non-empty list"),
    ("E052", dest(RETRY_SCHEDULE="5, 60"), "['consumer']['RETRY_SCHEDULE']: must be a non-empty"),
    ("E052", dest(RETRY_SCHEDULE=[5, -1]), "['consumer']['RETRY_SCHEDULE']['1']: must be a number"),
    (
        "E048",
        dest(RETRY_SCHEDULE=[5, 604801]),
        "['consumer']['RETRY_SCHEDULE']['1']: must be a number zero or more and at most 604800",
    ),
    ("E048", dest(RETRY_SCHEDULE=[float("nan")]), "['RETRY_SCHEDULE']['0']: must be a number"),
    (
        "E053",
        {"DISABLE_AFTER_FAILING_FOR": 30},
        "['DISABLE_AFTER_FAILING_FOR']: must be a number at least 60 and at most 3.1536e+07",
    ),
    ("E053", {"DISABLE_AFTER_FAILING_FOR": "5d"}, "['DISABLE_AFTER_FAILING_FOR']: must be a"),
    ("E048", {"DISABLE_AFTER_FAILING_FOR": 10**9}, "['DISABLE_AFTER_FAILING_FOR']: must be a"),
    ("E053", {"OPERATIONAL_COALESCE_SECONDS": -1}, "['OPERATIONAL_COALESCE_SECONDS']: must be"),
    ("E048", {"OPERATIONAL_COALESCE_SECONDS": 86401}, "['OPERATIONAL_COALESCE_SECONDS']: must"),
    (
        "W023",
        {**dest(RETRY_SCHEDULE=[3600], MAX_ATTEMPTS=5), "DISABLE_AFTER_FAILING_FOR": 7200},
        "['consumer']['RETRY_SCHEDULE']: its retries span 14400 s, longer than "
        "DISABLE_AFTER_FAILING_FOR (7200 s)",
    ),
    (
        "W023",
        {**dest(), "MAX_ATTEMPTS": 20, "DISABLE_AFTER_FAILING_FOR": 86400},
        "['consumer']['RETRY_SCHEDULE']: its retries span",
    ),
]


def test_a_destination_retry_policy_within_bounds_is_quiet(settings):
    quiet = {
        **dest(RETRY_SCHEDULE=[0, 5.5, 604800], MAX_ATTEMPTS=100),
        "DISABLE_AFTER_FAILING_FOR": None,
        "OPERATIONAL_COALESCE_SECONDS": 0,
    }
    assert [m.id for m in run(settings, quiet)] == []
    short = {**dest(RETRY_SCHEDULE=[60], MAX_ATTEMPTS=3), "DISABLE_AFTER_FAILING_FOR": 120}
    assert [m.id for m in run(settings, short)] == []  # 120 s of retries: not longer


def test_operational_event_types_are_known_event_types(settings):
    value = dest(
        EVENTS=[
            "publish_hooks.delivery_failed",
            "publish_hooks.destination_disabled",
            "publish_hooks.capture_failed",
            "publish_hooks.*",
        ]
    )
    assert run(settings, value) == []
    messages = run(settings, dest(EVENTS=["publish_hooks.delivery_fail"]))
    assert [m.id for m in messages] == ["wagtail_publish_hooks.E008"]
    assert messages[0].hint == "Did you mean 'publish_hooks.delivery_failed'?"


def test_a_destination_retry_policy_out_of_bounds_falls_back_at_run_time(settings, caplog):
    from wagtail_publish_hooks.registry import retry_policy

    settings.WAGTAIL_PUBLISH_HOOKS = {
        "MAX_ATTEMPTS": 4,
        "RETRY_SCHEDULE": [7],
        **dest(MAX_ATTEMPTS=10**6, RETRY_SCHEDULE="soon"),
    }
    with caplog.at_level("ERROR", logger="wagtail_publish_hooks"):
        policy = retry_policy("consumer")
    assert (policy.max_attempts, policy.schedule) == (4, (7,))
    assert "['consumer']['MAX_ATTEMPTS']: MAX_ATTEMPTS must be an integer" in caplog.text
    settings.WAGTAIL_PUBLISH_HOOKS = {**dest(MAX_ATTEMPTS=2, RETRY_SCHEDULE=[1, 2.5, 1e9])}
    policy = retry_policy("consumer")
    assert (policy.max_attempts, policy.schedule) == (2, (1, 2.5, 604800))
    assert policy.delay(1) == 1 and policy.delay(5) == 604800


def test_a_lease_longer_than_twice_the_timeout_is_quiet(settings):
    quiet = {**dest(OPTIONS={"TIMEOUT": 29}), "LEASE_SECONDS": 60}
    assert [m.id for m in run(settings, quiet)] == []


@pytest.mark.parametrize(
    ("check_id", "value", "text"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_check_fires(settings, check_id, value, text):
    messages = run(settings, value)
    ids = [m.id for m in messages]
    full_id = f"wagtail_publish_hooks.{check_id}"
    assert full_id in ids, messages
    message = next(m for m in messages if m.id == full_id and text in m.msg)
    assert message.msg.startswith("WAGTAIL_PUBLISH_HOOKS")
    assert SECRET not in message.msg and SECRET not in (message.hint or "")


def test_immediate_task_backend_warns(settings):
    messages = run(settings, dest(), tasks={"default": {"BACKEND": IMMEDIATE_BACKEND}})
    assert [m.id for m in messages] == ["wagtail_publish_hooks.W001"]
    assert "deliveries run inside the publishing request" in messages[0].msg


def test_backend_without_deferral_warns(settings):
    tasks = {**DB_TASKS, "nodefer": {"BACKEND": "tests.support.task_backends.NoDeferBackend"}}
    settings.TASKS = tasks
    settings.WAGTAIL_PUBLISH_HOOKS = {**dest(), "TASK_BACKEND": "nodefer"}
    messages = checks.run_checks(tags=["wagtail_publish_hooks"])
    assert [m.id for m in messages] == ["wagtail_publish_hooks.W002"]


def test_valid_configuration_has_no_messages(settings):
    value = {
        **dest(
            EVENTS=["page.*"],
            MODELS=["testapp.BasePage"],
            OPTIONS={
                "HEADERS": {"X-Site": "main"},
                "TIMEOUT": 3,
                "SECRET": [SECRET, make_secret()],
            },
        ),
        "MAX_ATTEMPTS": 3,
        "RETRY_SCHEDULE": [1, 2.5],
        "ALLOW_PRIVATE_NETWORKS": ["10.0.0.0/8"],
        "RETENTION_DAYS": 7,
        "ENABLED": True,
        "QUEUE_NAME": "default",
    }
    assert run(settings, value) == []


def test_missing_setting_is_fine(settings):
    del settings.WAGTAIL_PUBLISH_HOOKS
    settings.TASKS = DB_TASKS
    assert checks.run_checks(tags=["wagtail_publish_hooks"]) == []


@pytest.mark.django_db
def test_errors_stop_manage_py_check(settings):
    settings.TASKS = DB_TASKS
    settings.WAGTAIL_PUBLISH_HOOKS = dest(OPTIONS={"URL": "nope"})
    with pytest.raises(SystemCheckError, match=r"wagtail_publish_hooks\.E012"):
        call_command("check")


# -- Python receivers -----------------------------------------------------------------------------


@pytest.fixture
def receiver():
    from wagtail_publish_hooks import on
    from wagtail_publish_hooks.receivers import unregister

    def announce(event):
        pass

    registered = []

    def register(*args, **kwargs):
        on(*args, name="announce", **kwargs)(announce)
        registered.append(announce)

    yield register
    for function in registered:
        unregister(function)


def test_receiver_model_typo_is_an_error(settings, receiver):
    receiver("page.published", "testapp.BlogPag", "testapp.BasePage")
    messages = run(settings, dest())
    assert [(m.id, m.msg) for m in messages] == [
        (
            "wagtail_publish_hooks.E024",
            "Receiver 'python:announce': 'testapp.BlogPag' is not an installed model "
            "('app_label.Model'); the receiver would never be called for it.",
        )
    ]
    assert messages[0].hint == "Did you mean 'testapp.BlogPage'?"


def test_receiver_event_type_typo_is_an_error(settings, receiver):
    receiver(["page.publish", "shop.*", "shop.order_shipped", "page.*"])
    messages = run(settings, dest())
    assert [(m.id, m.msg) for m in messages] == [
        (
            "wagtail_publish_hooks.E025",
            "Receiver 'python:announce': 'page.publish' is not a known event type.",
        )
    ]
    assert messages[0].hint == "Did you mean 'page.published'?"


def test_receivers_with_classes_and_labels_are_fine(settings, receiver):
    from tests.testapp.models import BasePage

    receiver("page.published", BasePage, "testapp.Advert")
    assert run(settings, dest()) == []


def test_custom_event_types_are_accepted(settings):
    value = dest(EVENTS=["page.published", "shop.order_shipped", "shop.*", "my-site.sync.done"])
    assert run(settings, value) == []


RECEIVER_CHECK_IDS = {"E024", "E025"}


def test_every_check_id_is_tested_and_documented():
    """Each id the package emits has a test and a row in the docs; ids are never reused."""
    root = Path(__file__).parents[2]
    source = "\n".join(
        path.read_text() for path in root.joinpath("wagtail_publish_hooks").rglob("*.py")
    )
    emitted = {f"E{int(n):03d}" for n in re.findall(r"\berror\(\s*(\d+)", source)}
    emitted |= {f"W{int(n):03d}" for n in re.findall(r"\bwarning\(\s*(\d+)", source)}
    assert {"E001", "E026", "E027", "E031", "W007"} <= emitted  # backends' ids are found too
    tests_text = "\n".join(
        path.read_text()
        for path in root.joinpath("tests").rglob("test_*.py")
        if path.name != "test_checks.py"
    )
    tested = {case[0] for case in CASES} | {"W001", "W002"} | RECEIVER_CHECK_IDS
    tested |= set(re.findall(r"\b([EW]0\d\d)\b", tests_text))
    assert emitted <= tested, emitted - tested
    documented = set(
        re.findall(
            r"`wagtail_publish_hooks\.([EW]\d{3})`", (root / "docs/reference/checks.md").read_text()
        )
    )
    assert emitted <= documented, emitted - documented


# -- The bounds of numbers (``limits.py``) ------------------------------------------------------


def test_one_parser_refuses_what_the_bounds_exclude_and_never_shows_the_value():
    import math

    from wagtail_publish_hooks.limits import OPTION_LIMITS, OutOfLimits, parse_number

    window = OPTION_LIMITS["COALESCE_SECONDS"]
    assert parse_number("COALESCE_SECONDS", 0, window) == 0
    assert parse_number("COALESCE_SECONDS", 86400, window) == 86400
    assert parse_number("COALESCE_SECONDS", 2.5, window) == 2.5
    for value, kind in [
        (1e12, "a number above 86400"),
        (86400.5, "a number above 86400"),
        (math.nan, "NaN"),
        (math.inf, "infinity"),
        (-math.inf, "minus infinity"),
        (-1, "a negative number"),
        (True, "a boolean"),
        ("30", "a string"),
        ({"$gt": 0}, "a dict"),
        ([30], "a list"),
        (None, "null"),
        (10**5000, "a number above 86400"),
    ]:
        with pytest.raises(OutOfLimits) as caught:
            parse_number("COALESCE_SECONDS", value, window)
        assert str(caught.value) == (
            "COALESCE_SECONDS must be a number zero or more and at most 86400 (seconds), "
            f"not {kind}"
        )
    with pytest.raises(OutOfLimits, match="not a number with a decimal point"):
        parse_number("PURGE_ANCESTORS", 2.0, OPTION_LIMITS["PURGE_ANCESTORS"])
    with pytest.raises(OutOfLimits, match="not zero"):
        parse_number("TIMEOUT", 0, OPTION_LIMITS["TIMEOUT"])


def test_globals_out_of_bounds_are_bounded_at_run_time(settings, caplog):
    """The checks may be silenced: run time takes the nearest bound, or the default."""
    from wagtail_publish_hooks.conf import get_settings

    settings.WAGTAIL_PUBLISH_HOOKS = {
        "LEASE_SECONDS": 10**12,
        "MAX_RUN_SECONDS": float("nan"),
        "CONCURRENCY": float("inf"),
        "BATCH_SIZE": -5,
        "MAX_ATTEMPTS": "8",
        "DESTINATIONS_REFRESH_SECONDS": float("inf"),
        "RETENTION_DAYS": True,
        "RETRY_SCHEDULE": [1e12, float("nan"), -1, 5],
    }
    with caplog.at_level("ERROR", logger="wagtail_publish_hooks"):
        current = get_settings()
        assert current.LEASE_SECONDS == 86400
        assert current.MAX_RUN_SECONDS == 60
        assert current.CONCURRENCY == 64
        assert current.BATCH_SIZE == 1
        assert current.MAX_ATTEMPTS == 8
        assert current.DESTINATIONS_REFRESH_SECONDS == 3600
        assert current.RETENTION_DAYS == 30
        assert current.RETRY_SCHEDULE == [604800, 0, 0, 5]
        assert current.retry_delay(1) == 604800
    assert "LEASE_SECONDS must be an integer greater than zero and at most 86400" in caplog.text
    settings.WAGTAIL_PUBLISH_HOOKS = {"LEASE_SECONDS": 120, "RETRY_SCHEDULE": [1, 2.5]}
    assert get_settings().LEASE_SECONDS == 120
    assert get_settings().RETRY_SCHEDULE == [1, 2.5]
