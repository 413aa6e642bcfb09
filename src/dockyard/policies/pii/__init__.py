"""PII: personal data found in model input, model output and tool results is masked,
redacted, hashed or refused (``policies.pii``); logs are redacted always.

    policy = PiiPolicy.from_config(settings.policies.pii)
    policy.scan("mail hong@example.com")     # [Finding(entity='email', start=5, end=21)]
    policy.apply("call 010-1234-5678")       # 'call ***-****-5678' (action: mask)
    protect_input(policy, messages)           # before a model call
    protect_output(policy, ai_message)        # after it

The engine is regular expressions plus validators (dates and check digits for RRNs,
Luhn and issuer prefixes for cards, ``ipaddress`` for IPs): it beat Microsoft Presidio on
the corpus in ``tests/policies/pii_corpus/`` (docs/perf.md, "PII engines").
"""

from dockyard.policies.pii.detect import ENTITIES, Finding, luhn_valid, rrn_valid
from dockyard.policies.pii.logs import PiiLogFilter, install_log_redaction
from dockyard.policies.pii.messages import (
    PiiMessageGuard,
    apply_message,
    protect_input,
    protect_output,
)
from dockyard.policies.pii.policy import PiiPolicy

__all__ = [
    "ENTITIES",
    "Finding",
    "PiiLogFilter",
    "PiiMessageGuard",
    "PiiPolicy",
    "apply_message",
    "install_log_redaction",
    "luhn_valid",
    "protect_input",
    "protect_output",
    "rrn_valid",
]
