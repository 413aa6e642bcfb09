"""What a cron schedule means: its next firing time after a moment, in its timezone.

The API validates schedules here and every CronStore advances ``next_run_date``
here, so all of them agree on the arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from dockyard.errors import InvalidRequestError

SCHEDULE_HELP = (
    "use 5 fields 'minute hour day-of-month month day-of-week' (e.g. '0 9 * * 1-5'), "
    "6 with seconds last (e.g. '0 * * * * */30'), or @hourly, @daily, @weekly, @monthly, "
    "@yearly"
)


def check_schedule(schedule: str) -> str:
    """``schedule`` if croniter reads it as 5 or 6 fields or an @alias; InvalidRequestError
    otherwise."""
    # croniter also takes a 7th (year) field; Agent Server clients write classic
    # cron, so that extension is refused rather than given a meaning nobody expects.
    fields = len(schedule.split())
    shape_ok = fields in (5, 6) or (fields == 1 and schedule.startswith("@"))
    if not shape_ok or not croniter.is_valid(schedule):
        raise InvalidRequestError(
            f"schedule {schedule!r} is not a cron expression; {SCHEDULE_HELP}",
            code="invalid_schedule",
            param="schedule",
        )
    return schedule


def zone(timezone: str | None) -> ZoneInfo:
    """The IANA zone named ``timezone`` (UTC when None); InvalidRequestError if unknown."""
    if timezone is None:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequestError(
            f"timezone {timezone!r} is not an IANA time zone name; use e.g. 'UTC', "
            "'Europe/Paris' or 'America/New_York'",
            code="invalid_timezone",
            param="timezone",
        ) from None


def next_run(
    schedule: str, timezone: str | None, after: datetime, end_time: datetime | None = None
) -> datetime | None:
    """The first firing strictly after ``after`` (UTC), or None when it would be past
    ``end_time``. The schedule is read in ``timezone`` so that '0 9 * * *' stays at
    09:00 local time across daylight-saving changes."""
    local = after.astimezone(zone(timezone))
    nxt: datetime = croniter(schedule, local).get_next(datetime)
    nxt = nxt.astimezone(UTC)
    if end_time is not None and nxt > end_time:
        return None
    return nxt
