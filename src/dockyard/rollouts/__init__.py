"""Gradual rollouts (docs/rollouts.md): a share of an assistant's users, threads, or named
keys and users, run a candidate prompt version or model; the rest stay on the stable
variant; the candidate is rolled back by itself when its quality or error rate crosses a
threshold, or promoted / aborted by hand.

``board``: every process's copy of the rollouts (from the database, refreshed each
second); ``assign``: the variant of a new run (an admission step of the run service);
``check``: the rollback check one process at a time runs; ``manage``: start, promote,
abort (the API routes and ``dockyard rollout``).
"""

from dockyard.rollouts.assign import assign, bucket, choose
from dockyard.rollouts.board import RolloutBoard, sync_config
from dockyard.rollouts.check import LEASE, RollbackCheck
from dockyard.rollouts.manage import RolloutManager

__all__ = [
    "LEASE",
    "RollbackCheck",
    "RolloutBoard",
    "RolloutManager",
    "assign",
    "bucket",
    "choose",
    "sync_config",
]
