"""SQLAlchemy backend for assistants, threads, runs and crons: SQLite (inline) and PostgreSQL."""

from dockyard.storage.sql._common import (
    Conn,
    Engine,
    json_contains,
    json_match,
    register_sqlite_functions,
    utcnow,
)
from dockyard.storage.sql.assistants import SqlAssistants
from dockyard.storage.sql.crons import SqlCrons
from dockyard.storage.sql.evals import SqlEvals
from dockyard.storage.sql.keys import SqlKeys
from dockyard.storage.sql.prompts import SqlPrompts
from dockyard.storage.sql.rollouts import SqlRollouts
from dockyard.storage.sql.runs import SqlRuns
from dockyard.storage.sql.threads import SqlThreads, new_thread_row
from dockyard.storage.sql.usage import SqlUsage

__all__ = [
    "Conn",
    "Engine",
    "SqlAssistants",
    "SqlCrons",
    "SqlEvals",
    "SqlKeys",
    "SqlPrompts",
    "SqlRollouts",
    "SqlRuns",
    "SqlThreads",
    "SqlUsage",
    "json_contains",
    "json_match",
    "new_thread_row",
    "register_sqlite_functions",
    "utcnow",
]
