"""The package's own signals."""

from django.dispatch import Signal

#: Sent inside the transaction that wrote new deliveries (an event recorded by the outbox, an
#: operational event), so that the task queue is told without the writers knowing it:
#: :mod:`wagtail_publish_hooks.tasks` receives it and enqueues their delivery run.
#: provides args: using (the database alias), due_now (whether any is due at once),
#: due_later (the later times at which others are first due, sorted)
deliveries_recorded = Signal()
