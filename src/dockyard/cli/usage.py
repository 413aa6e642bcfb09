"""``dockyard usage``: what model calls used and cost, per UTC day and per tenant, key,
assistant or model, read from the configured database's usage ledger."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dockyard.settings import Settings
from dockyard.storage.base import UsageGroup, UsageSummary


class By(StrEnum):
    tenant = "tenant"
    key = "key"
    assistant = "assistant"
    model = "model"
    variant = "variant"


_AGO = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``24h``, ``30m``, ``2w`` ago, or an ISO date / time (UTC unless it says)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    if match := _AGO.fullmatch(text.strip()):
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected a duration such as 7d, 24h, 30m, 2w, or a date such as "
            "2026-12-01 (UTC)",
            param_hint="--since",
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


async def read_usage(
    settings: Settings, by: UsageGroup, since: datetime | None
) -> tuple[list[UsageSummary], dict[str, str]]:
    """The ledger's sums, and the names of the assistants they mention."""
    from dockyard.storage.database import open_storage

    async with open_storage(settings) as storage:
        rows = await storage.usage.summary(by=by, since=since)
        names: dict[str, str] = {}
        if by == "assistant":
            for aid in {r["group"] for r in rows if r["group"]}:
                assistant = await storage.assistants.get(aid)
                if assistant is not None:
                    names[aid] = assistant["name"]
    return rows, names


def _cost(cost: float | None, unpriced: int) -> str:
    if cost is None:
        return "unknown"
    text = f"{cost:.6f}"
    return f"{text} (+{unpriced} unpriced)" if unpriced else text


def _label(group: str | None, names: dict[str, str]) -> str:
    if group is None:
        return "-"
    name = names.get(group)
    return f"{name} ({group[:8]})" if name and name != group else group


def usage_table(rows: list[UsageSummary], by: UsageGroup, names: dict[str, str]) -> Table:
    table = Table(title=f"model usage per day and {by} (UTC)")
    table.add_column("day")
    table.add_column(by)
    for name in ("calls", "input", "cached input", "output"):
        table.add_column(name, justify="right")
    table.add_column("cost USD", justify="right")
    total: dict[str, Any] = dict.fromkeys(("calls", "input", "cached", "output", "unpriced"), 0)
    total_cost: float | None = None
    for r in rows:
        table.add_row(
            r["day"].isoformat(),
            _label(r["group"], names),
            str(r["calls"]),
            str(r["input_tokens"]),
            str(r["cached_input_tokens"]),
            str(r["output_tokens"]),
            _cost(r["cost_usd"], r["unpriced_calls"]),
        )
        total["calls"] += r["calls"]
        total["input"] += r["input_tokens"]
        total["cached"] += r["cached_input_tokens"]
        total["output"] += r["output_tokens"]
        total["unpriced"] += r["unpriced_calls"]
        if r["cost_usd"] is not None:
            total_cost = (total_cost or 0.0) + r["cost_usd"]
    if rows:
        table.add_section()
        table.add_row(
            "total",
            "",
            str(total["calls"]),
            str(total["input"]),
            str(total["cached"]),
            str(total["output"]),
            _cost(total_cost, total["unpriced"]),
        )
    return table


def _jsonable(row: UsageSummary, names: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {**row, "day": row["day"].isoformat()}
    group = row["group"]
    if group is not None and group in names:
        out["name"] = names[group]
    return out


def print_usage(settings: Settings, by: By, since: str | None, *, as_json: bool) -> None:
    group: UsageGroup = by.value
    rows, names = asyncio.run(read_usage(settings, group, parse_since(since)))
    if as_json:
        typer.echo(json.dumps([_jsonable(r, names) for r in rows]))
        return
    console = Console()
    if not rows:
        console.print(f"no model usage recorded{f' since {since}' if since else ''}")
        return
    console.print(usage_table(rows, group, names))
