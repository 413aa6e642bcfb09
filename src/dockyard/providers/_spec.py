"""Parsing ``"provider:model"`` strings and checking a provider can be used at all."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import SecretStr

from dockyard.errors import ConfigError, ProviderSetupError
from dockyard.extras import require_extra
from dockyard.providers._env import env_var_is_set

# Placeholder key for OpenAI-compatible servers (vLLM, Ollama, llama.cpp) that ignore
# authentication; the openai SDK refuses to build a client without some key.
LOCAL_SERVER_API_KEY = "not-needed"


@dataclass(frozen=True)
class SdkProvider:
    """A provider backed by a vendor SDK and its LangChain integration."""

    name: str
    extra: str
    key_env_var: str


ANTHROPIC = SdkProvider("anthropic", "anthropic", "ANTHROPIC_API_KEY")
OPENAI = SdkProvider("openai", "openai", "OPENAI_API_KEY")

# Model-name prefixes, only to suggest a provider when a spec lacks one.
_PREFIX_HINTS = {
    "claude": "anthropic",
    "gpt": "openai",
    "chatgpt": "openai",
    "o1": "openai",
    "o3": "openai",
    "o4": "openai",
    "text-embedding": "openai",
}


def split_spec(spec: str, providers: Iterable[str], *, what: str) -> tuple[str, str]:
    """Split ``spec`` into ``(provider, model)``, or raise ConfigError saying how to fix it."""
    known = sorted(providers)
    provider, sep, model = spec.partition(":")
    provider, model = provider.strip().lower(), model.strip()
    if not sep:
        hint = next((p for prefix, p in _PREFIX_HINTS.items() if spec.startswith(prefix)), None)
        fix = (
            f"did you mean '{hint}:{spec}'?" if hint in known else f"providers: {', '.join(known)}"
        )
        raise ConfigError(f"{what} {spec!r} has no provider; expected 'provider:model' ({fix})")
    if provider not in known:
        close = difflib.get_close_matches(provider, known, n=1)
        fix = f"did you mean '{close[0]}:{model}'? " if close else ""
        raise ConfigError(
            f"unknown {what} provider {provider!r} in {spec!r}; {fix}"
            f"supported providers: {', '.join(known)}"
        )
    if not model:
        raise ConfigError(f"{what} {spec!r} names no model after '{provider}:'")
    return provider, model


def require_sdk(provider: SdkProvider) -> None:
    require_extra(provider.extra, f"the {provider.name!r} provider", error=ProviderSetupError)


def resolve_api_key(
    provider: SdkProvider, api_key: str | SecretStr | None, *, local_server: bool
) -> str | SecretStr | None:
    """The key to hand to the SDK: the caller's, else ``None`` so the SDK reads its env var.

    Raises ProviderSetupError when neither exists, except for local OpenAI-compatible
    servers, which get a placeholder.
    """
    if api_key is not None:
        return api_key
    if env_var_is_set(provider.key_env_var):
        return None
    if local_server:
        return LOCAL_SERVER_API_KEY
    raise ProviderSetupError(
        f"no API key for the {provider.name!r} provider: set the {provider.key_env_var} "
        "environment variable, or give the model an api_key"
    )
