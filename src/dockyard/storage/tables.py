"""dockyard's own tables, one schema for SQLite and PostgreSQL.

Changes go through a new Alembic revision in ``migrations/versions`` (append-only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect

metadata = sa.MetaData()

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite drops the offset)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use datetime.now(UTC)")
        return (
            value.astimezone(UTC)
            if dialect.name != "sqlite"
            else value.astimezone(UTC).replace(tzinfo=None)
        )

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


assistants = sa.Table(
    "assistants",
    metadata,
    sa.Column("assistant_id", sa.String(64), primary_key=True),
    sa.Column("graph_id", sa.String(255), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("context", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

assistant_versions = sa.Table(
    "assistant_versions",
    metadata,
    sa.Column(
        "assistant_id",
        sa.String(64),
        sa.ForeignKey("assistants.assistant_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("graph_id", sa.String(255), nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("context", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

threads = sa.Table(
    "threads",
    metadata,
    sa.Column("thread_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("values", JSONType, nullable=True),
    sa.Column("interrupts", JSONType, nullable=False),
    sa.Column("graph_id", sa.String(255), nullable=True),
    sa.Column("ttl", JSONType, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime, nullable=False, index=True),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column(
        "thread_id",
        sa.String(64),
        sa.ForeignKey("threads.thread_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("assistant_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("multitask_strategy", sa.String(16), nullable=False),
    # The validated request payload: everything the executor needs to run it.
    sa.Column("kwargs", JSONType, nullable=False),
    sa.Column("temporary", sa.Boolean, nullable=False, default=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", JSONType, nullable=True),
    sa.Column("cancel_reason", sa.String(32), nullable=True),
    sa.Column("not_before", UTCDateTime, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("ended_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # 0002: the executing process and until when its claim holds.
    sa.Column("worker_id", sa.String(128), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime, nullable=True),
    sa.Column("cancel_requested", sa.String(16), nullable=True),
    sa.Column("webhook", JSONType, nullable=True),
    # 0004: what its model calls used and cost, over all its attempts (runtime/usage.py).
    sa.Column("usage", JSONType, nullable=True),
    sa.Index("ix_runs_thread_created", "thread_id", "created_at"),
    sa.Index("ix_runs_status_created", "status", "created_at"),
    sa.Index("ix_runs_status_lease", "status", "lease_expires_at"),
)

crons = sa.Table(
    "crons",
    metadata,
    sa.Column("cron_id", sa.String(64), primary_key=True),
    sa.Column("assistant_id", sa.String(64), nullable=False, index=True),
    # A cron on a thread goes with its thread; without one, each firing is a stateless run.
    sa.Column(
        "thread_id",
        sa.String(64),
        sa.ForeignKey("threads.thread_id", ondelete="CASCADE"),
        nullable=True,
        index=True,
    ),
    sa.Column("schedule", sa.String(255), nullable=False),
    sa.Column("timezone", sa.String(64), nullable=True),
    # The run request each firing sends (input, config, context, stream options...).
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("metadata", JSONType, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("end_time", UTCDateTime, nullable=True),
    # NULL once the schedule has no firing left before end_time.
    sa.Column("next_run_date", UTCDateTime, nullable=True, index=True),
    sa.Column("on_run_completed", sa.String(16), nullable=True),
    sa.Column("user_id", sa.String(255), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# 0004: one row per run attempt and model. No foreign keys: spend outlives the runs and
# threads it came from (stateless runs, deleted threads) for budgets and reports.
usage_ledger = sa.Table(
    "usage_ledger",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("assistant_id", sa.String(64), nullable=False),
    # Filled once keys and tenants exist; nullable so that they slot in.
    sa.Column("tenant_id", sa.String(255), nullable=True),
    sa.Column("key_id", sa.String(64), nullable=True),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # UTC
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("calls", sa.Integer, nullable=False),
    sa.Column("input_tokens", sa.BigInteger, nullable=False),
    sa.Column("output_tokens", sa.BigInteger, nullable=False),
    sa.Column("cached_input_tokens", sa.BigInteger, nullable=False),
    sa.Column("cache_write_tokens", sa.BigInteger, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=True),  # NULL: the model has no price
    # 0011: "<rollout>:<stable|candidate>" for a run a rollout assigned, else NULL.
    sa.Column("variant", sa.String(160), nullable=True),
    # What reports and budgets ask: everything, or one tenant / key / assistant, since T.
    sa.Index("ix_usage_ledger_created", "created_at"),
    sa.Index("ix_usage_ledger_tenant_created", "tenant_id", "created_at"),
    sa.Index("ix_usage_ledger_key_created", "key_id", "created_at"),
    sa.Index("ix_usage_ledger_assistant_created", "assistant_id", "created_at"),
)

# 0005: API keys. Only the key's sha256 is kept: a key is 256 random bits, so a slow hash
# would buy nothing and cost every request; the prefix lets a person tell keys apart.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(64), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("tenant", sa.String(255), nullable=False, index=True),
    sa.Column("name", sa.String(255), nullable=True),
    sa.Column("scopes", JSONType, nullable=False),
    # The key's own policy overrides ({"rate_limit": {...}, "budget": {...}}).
    sa.Column("policies", JSONType, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
)

# Budgets (storage/budgets.py). A line's name is "<scope>|<period>|<period start day>".
# One row per hold and line: what a running run or gateway call holds against a budget.
budget_holds = sa.Table(
    "budget_holds",
    metadata,
    sa.Column("hold_id", sa.String(64), primary_key=True),
    sa.Column("line", sa.String(400), primary_key=True),
    sa.Column("scope", sa.String(300), nullable=False),
    sa.Column("period", sa.String(8), nullable=False),
    sa.Column("limit_nanos", sa.BigInteger, nullable=False),
    sa.Column("amount_nanos", sa.BigInteger, nullable=False),
    # Counts until then; the row is kept until forget_at so that a late settle still
    # finds which budgets the run was on.
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("forget_at", UTCDateTime, nullable=False, index=True),
    sa.Index("ix_budget_holds_line_expires", "line", "expires_at"),
)
# A row per line and period that holds lock (takers of one line queue on it), with the
# period's spend: read from the ledger once (NULL until then), raised by each settle.
budget_locks = sa.Table(
    "budget_locks",
    metadata,
    sa.Column("line", sa.String(400), primary_key=True),
    sa.Column("takes", sa.BigInteger, nullable=False),
    sa.Column("spent_nanos", sa.BigInteger, nullable=True),
    sa.Column("forget_at", UTCDateTime, nullable=False, index=True),
)
# Thresholds reached, once per line and period (the budget.threshold event went out).
budget_marks = sa.Table(
    "budget_marks",
    metadata,
    sa.Column("line", sa.String(400), primary_key=True),
    sa.Column("threshold", sa.Float, primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# 0007: alerts (observability/alerts). One row per episode of an alert: opened firing,
# closed resolved. At most one firing row per alert key (the partial unique index), so
# two processes cannot open the same alert twice.
alert_history = sa.Table(
    "alert_history",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("alert_key", sa.String(400), nullable=False),
    sa.Column("rule", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # firing | resolved
    sa.Column("summary", sa.Text, nullable=False),
    sa.Column("details", JSONType, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("resolved_at", UTCDateTime, nullable=True),
    # An alert that clears by itself then (a budget's period ends); NULL: when its rule says.
    sa.Column("ends_at", UTCDateTime, nullable=True),
    # NULL: not sent yet. Each send (firing, reminder) counts in notifications.
    sa.Column("notified_at", UTCDateTime, nullable=True),
    sa.Column("notifications", sa.Integer, nullable=False),
    # What each notifier answered the last time: {"name": "ok" | "error: ..."}.
    sa.Column("deliveries", JSONType, nullable=False),
    sa.Index("ix_alert_history_started", "started_at"),
    sa.Index(
        "ux_alert_history_firing",
        "alert_key",
        unique=True,
        sqlite_where=sa.text("state = 'firing'"),
        postgresql_where=sa.text("state = 'firing'"),
    ),
)

# How each run ended, written by the alert observer of the process that ran it: the
# window rules read this, not ``runs``, whose stateless rows are deleted as they end.
# Pruned by the evaluator past the longest window.
run_outcomes = sa.Table(
    "run_outcomes",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("assistant_id", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("ended_at", UTCDateTime, nullable=False),
    sa.Column("seconds", sa.Float, nullable=False),  # created to ended
    # 0011: the rollout variant the run was assigned (stable | candidate), else NULL.
    sa.Column("variant", sa.String(16), nullable=True),
    # Covers what the rules read: a window's counts and latencies come from the index.
    sa.Index("ix_run_outcomes_window", "ended_at", "status", "assistant_id", "seconds"),
)

# Who does a job that one process at a time must do (the alert evaluator), until when.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# A run's quality score (0..1), written by whatever scores runs (the quality gate) and
# read by the quality alert rule.
quality_scores = sa.Table(
    "quality_scores",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("assistant_id", sa.String(64), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    # 0010: the rollout variant the run was assigned (variants.ROLLOUT_KEY); null: none.
    sa.Column("variant", sa.String(32), nullable=True),
)
# 0008: the prompt registry (storage/prompts.py). Versions are immutable rows; a label is
# a pointer with its moves kept in prompt_label_moves (rollback reads them back).
prompt_versions = sa.Table(
    "prompt_versions",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("template", sa.Text, nullable=True),
    sa.Column("messages", JSONType, nullable=False),
    sa.Column("variables", JSONType, nullable=False),
    sa.Column("sample", JSONType, nullable=True),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("author", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
)
prompt_labels = sa.Table(
    "prompt_labels",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("label", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
prompt_label_moves = sa.Table(
    "prompt_label_moves",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("label", sa.String(64), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("author", sa.String(255), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_prompt_label_moves_name_label", "name", "label", "id"),
)
# One row (id 1): raised by every registry write; what the processes' caches poll.
prompt_revision = sa.Table(
    "prompt_revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

# 0009: evaluation (dockyard eval). An experiment, and one row per dataset item and variant.
eval_experiments = sa.Table(
    "eval_experiments",
    metadata,
    sa.Column("experiment_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("assistant", sa.String(255), nullable=False),
    sa.Column("dataset", sa.String(1000), nullable=False),
    sa.Column("dataset_hash", sa.String(64), nullable=False),
    sa.Column("items", sa.Integer, nullable=False),
    sa.Column("variants", JSONType, nullable=False),
    sa.Column("scorers", JSONType, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", JSONType, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
)
eval_results = sa.Table(
    "eval_results",
    metadata,
    sa.Column(
        "experiment_id",
        sa.String(64),
        sa.ForeignKey("eval_experiments.experiment_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("variant", sa.String(64), primary_key=True),
    sa.Column("item_id", sa.String(255), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("input", JSONType, nullable=False),
    sa.Column("expected", JSONType, nullable=True),
    sa.Column("output", sa.Text, nullable=True),
    sa.Column("score", sa.Float, nullable=True),
    sa.Column("parts", JSONType, nullable=False),
    sa.Column("reasons", JSONType, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=True),
    sa.Column("input_tokens", sa.Integer, nullable=False),
    sa.Column("output_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("thread_id", sa.String(64), nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# 0011: gradual rollouts (storage/rollouts.py, docs/rollouts.md): each one's definition
# and where it stands (active, promoted, aborted, rolled_back), when and why.
rollouts = sa.Table(
    "rollouts",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("assistant", sa.String(255), nullable=False),
    sa.Column("definition", JSONType, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # config | api
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("changed_by", sa.String(255), nullable=True),
    sa.Column("details", JSONType, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
