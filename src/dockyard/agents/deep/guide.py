"""What the researcher sub-agent searches: the production-deployment guide's advice, as notes.

A small, fixed corpus (the points of ``003``, the Deep Agents production guide, with
where dockyard covers each), searched by word overlap: enough for the example's
researcher to find something real to report on, with no network and no key.
"""

from __future__ import annotations

import re

NOTES: tuple[tuple[str, str], ...] = (
    (
        "checkpointer checkpointing checkpoints persistence restart",
        "Use the PostgreSQL checkpointer in production: every step of a thread is saved, so "
        "a run survives a restart and an interrupted run resumes where it paused. "
        "dockyard stores checkpoints in the configured database (SQLite or PostgreSQL).",
    ),
    (
        "checkpoint cleanup backup",
        "Prune old checkpoints (the guide keeps 30 days) and back the checkpoint database up "
        "on a schedule; a thread's history is its recovery point.",
    ),
    (
        "connection pool",
        "Pool database connections (10 base, 20 overflow, pre-ping, recycle every 30 "
        "minutes) so that many agent pods share PostgreSQL without exhausting it.",
    ),
    (
        "cache redis",
        "Cache model answers in Redis with a TTL (an hour in the guide) under a "
        "deterministic key of model, messages, tools and temperature.",
    ),
    (
        "backend composite state store memories",
        "Pick the file backend per path: StateBackend for scratch files that live and die "
        "with the thread, StoreBackend under /memories/ for what must outlive it, combined "
        "with a CompositeBackend.",
    ),
    (
        "sandbox execute docker",
        "Run shell commands only in an isolated sandbox backend, never on the host.",
    ),
    (
        "human approval approvals hitl interrupt dangerous review",
        "Require human approval for dangerous actions: every write_file and edit_file, and "
        "execute when the command deletes or drops (rm, delete, drop, truncate). HITL needs "
        "a checkpointer, since the run pauses and resumes later.",
    ),
    (
        "input validation injection",
        "Validate input before the model sees it: block prompt-injection patterns such as "
        "'ignore previous instructions' and special tokens.",
    ),
    (
        "secrets api keys",
        "Keep API keys out of code and logs; load them from a secret store or encrypted "
        "environment variables.",
    ),
    (
        "observability tracing metrics logging",
        "Trace every run, export Prometheus metrics for model calls, latency and tool calls, "
        "and log in structured JSON.",
    ),
    (
        "scaling replicas kubernetes",
        "Scale agent pods horizontally (HPA); keep them stateless, with state in "
        "PostgreSQL and Redis.",
    ),
    (
        "rate limit",
        "Rate-limit per user and per key so one client cannot exhaust the model budget.",
    ),
    (
        "cost model routing tokens",
        "Route simple work to a cheaper model, and watch token usage per run and per day.",
    ),
    (
        "health readiness",
        "Expose health and readiness endpoints so the load balancer only sends traffic to "
        "ready pods.",
    ),
)
"""(keywords, note): one piece of the guide's advice each."""

_WORD = re.compile(r"[a-z0-9]+")
# Words every question has: matching on them would rank every note alike.
_STOP = frozenset(
    re.findall(
        r"\w+",
        "a about an and are as at be by do does for from guide how in is it of on or report "
        "say says short so that the this to what when why with write",
    )
)


def search_notes(query: str, limit: int = 3) -> list[str]:
    """The notes sharing the most words with ``query`` (best first), at most ``limit``."""
    words = set(_WORD.findall(query.lower())) - _STOP
    scored = []
    for index, (keywords, note) in enumerate(NOTES):
        key_hits = len(words & set(keywords.split()))
        text_hits = len(words & set(_WORD.findall(note.lower())))
        score = 3 * key_hits + text_hits
        if key_hits or text_hits >= 2:
            scored.append((-score, index, note))
    return [note for _, _, note in sorted(scored)[:limit]]
