"""The one place dockyard's provider code looks at the process environment.

Provider SDKs read their own keys; dockyard only needs to know *whether* a key is
there, to fail early with a message that names the variable. The value never leaves
this function, so it cannot end up in a log line or an error message.
"""

from __future__ import annotations

import os


def env_var_is_set(name: str) -> bool:
    """True when the environment variable ``name`` exists and is not blank."""
    return bool(os.environ.get(name, "").strip())
