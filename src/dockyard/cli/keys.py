"""``dockyard keys create | list | revoke``: API keys in the configured database."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from dockyard.cli.options import ConfigOpt, settings_or_exit
from dockyard.errors import DockyardError
from dockyard.settings import Settings
from dockyard.storage.base import ApiKey

app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)

_IN = re.compile(r"(\d+)([hdw])")
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_expires(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12h``, ``2w`` from now, or an ISO date / time (UTC unless it says)."""
    if text is None:
        return None
    now = now or datetime.now(UTC)
    if match := _IN.fullmatch(text.strip()):
        at = now + timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    else:
        try:
            at = datetime.fromisoformat(text.strip())
        except ValueError:
            raise typer.BadParameter(
                f"{text!r}: expected a duration such as 30d, 12h, 2w, or a date such as "
                "2027-01-31 (UTC)",
                param_hint="--expires",
            ) from None
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if at <= now:
        raise typer.BadParameter(f"{text!r} is in the past", param_hint="--expires")
    return at


def parse_policies(items: list[str]) -> dict[str, Any]:
    """``rate_limit.requests_per_minute=10`` items as {"rate_limit": {...}}."""
    out: dict[str, Any] = {}
    for item in items:
        path, sep, raw = item.partition("=")
        parts = path.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise typer.BadParameter(
                f"{item!r}: expected POLICY.FIELD=VALUE, e.g. rate_limit.requests_per_minute=60",
                param_hint="--policy",
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(parts[0], {})[parts[1]] = value
    return out


def _scopes(values: list[str]) -> list[str]:
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _public(key: ApiKey) -> dict[str, Any]:
    """A key as shown (never its hash), its times as ISO strings."""
    from dockyard.policies.auth import public_key

    out = public_key(key)
    for name in ("created_at", "expires_at", "revoked_at"):
        if out[name] is not None:
            out[name] = out[name].isoformat()
    return out


async def _create(settings: Settings, row: ApiKey) -> ApiKey:
    from dockyard.storage.database import open_storage

    async with open_storage(settings) as storage:
        return await storage.keys.create(row)


@app.command()
def create(
    tenant: Annotated[str, typer.Option(help="the tenant the key acts for")],
    name: Annotated[str | None, typer.Option(help="a label for people")] = None,
    scopes: Annotated[
        list[str] | None, typer.Option("--scopes", help="admin (manages keys, sees all tenants)")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="30d, 12h, 2w from now, or a date (UTC)")
    ] = None,
    policy: Annotated[
        list[str] | None,
        typer.Option(help="the key's own limit, e.g. rate_limit.requests_per_minute=60"),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    config: ConfigOpt = None,
) -> None:
    """Create a key; it is printed once and never stored."""
    from dockyard.policies.auth import key_record, new_key

    if not tenant.strip():
        raise typer.BadParameter("give the tenant a name", param_hint="--tenant")
    settings = settings_or_exit(config)
    key = new_key()
    try:
        row = key_record(
            key,
            tenant=tenant.strip(),
            name=name,
            scopes=_scopes(scopes or []),
            policies=parse_policies(policy or []),
            expires_at=parse_expires(expires),
        )
    except DockyardError as e:
        raise typer.BadParameter(e.message) from None
    row = asyncio.run(_create(settings, row))
    shown = {**_public(row), "key": key}
    if json_output:
        typer.echo(json.dumps(shown))
        return
    console.print(f"key [bold]{row['key_id']}[/] for tenant [bold]{row['tenant']}[/]:")
    console.print(key, markup=False, highlight=False)
    err.print("[dim]shown once: store it now; only its hash is kept[/]")


@app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="revoked keys too")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print JSON rows")] = False,
    config: ConfigOpt = None,
) -> None:
    """The keys (never the keys themselves: their first characters)."""
    from dockyard.storage.database import open_storage

    settings = settings_or_exit(config)

    async def read() -> list[ApiKey]:
        async with open_storage(settings) as storage:
            return await storage.keys.list(tenant=tenant, include_revoked=all_keys)

    rows = asyncio.run(read())
    if json_output:
        typer.echo(json.dumps([_public(r) for r in rows]))
        return
    if not rows:
        err.print("no keys" + (f" for tenant {tenant}" if tenant else ""))
        return
    table = Table()
    # The id is what `keys revoke` takes: never cut, whatever the terminal's width.
    table.add_column("id", no_wrap=True, min_width=len("key_") + 16)
    for name in ("tenant", "status", "key", "expires", "created", "scopes", "name"):
        table.add_column(name)
    now = datetime.now(UTC)
    for r in rows:
        expires = r["expires_at"]
        status = (
            "revoked"
            if r["revoked_at"] is not None
            else "expired"
            if expires is not None and expires <= now
            else "active"
        )
        table.add_row(
            r["key_id"],
            r["tenant"],
            status,
            r["prefix"] + "…",
            expires.strftime("%Y-%m-%d") if expires else "never",
            r["created_at"].strftime("%Y-%m-%d"),
            ",".join(r["scopes"]),
            r["name"] or "",
        )
    console.print(table)


@app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="the key's id (keys list shows it)")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: every server refuses it within auth.cache_seconds."""
    from dockyard.storage.database import open_storage

    settings = settings_or_exit(config)

    async def run() -> ApiKey | None:
        async with open_storage(settings) as storage:
            return await storage.keys.revoke(key_id, datetime.now(UTC))

    row = asyncio.run(run())
    if row is None:
        err.print(f"no key {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {row['key_id']} (tenant {row['tenant']})")
