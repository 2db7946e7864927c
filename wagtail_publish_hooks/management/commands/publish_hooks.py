"""``manage.py publish_hooks``: inspect, test, redeliver, sweep, prune, reconcile. Cron-safe."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q
from django.utils import timezone

from wagtail_publish_hooks.conf import get_settings, is_watch_alias
from wagtail_publish_hooks.custom_events import send_test_event
from wagtail_publish_hooks.delivery import redeliver
from wagtail_publish_hooks.limits import SETTING_LIMITS
from wagtail_publish_hooks.management.overview import counts_by_destination, kept_deliveries
from wagtail_publish_hooks.models import (
    Delivery,
    DeliveryStatus,
    DestinationState,
    Upkeep,
    retention_cutoff,
)
from wagtail_publish_hooks.receivers import get_receiver, registered_receivers
from wagtail_publish_hooks.registry import get_backend, get_destinations
from wagtail_publish_hooks.tasks import (
    backend_can_defer,
    enqueue_follow_ups,
    ensure_upkeep,
    run_sweep,
)
from wagtail_publish_hooks.upkeep import (
    INTERVALS,
    PRUNE_BATCH_SECONDS,
    PRUNE_BATCH_SIZE,
    PRUNE_PAUSE,
    PruneResult,
    old_finished_events,
    prune,
)
from wagtail_publish_hooks.worker import run_due_deliveries


class Command(BaseCommand):
    help = "Inspect and operate wagtail-publish-hooks deliveries."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        status = sub.add_parser("status", help="Deliveries per destination and state, and health.")
        status.add_argument(
            "--since",
            default="24h",
            metavar="DURATION",
            help="Count the delivered, failed and cancelled deliveries created this far back: "
            "30m, 2h, 7d (default: 24h). Those still to be sent are all counted.",
        )

        test = sub.add_parser("test", help="Send a test event to one destination.")
        test.add_argument("alias", help="The destination alias.")
        test.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="Wait this long for the worker to deliver it, and report.",
        )

        again = sub.add_parser("redeliver", help="Send deliveries again.")
        again.add_argument("--failed", action="store_true", help="All failed deliveries.")
        again.add_argument(
            "--id",
            type=int,
            action="append",
            dest="ids",
            default=[],
            metavar="ID",
            help="A delivery id (repeatable).",
        )
        again.add_argument(
            "--destination", metavar="ALIAS", help="Only deliveries to this destination."
        )

        sweep = sub.add_parser(
            "sweep", help="Re-enqueue overdue deliveries and reclaim expired leases."
        )
        sweep.add_argument(
            "--run",
            action="store_true",
            help="Deliver in this process instead of enqueueing a task.",
        )

        prune = sub.add_parser("prune", help="Delete finished events older than RETENTION_DAYS.")
        prune.add_argument("--days", type=int, help="Override RETENTION_DAYS.")
        prune.add_argument("--dry-run", action="store_true", help="Count, delete nothing.")
        prune.add_argument(
            "--batch-size",
            type=int,
            default=PRUNE_BATCH_SIZE,
            metavar="ROWS",
            help="The most rows one statement deletes from each table, in a transaction of "
            "its own; each batch is sized to take about "
            f"{PRUNE_BATCH_SECONDS * 1000:.0f} ms within it (default: {PRUNE_BATCH_SIZE}).",
        )
        prune.add_argument(
            "--pause",
            type=float,
            default=PRUNE_PAUSE,
            metavar="SECONDS",
            help=f"Wait this long between two batches (default: {PRUNE_PAUSE}).",
        )

        reconcile = sub.add_parser(
            "reconcile",
            help="Record the events of publishes and unpublishes that were never recorded.",
        )
        reconcile.add_argument(
            "--since",
            default="24h",
            metavar="DURATION",
            help="Look at changes this far back: 30m, 2h, 1d (default: 24h).",
        )
        reconcile.add_argument(
            "--grace",
            default="1m",
            metavar="DURATION",
            help="Leave changes younger than this alone: their event may be on its way "
            "(default: 1m).",
        )
        reconcile.add_argument(
            "--dry-run", action="store_true", help="List what is missing, record nothing."
        )

        enable = sub.add_parser("enable", help="Re-enable a destination that was disabled.")
        enable.add_argument("alias")

        sub.add_parser(
            "reencrypt",
            help="Encrypt the secrets of the destinations managed in the admin again, with the "
            "current key (after rotating ENCRYPTION_KEYS or SECRET_KEY).",
        )

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        self.verbosity = options.get("verbosity", 1)
        getattr(self, f"handle_{action}")(**options)

    def info(self, message: str) -> None:
        """Routine output, silenced by ``-v 0`` so that cron mails only on errors."""
        if self.verbosity >= 1:
            self.stdout.write(message)

    # -- status ----------------------------------------------------------------------------------

    def handle_status(self, *, since: str = "24h", **options: Any) -> None:
        from wagtail_publish_hooks.reconcile import parse_duration

        try:
            window = parse_duration(since)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        counts = counts_by_destination(window)
        states = {state.alias: state for state in DestinationState.objects.all()}
        configured = {
            alias: destination.backend_path.rsplit(".", 1)[-1]
            for alias, destination in get_destinations().items()
        }
        configured.update(
            (receiver.name, "PythonBackend")
            for receiver in registered_receivers()
            if receiver.durable
        )
        aliases = sorted(set(configured) | set(counts) | set(states))
        statuses = [choice.value for choice in DeliveryStatus]
        header = ["destination", "backend", *statuses, "state"]
        rows = []
        for alias in aliases:
            backend = configured.get(alias) or (
                # Watching's own: the fan-out and each user's notifications.
                type(get_backend(alias)).__name__ if is_watch_alias(alias) else "(not configured)"
            )
            state = states.get(alias)
            if state is not None and state.is_disabled:
                health = f"disabled: {state.disabled_reason}"
            elif state is not None and state.consecutive_failures:
                n = state.consecutive_failures
                health = f"{n} consecutive failure{'' if n == 1 else 's'}"
            else:
                health = "ok"
            rows.append([alias, backend, *(str(counts[alias].get(s, 0)) for s in statuses), health])
        if not rows:
            self.stdout.write("No destinations are configured and nothing has been delivered.")
            self.write_capture_failures()
            self._upkeep_status()
            return
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        table: list[list[str]] = [header, *rows]
        for row in table:
            self.stdout.write(
                "  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
            )
        total, estimated = kept_deliveries()
        self.stdout.write(
            f"Delivered, failed and cancelled: created in the last {since}; pending, sending "
            f"and retrying: all. {'About ' if estimated else ''}{total:,} deliveries kept in all."
        )
        self.write_capture_failures()
        if not get_settings().ENABLED:
            self.stdout.write(self.style.WARNING("Capture is disabled (ENABLED is False)."))
        self._upkeep_status()

    def _upkeep_status(self) -> None:
        """When the sweep and the prune last ran, and when they run next."""
        rows = {row.name: row for row in Upkeep.objects.all()}
        automatic = backend_can_defer()
        for name in INTERVALS:
            row = rows.get(name)
            last = (
                f"last ran {_when(row.last_run_at)}: {row.last_result}"
                if row is not None and row.last_run_at is not None
                else "never ran as a task"
            )
            if not automatic:
                following = "the task backend cannot defer tasks: run it from cron"
            elif row is not None and row.token is not None and row.next_run_at is not None:
                following = f"next due {_when(row.next_run_at)}"
            else:
                following = "starts with the worker's next delivery run"
            self.stdout.write(f"{name.capitalize()}: {last}; {following}.")

    #: How many unresolved capture failures ``status`` lists.
    CAPTURE_FAILURES_SHOWN = 10

    def write_capture_failures(self) -> None:
        """Events whose capture failed and are not resolved: the newest few, and how many."""
        from wagtail_publish_hooks.models import CaptureFailure

        unresolved = CaptureFailure.objects.unresolved().select_related("content_type")
        total = unresolved.count()
        if not total:
            return
        self.stdout.write(
            self.style.ERROR(
                f"{total} capture failure{'' if total == 1 else 's'} not resolved "
                "('publish_hooks reconcile' records again the publishes and unpublishes "
                "of pages and snippets still present):"
            )
        )
        for failure in unresolved[: self.CAPTURE_FAILURES_SHOWN]:
            obj = ""
            if failure.content_type is not None:
                obj = f" {failure.content_type.app_label}.{failure.content_type.model}"
                obj += f" {failure.object_id}"
                if failure.object_repr:
                    obj += f" {failure.object_repr[:60]!r}"
            where = f" [destination {failure.destination}]" if failure.destination else ""
            message = f": {failure.message[:120]}" if failure.message else ""
            self.stdout.write(
                f"  #{failure.pk} {timezone.localtime(failure.occurred_at):%Y-%m-%d %H:%M:%S} "
                f"{failure.event_type}{obj}{where} "
                f"{failure.error_type.rsplit('.', 1)[-1]}{message}"
            )
        if total > self.CAPTURE_FAILURES_SHOWN:
            more = total - self.CAPTURE_FAILURES_SHOWN
            self.stdout.write(f"  … and {more} more (see the admin).")

    # -- test ------------------------------------------------------------------------------------

    def handle_test(self, *, alias: str, wait: float, **options: Any) -> None:
        receiver = get_receiver(alias)
        if alias not in get_destinations() and (receiver is None or not receiver.durable):
            known = ", ".join(sorted(get_destinations())) or "none"
            raise CommandError(
                f"No destination {alias!r} is configured (configured: {known}; durable Python "
                "receivers are named 'python:<module>.<function>')."
            )
        try:
            backend = get_backend(alias)
        except Exception as exc:
            raise CommandError(
                f"Destination {alias!r} cannot be built: {exc}. Run 'manage.py check' for details."
            ) from None
        delivery = send_test_event(alias)
        if delivery is None:
            raise CommandError("Capture is disabled (WAGTAIL_PUBLISH_HOOKS['ENABLED'] is False).")
        self.stdout.write(
            f"Test event {delivery.event.event_id} queued for {alias!r} "
            f"({backend.describe()}), delivery #{delivery.pk}."
        )
        if wait <= 0:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            delivery.refresh_from_db()
            if delivery.status in (
                DeliveryStatus.DELIVERED,
                DeliveryStatus.FAILED,
                DeliveryStatus.RETRYING,
                DeliveryStatus.CANCELLED,
            ):
                break
            time.sleep(0.2)
        self._report(delivery)
        if delivery.status != DeliveryStatus.DELIVERED:
            raise CommandError(f"Delivery #{delivery.pk} is {delivery.status}.")

    def _report(self, delivery: Delivery) -> None:
        detail = f"HTTP {delivery.last_status_code}" if delivery.last_status_code else ""
        if delivery.last_error:
            detail = f"{detail} {delivery.last_error}".strip()
        style = (
            self.style.SUCCESS if delivery.status == DeliveryStatus.DELIVERED else self.style.ERROR
        )
        self.stdout.write(
            style(
                f"Delivery #{delivery.pk}: {delivery.status}{' (' + detail + ')' if detail else ''}"
            )
        )

    # -- redeliver -------------------------------------------------------------------------------

    def handle_redeliver(
        self, *, failed: bool, ids: list[int], destination: str | None, **options: Any
    ) -> None:
        if not (failed or ids):
            raise CommandError(
                "Say what to redeliver: --failed and/or --id ID "
                "(optionally with --destination ALIAS)."
            )
        deliveries = Delivery.objects.all()
        selection = Q()
        if ids:
            missing = set(ids) - set(
                Delivery.objects.filter(pk__in=ids).values_list("pk", flat=True)
            )
            if missing:
                raise CommandError(f"No delivery with id {', '.join(map(str, sorted(missing)))}.")
            selection |= Q(pk__in=ids)
        if failed:
            selection |= Q(status=DeliveryStatus.FAILED)
        deliveries = deliveries.filter(selection)
        if destination:
            deliveries = deliveries.filter(destination=destination)
        count = redeliver(deliveries)
        self.info(
            self.style.SUCCESS(f"{count} deliver{'y' if count == 1 else 'ies'} queued again.")
        )

    # -- sweep -----------------------------------------------------------------------------------

    def handle_sweep(self, *, run: bool, **options: Any) -> None:
        result = run_sweep(enqueue=not run)
        due = result.due
        self.info(
            f"{result.released} expired lease(s) released; "
            f"{due} deliver{'y' if due == 1 else 'ies'} due."
        )
        if run:
            summary = run_due_deliveries(max_seconds=float("inf"), enqueue_successor=False)
            enqueue_follow_ups(summary)
            self.info(
                f"Delivered {summary.delivered}, retrying {summary.retrying}, "
                f"failed {summary.failed}."
            )
        elif due:
            if result.enqueued:
                self.info("A delivery run was enqueued.")
            else:
                raise CommandError(
                    "Could not enqueue a delivery run; see the log. "
                    "'publish_hooks sweep --run' delivers in this process."
                )
        # A site that runs the sweep from cron also (re)starts the sweep and prune tasks.
        ensure_upkeep(force=True)

    # -- prune -----------------------------------------------------------------------------------

    def handle_prune(
        self,
        *,
        days: int | None,
        dry_run: bool,
        batch_size: int,
        pause: float,
        **options: Any,
    ) -> None:
        days = days if days is not None else get_settings().RETENTION_DAYS
        if days is None or days < 0:
            raise CommandError("--days must be zero or more.")
        most = int(SETTING_LIMITS["RETENTION_DAYS"].maximum)
        if days > most:
            raise CommandError(f"--days must be at most {most}.")
        if not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be between 1 and 100000.")
        if not 0 <= pause <= 60:
            raise CommandError("--pause must be between 0 and 60 seconds.")
        cutoff = retention_cutoff(days)
        total = old_finished_events(days).count()
        if dry_run:
            self.info(f"{total} event(s) older than {days} day(s) would be deleted.")
            return
        if not total:
            self.info(f"No finished events older than {days} day(s).")
            return
        shown = [0]

        def progress(done: PruneResult) -> None:
            # A line per tenth of the way, however many batches that takes.
            if done.batches > 1 and done.events * 10 // total > shown[0]:
                shown[0] = done.events * 10 // total
                self.info(f"  {done.events}/{total} events deleted")

        done = prune(days, batch_size=batch_size, pause=pause, progress=progress)
        self.info(
            self.style.SUCCESS(
                f"Deleted {done.events} event(s) older than {days} day(s) "
                f"(before {timezone.localtime(cutoff):%Y-%m-%d %H:%M}), with their "
                f"{done.deliveries} deliveries and {done.attempts} attempts, "
                f"in {done.batches} batch(es)."
            )
        )

    # -- reconcile -------------------------------------------------------------------------------

    def handle_reconcile(self, *, since: str, grace: str, dry_run: bool, **options: Any) -> None:
        from wagtail_publish_hooks.reconcile import parse_duration, reconcile

        try:
            window, settle = parse_duration(since), parse_duration(grace)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        retention = get_settings().RETENTION_DAYS
        if isinstance(retention, int) and window > timedelta(days=retention):
            raise CommandError(
                f"--since {since} reaches beyond RETENTION_DAYS ({retention}): events older "
                "than that are pruned, and their publishes would be sent again."
            )
        if not dry_run and not get_settings().ENABLED:
            raise CommandError("Capture is disabled (WAGTAIL_PUBLISH_HOOKS['ENABLED'] is False).")
        now = timezone.now()
        found = reconcile(now - window, until=now - settle, dry_run=dry_run)
        for missing, event in found:
            if dry_run:
                self.info(f"Would record {missing.describe()}")
            elif event is not None:
                self.info(f"Recorded {event.event_id}: {missing.describe()}")
        recorded = sum(1 for _, event in found if event is not None)
        if dry_run:
            self.info(f"{len(found)} missing event(s) since {since} ago; nothing recorded.")
        elif found:
            self.info(self.style.SUCCESS(f"{recorded} missing event(s) recorded."))
        else:
            self.info(f"No missing events since {since} ago.")

    # -- enable ----------------------------------------------------------------------------------

    def handle_enable(self, *, alias: str, **options: Any) -> None:
        if DestinationState.enable(alias):
            self.info(self.style.SUCCESS(f"Destination {alias!r} is enabled again."))
        else:
            self.info(f"Destination {alias!r} was not disabled.")

    # -- reencrypt -------------------------------------------------------------------------------

    def handle_reencrypt(self, **options: Any) -> None:
        from wagtail_publish_hooks.encryption import DecryptionError, rotate, rotate_all
        from wagtail_publish_hooks.models import ManagedDestination

        done = 0
        failed = []
        for row in ManagedDestination.objects.order_by("alias"):
            try:
                row.secrets = [rotate(secret) for secret in row.secrets or []]
                row.options = rotate_all(row.options or {})
            except DecryptionError:
                failed.append(row.alias)
                continue
            row.save(update_fields=["secrets", "options", "updated_at"])  # encrypts plaintext
            done += 1
        self.info(f"Encrypted the secrets of {done} destination(s) with the current key.")
        if failed:
            raise CommandError(
                f"{len(failed)} destination(s) cannot be decrypted with the configured keys: "
                f"{', '.join(map(repr, failed))}. Put the key that encrypted them back (the "
                "previous SECRET_KEY into SECRET_KEY_FALLBACKS, or the previous key into "
                "ENCRYPTION_KEYS), or enter their secrets again in the admin."
            )


def _when(value: Any) -> str:
    moment = timezone.localtime(value)
    seconds = round((value - timezone.now()).total_seconds())
    relative = f"in {_span(seconds)}" if seconds >= 0 else f"{_span(-seconds)} ago"
    return f"{moment:%Y-%m-%d %H:%M:%S} ({relative})"


def _span(seconds: int) -> str:
    """A length of time as a person reads it: ``50 s``, ``12 min``, ``23 h 59 min``."""
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} days"
