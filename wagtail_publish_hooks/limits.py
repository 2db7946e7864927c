"""The bounds of every number the package reads from settings and from destination ``OPTIONS``.

One table, one parser. The system checks (``checks/``, and through them the admin's
destination form) refuse a value outside these bounds; at run time, where the checks may have
been silenced or a row written to the database directly, the same parser stands between the
value and a ``sleep()``, a ``timedelta`` or a socket timeout: a destination's option out of
bounds makes its backend refuse to be built (a failure recorded on its deliveries, naming the
key and the bounds), and a global setting out of bounds is replaced by its default or by the
nearest bound (:func:`setting_number`), with an error logged.

A leaf: it imports nothing from the package, so that any module may use it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Why a value was refused: of a kind that is no number of the wanted sort (a string, a
#: boolean, a fraction where an integer is wanted), not finite, below the bounds, above them.
WRONG_KIND = "kind"
NOT_FINITE = "finite"
TOO_LOW = "low"
TOO_HIGH = "high"


@dataclass(frozen=True)
class Limit:
    """The numbers a key accepts: ``minimum`` to ``maximum`` (``minimum`` excluded when
    ``above_minimum``), integers only when ``integer``, always finite."""

    minimum: float
    maximum: float
    integer: bool = False
    above_minimum: bool = False
    unit: str = "seconds"

    def describe(self) -> str:
        """The bounds in words: ``a number greater than zero and at most 300 (seconds)``."""
        kind = "an integer" if self.integer else "a number"
        if (self.minimum == 0 and self.above_minimum) or (self.integer and self.minimum == 1):
            lower = "greater than zero"
        elif self.minimum == 0:
            lower = "zero or more"
        elif self.above_minimum:
            lower = f"greater than {self.minimum:g}"
        else:
            lower = f"at least {self.minimum:g}"
        text = f"{kind} {lower}"
        if math.isfinite(self.maximum):
            text += f" and at most {self.maximum:g}"
        if self.unit:
            text += f" ({self.unit})"
        return text


DAY = 24 * 3600

#: Destination ``OPTIONS`` read as numbers, by every backend that has them.
OPTION_LIMITS: dict[str, Limit] = {
    # Seconds a request may take in all (TIMEOUT), or to connect (CONNECT_TIMEOUT).
    "TIMEOUT": Limit(0, 300, above_minimum=True),
    "CONNECT_TIMEOUT": Limit(0, 300, above_minimum=True),
    # A merging window longer than a day would hold a publish's purge or build back for days.
    "COALESCE_SECONDS": Limit(0, DAY),
    # Slack: seconds between two messages to one webhook (Slack asks for about 1).
    "MIN_INTERVAL": Limit(0, 60),
    # Frontend cache: URLs per purge request (an int, or one per Wagtail backend name).
    "BATCH_SIZE": Limit(1, 10_000, integer=True, unit="URLs"),
    # Frontend cache: levels of pages above a page purged with it (Wagtail's trees are < 64).
    "PURGE_ANCESTORS": Limit(0, 100, integer=True, unit="levels"),
}

#: Global settings (``WAGTAIL_PUBLISH_HOOKS[...]``) read as numbers; ``RETRY_SCHEDULE`` is the
#: bound of each of its delays.
SETTING_LIMITS: dict[str, Limit] = {
    "MAX_ATTEMPTS": Limit(1, 100, integer=True, unit="attempts"),
    "RETRY_SCHEDULE": Limit(0, 7 * DAY),
    "LEASE_SECONDS": Limit(1, DAY, integer=True),
    "MAX_RUN_SECONDS": Limit(0, 3600, above_minimum=True),
    "BATCH_SIZE": Limit(1, 1000, integer=True, unit="deliveries"),
    "CONCURRENCY": Limit(1, 64, integer=True, unit="threads"),
    "DESTINATIONS_REFRESH_SECONDS": Limit(0, 3600),
    "RETENTION_DAYS": Limit(1, 36_500, integer=True, unit="days"),
    # A destination failing with no success for this long is disabled (None: never).
    "DISABLE_AFTER_FAILING_FOR": Limit(60, 365 * DAY),
    # How long a publish_hooks.delivery_failed event gathers further failures before it is sent.
    "OPERATIONAL_COALESCE_SECONDS": Limit(0, DAY),
}


class OutOfLimits(ValueError):
    """A number outside its bounds. Its text names the key, the kind of value and the bounds,
    never the value itself: safe for logs, the admin and a delivery's recorded error."""

    def __init__(self, key: str, limit: Limit, problem: str, kind: str) -> None:
        self.key = key
        self.limit = limit
        self.problem = problem
        self.kind = kind
        super().__init__(f"{key} must be {limit.describe()}, not {kind}")

    @property
    def requirement(self) -> str:
        """``must be …, not …``: the text without the key."""
        return f"must be {self.limit.describe()}, not {self.kind}"


def kind_of(value: Any) -> str:
    """What a value is, in words, without showing it (a value may be anything a user typed)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    return f"a {type(value).__name__}"


def parse_number(key: str, value: Any, limit: Limit) -> int | float:
    """``value`` if it is a number within ``limit``; else raise :class:`OutOfLimits`.

    Booleans, strings and every other non-number are refused, as are NaN and the infinities,
    and a float where an integer is wanted (``3.0`` too: JSON tells them apart).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OutOfLimits(key, limit, WRONG_KIND, kind_of(value))
    if limit.integer and not isinstance(value, numbers.Integral):
        if isinstance(value, float) and not math.isfinite(value):
            raise OutOfLimits(key, limit, NOT_FINITE, _non_finite(value))
        raise OutOfLimits(key, limit, WRONG_KIND, "a number with a decimal point")
    if isinstance(value, numbers.Integral):
        number: int | float = int(value)
    else:
        number = float(value)
        if not math.isfinite(number):
            raise OutOfLimits(key, limit, NOT_FINITE, _non_finite(number))
    if number < limit.minimum or (limit.above_minimum and number == limit.minimum):
        kind = "zero" if number == 0 else "a negative number" if number < 0 else "a smaller number"
        raise OutOfLimits(key, limit, TOO_LOW, kind)
    if number > limit.maximum:
        raise OutOfLimits(key, limit, TOO_HIGH, f"a number above {limit.maximum:g}")
    return number


def _non_finite(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "infinity" if value > 0 else "minus infinity"


def option_number(
    options: Mapping[str, Any], key: str, default: int | float, limit: Limit | None = None
) -> int | float:
    """A destination option read as a number: its value within bounds, ``default`` if absent,
    else :class:`OutOfLimits` (a backend built from such options refuses to be built)."""
    if key not in options or options[key] is None:
        return default
    return parse_number(key, options[key], limit or OPTION_LIMITS[key])


def setting_number(key: str, value: Any, default: int | float) -> tuple[int | float, str | None]:
    """A global setting read as a number at run time, where nothing may stop a worker.

    Returns the value to use and, when it is not the one given, why: a number beyond the bounds
    (an infinity included) is taken to the nearest bound, anything else (NaN, a string, a
    fraction where an integer is wanted) is replaced by ``default``.
    """
    limit = SETTING_LIMITS[key]
    try:
        return parse_number(key, value, limit), None
    except OutOfLimits as exc:
        if exc.problem in (TOO_LOW, TOO_HIGH) or (
            exc.problem == NOT_FINITE and not math.isnan(value)
        ):
            bound = limit.minimum if exc.problem == TOO_LOW or value < 0 else limit.maximum
            if limit.above_minimum and bound == limit.minimum:
                return default, f"{exc}; the default {default:g} is used"
            used: int | float = int(bound) if limit.integer else bound
            return used, f"{exc}; {used:g} is used"
        return default, f"{exc}; the default {default:g} is used"
