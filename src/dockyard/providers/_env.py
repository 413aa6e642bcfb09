"""The one place dockyard's provider code looks at the process environment.

Provider SDKs read their own keys; dockyard only needs to know *whether* a key is
there, to fail early with a message that names the variable. The search adapters
(``providers.search``) talk HTTP themselves, so they get their key from here, as a
``SecretStr`` that prints as ``**********`` and so cannot end up in a log line or an
error message.
"""

from __future__ import annotations

import os

from pydantic import SecretStr


def env_var_is_set(name: str) -> bool:
    """True when the environment variable ``name`` exists and is not blank."""
    return bool(os.environ.get(name, "").strip())


def env_secret(name: str) -> SecretStr | None:
    """The environment variable ``name`` as a secret, or None when unset or blank."""
    value = os.environ.get(name, "").strip()
    return SecretStr(value) if value else None
