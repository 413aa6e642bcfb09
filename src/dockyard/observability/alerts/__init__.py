"""dockyard's own alerts, evaluated in process for deployments without Prometheus
(docs/observability.md, "Alerts").

``rules`` says what each kind of rule checks (from storage, so every process agrees),
``evaluator`` evaluates them under a database lease and sends what changed through the
``notifiers`` (Slack, signed webhook, e-mail); ``storage.alerts`` keeps the history.
"""

from dockyard.observability.alerts.evaluator import LEASE, AlertEvaluator, holder_id
from dockyard.observability.alerts.notifiers import Message, Notifier, build, deliver
from dockyard.observability.alerts.rules import budget_alert, evaluate

__all__ = [
    "LEASE",
    "AlertEvaluator",
    "Message",
    "Notifier",
    "budget_alert",
    "build",
    "deliver",
    "evaluate",
    "holder_id",
]
