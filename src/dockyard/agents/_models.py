"""Which chat model a reference agent runs on, decided when its graph is built.

In order: the project's ``models.default``; else Claude if an Anthropic key is set;
else GPT-4o mini if an OpenAI key is set; else the agent's offline model, so every
reference agent runs on a laptop with no key at all.
"""

from __future__ import annotations

import logging
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from pydantic import SecretStr

from dockyard.errors import ConfigError
from dockyard.providers import env_var_is_set, load_chat_model
from dockyard.settings import ModelSpec, Settings, get_settings

log = logging.getLogger("dockyard.agents")

DEFAULT_MODEL_KEY = "default"
ANTHROPIC_MODEL = "anthropic:claude-sonnet-4-6"
OPENAI_MODEL = "openai:gpt-4o-mini"
_KEYED_MODELS = (("ANTHROPIC_API_KEY", ANTHROPIC_MODEL), ("OPENAI_API_KEY", OPENAI_MODEL))


def project_settings() -> Settings | None:
    """The settings of the project being served, as far as this process can tell.

    That is the config file named by ``DOCKYARD_CONFIG_FILE`` or found in the working
    directory, plus ``DOCKYARD_*`` variables. ``None`` if they do not load: the server
    has already validated its own settings, so a stray file must not stop the graph.
    """
    try:
        return get_settings()
    except ConfigError as e:
        log.warning("reference agent: ignoring project settings that do not load: %s", e)
        return None


def choose_model_spec(settings: Settings | None, offline: str) -> ModelSpec:
    """The model a reference agent should use; ``offline`` is its no-key fallback."""
    if settings is not None and DEFAULT_MODEL_KEY in settings.models:
        return settings.models[DEFAULT_MODEL_KEY]
    for env_var, model in _KEYED_MODELS:
        if env_var_is_set(env_var):
            return ModelSpec(model=model)
    return ModelSpec(model=offline)


def load_model_spec(spec: ModelSpec, project_dir: Path = Path(".")) -> BaseChatModel:
    """``load_chat_model`` with a ``ModelSpec``'s client settings (and key file)."""
    api_key: SecretStr | None = None
    if spec.api_key_file is not None:
        path = spec.api_key_file
        if not path.is_absolute():
            path = project_dir / path
        try:
            api_key = SecretStr(path.read_text(encoding="utf-8").strip())
        except OSError as e:
            raise ConfigError(
                f"models: api_key_file {path} for {spec.model!r} cannot be read ({e.strerror})"
            ) from e
    return load_chat_model(
        spec.model,
        base_url=spec.base_url,
        api_key=api_key,
        temperature=spec.temperature,
        max_tokens=spec.max_tokens,
        timeout=spec.timeout,
        max_retries=spec.max_retries,
    )
