"""The one settings object.

Values come, strongest first, from: keyword arguments (the CLI), ``DOCKYARD_*``
environment variables (nested groups with ``__``: ``DOCKYARD_RUNS__MAX_CONCURRENCY``),
then the project file (``dockyard.yaml`` or an unchanged ``langgraph.json``).
Nothing else in dockyard reads the environment.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from dockyard.errors import ConfigError
from dockyard.langgraph_json import from_langgraph_json

CONFIG_FILE_NAMES = ("dockyard.yaml", "dockyard.yml", "langgraph.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _regex(v: str | None) -> str | None:
    """A validator's check that ``v`` is a regular expression Python can compile."""
    if v is not None:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"not a regular expression: {e}") from e
    return v


# -- resilience of each named model (policies/retry.py, breaker.py, fallback.py) -------


class RetryConfig(_Strict):
    """``models.<name>.retry``: dockyard retries the model's failed calls itself (429, 5xx,
    529 overloaded, timeouts, connection errors), with exponential backoff and jitter,
    waiting what a ``Retry-After`` asks. The provider SDK's own retries are then off."""

    max_attempts: int = Field(default=3, ge=1, le=20)
    # The n-th retry waits backoff_min * 2**(n-1) + up to jitter, at most backoff_max.
    backoff_min_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    jitter_seconds: float = Field(default=1.0, ge=0)
    # A provider asking (Retry-After) for a longer wait is not waited for: the call
    # goes to its fallbacks at once.
    max_retry_after_seconds: float = Field(default=60.0, ge=0)
    # Each attempt (of a stream: until its first chunk); default: the model's `timeout`.
    timeout_seconds: float | None = Field(default=None, gt=0)
    # One call, every attempt and fallback included, ends by then.
    deadline_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> RetryConfig:
        if self.backoff_min_seconds > self.backoff_max_seconds:
            raise ValueError("retry.backoff_min_seconds must not exceed backoff_max_seconds")
        return self


class BreakerConfig(_Strict):
    """``models.<name>.breaker``: a circuit breaker per provider + model. It opens after
    ``failures`` failed calls in a row, or when ``failure_rate`` is set and that share of
    the calls of the current ``window_seconds`` failed (once ``min_calls`` were made);
    open, calls go to the fallbacks at once; after ``cooldown_seconds`` one probe call
    is let through (half-open), which closes it or opens it again."""

    failures: int = Field(default=5, ge=1)
    cooldown_seconds: float = Field(default=30.0, gt=0)
    failure_rate: float | None = Field(default=None, gt=0, le=1)
    window_seconds: float = Field(default=60.0, gt=0)
    min_calls: int = Field(default=10, ge=1)


class ModelSpec(_Strict):
    """One named chat model: ``"provider:model"`` plus optional client settings, and its
    resilience: ``fallbacks`` (other names under ``models:``, tried in order), ``retry``
    and ``breaker`` (docs/policies.md, "Resilience")."""

    model: str
    base_url: str | None = None
    api_key_file: Path | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    fallbacks: list[str] = Field(default_factory=list)
    retry: RetryConfig | None = None
    breaker: BreakerConfig | None = None

    @field_validator("model")
    @classmethod
    def _has_provider(cls, v: str) -> str:
        if ":" not in v:
            raise ValueError("expected 'provider:model', e.g. 'openai:gpt-4o-mini'")
        return v

    @model_validator(mode="after")
    def _one_retrier(self) -> ModelSpec:
        if self.retry is not None and self.max_retries:
            raise ValueError(
                "set retry.max_attempts or max_retries (the provider SDK's own retries), "
                "not both: with `retry`, dockyard retries and the SDK does not"
            )
        return self

    @property
    def sdk_max_retries(self) -> int | None:
        """The provider SDK's retries: none when dockyard retries (``retry``)."""
        return 0 if self.retry is not None else self.max_retries


class StoreIndexConfig(_Strict):
    """Semantic search over store items: ``embed`` is ``"openai:<model>"`` or ``"fake:<dims>"``."""

    dims: int = Field(gt=0)
    embed: str
    fields: list[str] | None = None
    base_url: str | None = None  # an OpenAI-compatible embeddings server


class StoreTTLConfig(_Strict):
    """Item expiry. On by default so that ``put(..., ttl=)`` works; items without
    a ttl (and no ``default_ttl``) never expire."""

    refresh_on_read: bool = True
    default_ttl: float | None = Field(default=None, gt=0, description="minutes")
    # A fraction of a minute is allowed (LangGraph's schema says int).
    sweep_interval_minutes: float | None = Field(default=5, gt=0)


class StoreConfig(_Strict):
    index: StoreIndexConfig | None = None
    ttl: StoreTTLConfig = Field(default_factory=StoreTTLConfig)


class RunsConfig(_Strict):
    max_concurrency: int = Field(default=16, gt=0, le=10_000)
    # Execute fewer runs at once (not below 4) while the event loop falls behind,
    # so that requests and the first event of streams are not queued behind CPU-bound
    # runs (runtime/gate.py). Off by default: on CPU-bound graphs it costs runs/s and
    # delays their first data events (docs/perf.md).
    adaptive_concurrency: bool = False
    timeout_seconds: float | None = Field(default=None, gt=0)
    # How long a finished run's events stay replayable for join_stream / Last-Event-ID.
    stream_retention_seconds: float = Field(default=300.0, ge=0)
    # A run stays in memory's event log at most this many events (oldest dropped).
    stream_max_events: int = Field(default=10_000, gt=0)
    # Without Redis: the events of finished runs kept in this process's memory for
    # replay, at most this many bytes (the oldest finished runs are forgotten first).
    stream_retention_max_bytes: int = Field(default=256 * 2**20, ge=0)
    # Execute runs in this process (embedded default). `dockyard serve --no-workers`
    # turns it off: the API only queues runs, `dockyard worker` processes run them.
    in_process: bool = True
    # A worker holds a claimed run this long past its last heartbeat (sent every
    # third of it); a run whose worker died is taken over when the lease runs out.
    lease_seconds: float = Field(default=30.0, ge=0.5, le=3600)
    # SIGTERM: how long a worker lets its runs finish before handing them back.
    drain_seconds: float = Field(default=30.0, ge=0)


class ThreadsConfig(_Strict):
    default_ttl_minutes: float | None = Field(default=None, gt=0)
    # How often threads past their ttl are deleted (with their runs and checkpoints).
    sweep_interval_seconds: float = Field(default=60.0, gt=0)


class CheckpointerTTLConfig(_Strict):
    """langgraph.json's ``checkpointer.ttl``: the ttl new threads get, and what happens
    when it passes: ``delete`` the thread (runs and checkpoints with it) or
    ``keep_latest`` (the thread stays with only its newest checkpoint)."""

    strategy: Literal["delete", "keep_latest"] = "delete"
    default_ttl: float | None = Field(default=None, gt=0, description="minutes")
    # Replaces threads.sweep_interval_seconds when set; a fraction of a minute is allowed.
    sweep_interval_minutes: float | None = Field(default=None, gt=0)
    sweep_limit: int = Field(default=1000, gt=0)


class CheckpointerConfig(_Strict):
    ttl: CheckpointerTTLConfig | None = None


class CorsConfig(_Strict):
    """Starlette's CORSMiddleware, with its defaults."""

    allow_origins: list[str] = Field(default_factory=list)
    allow_origin_regex: str | None = None
    allow_methods: list[str] = Field(default_factory=lambda: ["GET"])
    allow_headers: list[str] = Field(default_factory=list)
    allow_credentials: bool = False
    expose_headers: list[str] = Field(default_factory=list)
    max_age: int = Field(default=600, ge=0)

    _compiles = field_validator("allow_origin_regex")(_regex)


class HttpConfig(_Strict):
    """What langgraph.json's ``http`` section says about the API itself."""

    # The project's own Starlette/FastAPI app, 'path/to/file.py:attr' or 'module:attr':
    # its routes come before dockyard's, its middleware wraps both.
    app: str | None = None
    cors: CorsConfig | None = None
    # Every route (dockyard's and the app's) under this path, e.g. "/api".
    mount_prefix: str | None = None
    # Route families that answer 404 and leave /docs.
    disable_assistants: bool = False
    disable_threads: bool = False
    disable_runs: bool = False  # run routes and crons
    disable_store: bool = False
    disable_meta: bool = False  # /docs, /redoc, /openapi.json, /info
    disable_webhooks: bool = False  # runs still run; their webhooks are not sent

    @field_validator("app")
    @classmethod
    def _app_spec(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError(f"{v!r} is not 'path/to/file.py:attr' or 'module:attr'")
        return v

    @field_validator("mount_prefix")
    @classmethod
    def _prefix(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+/?", v):
            raise ValueError("expected a path such as '/api' (letters, digits, '._~-' and '/')")
        return v.rstrip("/")


class WebhookUrlPolicy(_Strict):
    """Which webhook URLs a client may give (langgraph.json's ``webhooks.url``)."""

    # "hooks.example.com" or "*.example.com" (subdomains only); None allows any host.
    allowed_domains: list[str] | None = None
    # The URL's port, or 443/80 when it names none, must be one of these.
    allowed_ports: list[int] | None = None
    require_https: bool = False
    # Relative URLs ("/hooks/done") are POSTed to this server itself; this refuses them.
    disable_loopback: bool = False
    max_url_length: int = Field(default=2048, gt=0)


# LangGraph's header template: "${{ env.VAR }}", resolved from the environment at start.
_HEADER_TEMPLATE = re.compile(r"\$\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class WebhooksConfig(_Strict):
    """Webhooks on run completion (``runtime/webhooks.py`` describes the wire format).

    The signing secret comes from ``DOCKYARD_WEBHOOKS__SECRET`` or ``secret_file``
    (read once, at start); without one, webhooks are sent unsigned.
    """

    secret: SecretStr | None = None
    secret_file: Path | None = None
    max_attempts: int = Field(default=5, ge=1, le=100)
    backoff_initial_seconds: float = Field(default=1.0, gt=0)
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    # A run that ended this long ago with its webhook still pending lost the
    # process delivering it; the redelivery pass takes it up.
    redeliver_after_seconds: float = Field(default=300.0, gt=0)
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    # Hosts a webhook may point at ("hooks.example.com", "*.example.com");
    # None allows any. Limits what a client can make the server call.
    # (``url.allowed_domains`` is langgraph.json's name for it: set one.)
    allowed_hosts: list[str] | None = None
    url: WebhookUrlPolicy = Field(default_factory=WebhookUrlPolicy)
    # Static headers of every webhook POST; values may hold "${{ env.VAR }}" where
    # VAR starts with env_prefix (so a template cannot read any variable it likes).
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    env_prefix: str = "LG_WEBHOOK_"

    @field_validator("secret", mode="before")
    @classmethod
    def _scalar_secret(cls, v: Any) -> Any:
        # A number in YAML would fail as "not a string", and the error would print it.
        return str(v) if isinstance(v, int | float) else v

    @model_validator(mode="after")
    def _secret_and_timing(self) -> WebhooksConfig:
        if self.secret is not None and self.secret_file is not None:
            raise ValueError("set webhooks.secret or webhooks.secret_file, not both")
        if self.secret_file is not None:
            try:
                text = self.secret_file.read_text(encoding="utf-8").strip()
            except OSError as e:
                raise ValueError(
                    f"webhooks.secret_file {self.secret_file}: cannot be read ({e.strerror})"
                ) from e
            if not text:
                raise ValueError(f"webhooks.secret_file {self.secret_file}: is empty")
            self.secret = SecretStr(text)
        # Every attempt of a live delivery refreshes the run; a longer gap would
        # let the redelivery pass start a second delivery of the same webhook.
        if self.redeliver_after_seconds <= self.backoff_max_seconds + self.timeout_seconds:
            raise ValueError(
                "webhooks.redeliver_after_seconds must exceed backoff_max_seconds + timeout_seconds"
            )
        if self.allowed_hosts is not None and self.url.allowed_domains is not None:
            raise ValueError("set webhooks.allowed_hosts or webhooks.url.allowed_domains, not both")
        for name, value in self.headers.items():
            for var in _HEADER_TEMPLATE.findall(value):
                if not var.startswith(self.env_prefix):
                    raise ValueError(
                        f"webhooks.headers.{name}: ${{{{ env.{var} }}}} does not start with "
                        f"webhooks.env_prefix {self.env_prefix!r}; rename the variable"
                    )
        return self

    @property
    def allowed_domains(self) -> list[str] | None:
        return self.url.allowed_domains if self.allowed_hosts is None else self.allowed_hosts

    def resolve_headers(self) -> dict[str, str]:
        """``headers`` with their templates filled from the environment (read when the
        process starts, after the project's ``env`` is applied). The values are never
        logged; an unset variable is a ConfigError naming it."""
        missing: list[str] = []

        def fill(match: re.Match[str]) -> str:
            value = os.environ.get(match.group(1))
            if value is None:
                missing.append(match.group(1))
                return ""
            return value

        out = {name: _HEADER_TEMPLATE.sub(fill, value) for name, value in self.headers.items()}
        if missing:
            raise ConfigError(
                f"webhooks.headers: environment variable(s) {', '.join(sorted(set(missing)))} "
                "are not set; set them (or the project's env file) before starting"
            )
        return out


class ServerConfig(_Strict):
    """What one request may send (api/body_limit.py); both are checked before the body
    is parsed, so a refused request costs no more memory than the cap and stores nothing.

    ``max_body_bytes``: a larger body is answered 413 ``payload_too_large``; a declared
    ``Content-Length`` over it is refused before any byte is read, a chunked body as soon
    as its count passes it. ``max_json_depth``: a JSON body nesting arrays and objects
    deeper is answered 422 ``json_too_deep``, before the parser recurses into it.
    From the environment: ``DOCKYARD_SERVER__MAX_BODY_BYTES``, ``DOCKYARD_SERVER__MAX_JSON_DEPTH``.
    """

    max_body_bytes: int = Field(default=4 * 2**20, gt=0)
    # Deeper than ~250 levels, orjson refuses to serialise what the request would store.
    max_json_depth: int = Field(default=64, ge=1, le=200)


class CronsConfig(_Strict):
    # How often each process looks for due crons: a firing starts up to this late.
    poll_interval_seconds: float = Field(default=5.0, gt=0)


# -- auth (policies/auth.py) ----------------------------------------------------------------


class AuthConfig(_Strict):
    """``auth``: API keys (``dockyard keys``) and a project's LangGraph auth handler."""

    # Refuse requests without a valid key (401 unauthorized). `dockyard dev` runs open.
    required: bool = True
    # Seconds a key looked up stays trusted in a process: a revoked key is refused by
    # every process within this time.
    cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # A langgraph_sdk.Auth object, "path/to/auth.py:auth" (langgraph.json's auth.path).
    path: str | None = None

    @field_validator("path")
    @classmethod
    def _path_spec(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError(f"auth.path {v!r} is not 'path/to/auth.py:attr' or 'module:attr'")
        return v


# -- policies.rate_limit (policies/rate_limit.py) --------------------------------------------


class RateLimits(_Strict):
    """Limits of one caller, each per minute; None: not limited on that count."""

    # At most a billion: buckets count in float cells of 60/limit s, exact below 2**53.
    requests_per_minute: int | None = Field(default=None, gt=0, le=10**9)
    tokens_per_minute: int | None = Field(default=None, gt=0, le=10**9)


class RateLimitConfig(RateLimits):
    """``policies.rate_limit``: the limits of each API key that has none of its own (without
    a key: of each client address), and, under ``tenant``, of all of a tenant's keys together.
    A limit of L per minute admits L at once, then one every 60/L seconds (GCRA)."""

    tenant: RateLimits | None = None

    @model_validator(mode="after")
    def _limits_something(self) -> RateLimitConfig:
        limits = [self.requests_per_minute, self.tokens_per_minute]
        if self.tenant is not None:
            if self.tenant.requests_per_minute is None and self.tenant.tokens_per_minute is None:
                raise ValueError(
                    "policies.rate_limit.tenant sets no limit: give it requests_per_minute "
                    "and/or tokens_per_minute, or remove it"
                )
            limits += [self.tenant.requests_per_minute, self.tenant.tokens_per_minute]
        if all(limit is None for limit in limits):
            raise ValueError(
                "policies.rate_limit sets no limit: give it requests_per_minute and/or "
                "tokens_per_minute, or remove it"
            )
        return self


# -- policies.approval (providers/approval.py) ----------------------------------------------

ApprovalDecision = Literal["approve", "edit", "reject"]
_ALL_DECISIONS: tuple[ApprovalDecision, ...] = ("approve", "edit", "reject")


class ApprovalRule(_Strict):
    """One tool whose calls wait for a human, when every ``when`` condition holds."""

    # Argument name -> regular expression searched in the argument's value (non-strings as
    # JSON); all must match. Empty: every call of the tool.
    when: dict[str, str] = Field(default_factory=dict)
    decisions: list[ApprovalDecision] = Field(
        default_factory=lambda: list(_ALL_DECISIONS), min_length=1
    )
    description: str | None = None

    @field_validator("when")
    @classmethod
    def _patterns_compile(cls, v: dict[str, str]) -> dict[str, str]:
        for arg, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(
                    f"when.{arg}: {pattern!r} is not a regular expression ({e})"
                ) from None
        return v


class ApprovalConfig(_Strict):
    """``policies.approval``: tool name -> rule, for graphs that use ``dockyard.middleware()``."""

    tools: dict[str, ApprovalRule] = Field(min_length=1)


# -- policies.input (policies/input_guard.py) -------------------------------------------------


class InjectionRuleConfig(_Strict):
    """A prompt-injection rule of the project's own (``policies.input.injection_rules``)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    # A regular expression (Python ``re``), matched case-insensitively against each text
    # after NFKC normalisation and with runs of whitespace made one space.
    pattern: str
    description: str = ""

    _compiles = field_validator("pattern")(_regex)


class InputGuardConfig(_Strict):
    """``policies.input``: the input guardrails every run request passes before anything
    is stored (policies/input_guard.py; docs/policies.md, "Input guardrails")."""

    # Characters of message text in one request, all messages together.
    max_chars: int | None = Field(default=None, gt=0)
    # Estimated tokens of the same text (policies/input_limits.py says how it estimates).
    max_tokens: int | None = Field(default=None, gt=0)
    # A request body cap stricter than server.max_body_bytes, answered input_too_large.
    max_body_bytes: int | None = Field(default=None, gt=0)
    injection: Literal["block", "flag", "off"] = "flag"
    # Rules of the project's own, checked after the default ones.
    injection_rules: list[InjectionRuleConfig] = Field(default_factory=list)
    # Ids of default rules turned off.
    disabled_rules: list[str] = Field(default_factory=list)
    # Top-level input keys whose string values are checked as message text is.
    text_fields: list[str] = Field(default_factory=list)
    # Run input checked against the graph's input schema, when it has one.
    validate_schema: bool = True

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> InputGuardConfig:
        ids = [r.id for r in self.injection_rules]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"injection_rules: rule id(s) {dupes} appear more than once")
        return self


# -- policies.summarization, policies.limits (providers/summarization.py, call_limits.py) --


class SummarizationConfig(_Strict):
    """``policies.summarization``: when a conversation passes ``trigger_fraction`` of the
    model's context window, older messages are replaced by a summary, keeping the last
    ``keep_messages`` (LangChain's ``SummarizationMiddleware``)."""

    trigger_fraction: float = Field(default=0.75, gt=0, le=1)
    keep_messages: int = Field(default=50, ge=1)
    # The `models:` name that writes the summaries.
    model: str = "default"
    # Tokens the run's model accepts; default: the summarizing model's own profile.
    context_window: int | None = Field(default=None, gt=0)


class CallLimitsConfig(_Strict):
    """``policies.limits``: model and tool calls per run (LangChain's call-limit middleware)."""

    model_calls_per_run: int | None = Field(default=None, gt=0)
    tool_calls_per_run: int | None = Field(default=None, gt=0)
    # end: the agent stops with a message saying which limit it reached; error: the run fails.
    exit: Literal["end", "error"] = "end"
    # What one run may spend, in USD, over all its attempts (policies/run_cost.py): once
    # its model calls cost this much, its next model call fails with budget_exceeded and
    # the run ends in error. For any graph, not only middleware-built agents.
    cost_usd_per_run: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _limits_something(self) -> CallLimitsConfig:
        limits = (self.model_calls_per_run, self.tool_calls_per_run, self.cost_usd_per_run)
        if all(limit is None for limit in limits):
            raise ValueError(
                "policies.limits sets no limit: give it model_calls_per_run, "
                "tool_calls_per_run and/or cost_usd_per_run, or remove it"
            )
        return self


# -- policies.pii (policies/pii/) -----------------------------------------------------------

PiiEntity = Literal["email", "phone", "kr_rrn", "credit_card", "ip"]
PiiStage = Literal["input", "output", "tool_results"]
_PII_ENTITIES: tuple[PiiEntity, ...] = get_args(PiiEntity)
_PII_STAGES: tuple[PiiStage, ...] = get_args(PiiStage)


class PiiConfig(_Strict):
    """``policies.pii``: personal data found in model input, model output and tool
    results is masked, redacted, hashed or refused (policies/pii/, docs/policies.md).
    Logs are redacted whether this block is there or not."""

    action: Literal["mask", "redact", "hash", "block"] = "mask"
    entities: list[PiiEntity] = Field(default_factory=lambda: list(_PII_ENTITIES))
    # Your own entities: name -> regular expression, e.g. {employee_id: "EMP-\\d{6}"}.
    patterns: dict[str, str] = Field(default_factory=dict)
    apply_to: list[PiiStage] = Field(default_factory=lambda: list(_PII_STAGES), min_length=1)
    # Korean RRNs issued since October 2020 carry no check digit; false finds them too
    # (and more 13-digit numbers that are not RRNs).
    kr_rrn_checksum: bool = True
    # action: hash keys its HMAC with this; without one a plain SHA-256, which anyone can
    # reverse for a phone number or an RRN by trying them all.
    hash_key: SecretStr | None = None

    @field_validator("entities", "apply_to")
    @classmethod
    def _no_repeats(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("names an item twice")
        return v

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, v: dict[str, str]) -> dict[str, str]:
        for name, pattern in v.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
                raise ValueError(f"{name!r}: a name is lower-case letters, digits and '_'")
            if name in _PII_ENTITIES:
                raise ValueError(f"{name!r} is a built-in entity: list it under entities")
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise ValueError(f"{name}: not a regular expression: {e}") from e
            if compiled.fullmatch(""):
                raise ValueError(f"{name}: the pattern matches the empty string")
        return v

    @model_validator(mode="after")
    def _finds_something(self) -> PiiConfig:
        if not self.entities and not self.patterns:
            raise ValueError("policies.pii: name entities or patterns (or remove the block)")
        return self


class ModelPrice(_Strict):
    """``policies.prices.<model>``: USD per million tokens (policies/prices.py). Unset
    ``cached_input`` / ``cache_write`` charge those tokens at the input price."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


class CacheConfig(_Strict):
    """``policies.cache``: the response cache (policies/cache.py); on when present."""

    ttl_seconds: float = Field(gt=0)
    # Entries the in-process store keeps (least recently used go first); refused with
    # redis_url, where entries go after their TTL.
    max_entries: int = Field(default=1000, ge=1)
    # Cache answers even when the call samples (temperature > 0 or the provider default).
    force: bool = False
    # Store an answer only when the quality hook scores it at least this.
    min_quality: float | None = None


# -- policies.quality (the quality gate: policies/quality_gate.py, docs/quality.md) ---------

# The thresholds' names in the seed guide's environment (ANTHROPIC_QUALITY_THRESHOLD=0.8):
# Settings reads them as defaults for every quality block's thresholds not set in the file.
SEED_QUALITY_ENV = {
    "accept": "ANTHROPIC_QUALITY_THRESHOLD",
    "retry": "ANTHROPIC_RETRY_THRESHOLD",
    "fallback": "ANTHROPIC_FALLBACK_THRESHOLD",
    "max_retries": "ANTHROPIC_MAX_RETRIES",
}


class QualityConfig(_Strict):
    """``policies.quality``: score each final answer of a model call, and retry it or send
    it to ``fallback_model`` when it scores low (docs/quality.md)."""

    # Scorer specs as ``dockyard eval --scorers`` takes them (quality/specs.py): checked
    # when the process starts, where the scorers are built.
    scorers: list[dict[str, Any]] = Field(min_length=1)
    accept: float = Field(default=0.8, ge=0, le=1)
    # Below accept and at least this: the same model is asked again (up to max_retries).
    retry: float = Field(default=0.6, ge=0, le=1)
    # Below this: the call goes to fallback_model (once); without one it is retried.
    fallback: float = Field(default=0.4, ge=0, le=1)
    max_retries: int = Field(default=2, ge=0, le=10)
    fallback_model: str | None = None
    # A streamed call: "buffer" holds its chunks until the answer passed (the client sees
    # only the answer kept); "score" streams it as it comes and scores it at its end
    # (recorded, never retried; the same for sync calls).
    streaming: Literal["buffer", "score"] = "buffer"

    @model_validator(mode="after")
    def _ordered(self) -> QualityConfig:
        if not self.fallback <= self.retry <= self.accept:
            raise ValueError(
                f"thresholds must hold fallback <= retry <= accept (got fallback="
                f"{self.fallback:g}, retry={self.retry:g}, accept={self.accept:g})"
            )
        return self


# -- policies.budget (policies/budget.py) -----------------------------------------------------


class BudgetLimits(_Strict):
    """Spending limits of one budget holder, in USD; None: no limit for that period."""

    daily_usd: float | None = Field(default=None, gt=0)  # resets at 00:00 UTC
    monthly_usd: float | None = Field(default=None, gt=0)  # resets on the 1st, 00:00 UTC

    @model_validator(mode="after")
    def _limits_something(self) -> BudgetLimits:
        if self.daily_usd is None and self.monthly_usd is None:
            raise ValueError("sets no limit: give it daily_usd and/or monthly_usd, or remove it")
        return self


class BudgetOverride(_Strict):
    """An API key's own budget (its ``policies["budget"]``): each limit given replaces the
    default of ``policies.budget``."""

    daily_usd: float | None = Field(default=None, gt=0)
    monthly_usd: float | None = Field(default=None, gt=0)


class BudgetConfig(_Strict):
    """``policies.budget``: spending limits reserved at admission (policies/budget.py;
    docs/policies.md, "Budgets"). ``daily_usd`` / ``monthly_usd``: of each API key with
    none of its own (callers without a key share one budget); ``tenant``: of all of one
    tenant's keys together."""

    daily_usd: float | None = Field(default=None, gt=0)
    monthly_usd: float | None = Field(default=None, gt=0)
    tenant: BudgetLimits | None = None
    # Shares of a limit whose crossing emits a `budget.threshold` event, once per period.
    thresholds: list[float] = Field(default_factory=lambda: [0.8, 0.95])
    # Held per run or gateway call while it runs; default: estimated from its text.
    reserve_usd: float | None = Field(default=None, ge=0)
    # Output tokens the estimate assumes for a call that names no max_tokens.
    estimate_output_tokens: int = Field(default=1000, ge=0)
    # The `models:` name whose price estimates a run's cost (a run may call any model).
    estimate_model: str = "default"
    # A hold not settled in this time (its process died) no longer counts.
    hold_seconds: float = Field(default=3600, gt=0)
    # The most output tokens one request may ask for per model call; a request that
    # names none gets this (docs/policies.md).
    max_tokens_per_request: int | None = Field(default=None, gt=0)

    @field_validator("thresholds")
    @classmethod
    def _shares(cls, v: list[float]) -> list[float]:
        for t in v:
            if not 0 < t < 1:
                raise ValueError(f"{t} is not a share of the limit between 0 and 1 (exclusive)")
        if len(set(v)) != len(v):
            raise ValueError("a threshold is listed twice")
        return sorted(v)

    @model_validator(mode="after")
    def _limits_something(self) -> BudgetConfig:
        limits = (self.daily_usd, self.monthly_usd, self.tenant, self.max_tokens_per_request)
        if all(limit is None for limit in limits):
            raise ValueError(
                "policies.budget sets no limit: give it daily_usd, monthly_usd, "
                "tenant or max_tokens_per_request, or remove it"
            )
        return self


# -- policies.routing (policies/routing.py) ----------------------------------------------------


class RoutingRule(_Strict):
    """One rule of ``policies.routing.rules``: the call goes to ``tier`` when every condition
    the rule sets holds (at least one must be set). Sizes are of the call's messages:
    characters of their text, and estimated tokens of that text and the bound tools."""

    tier: str
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    min_tokens: int | None = Field(default=None, ge=0)
    max_tokens: int | None = Field(default=None, ge=0)
    min_tools: int | None = Field(default=None, ge=0)
    max_tools: int | None = Field(default=None, ge=0)
    # The run's `priority` (a top-level field of its input or context) is one of these.
    priority: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _has_a_condition(self) -> RoutingRule:
        conditions = self.model_fields_set - {"tier"}
        if not conditions:
            raise ValueError(
                f"the rule for tier {self.tier!r} has no condition: give it min_chars, "
                "max_chars, min_tokens, max_tokens, min_tools, max_tools or priority (the "
                "tier every other call gets is `default`)"
            )
        return self


class RoutingConfig(_Strict):
    """``policies.routing``: calls to the models named in ``apply_to`` go to the model of a
    tier, chosen by the first rule that matches, else ``default`` (policies/routing.py)."""

    # Tier name -> a model name under `models:` (or `default`).
    tiers: dict[str, str] = Field(min_length=1)
    rules: list[RoutingRule] = Field(default_factory=list)
    default: str
    # The `models:` names whose calls are routed (chat_model(name) and the gateway).
    apply_to: list[str] = Field(default_factory=lambda: ["default"], min_length=1)

    @model_validator(mode="after")
    def _tiers_exist(self) -> RoutingConfig:
        known = ", ".join(sorted(self.tiers))
        if self.default not in self.tiers:
            raise ValueError(f"default: no tier named {self.default!r} (tiers: {known})")
        for i, rule in enumerate(self.rules):
            if rule.tier not in self.tiers:
                raise ValueError(f"rules.{i}.tier: no tier named {rule.tier!r} (tiers: {known})")
        if len(set(self.apply_to)) != len(self.apply_to):
            raise ValueError("apply_to: a name is listed twice")
        return self

    def model_names(self) -> list[tuple[str, str]]:
        """(where it is set, model name) of every model name the block mentions."""
        out = [(f"tiers.{tier}", model) for tier, model in self.tiers.items()]
        return out + [(f"apply_to.{i}", name) for i, name in enumerate(self.apply_to)]


class PoliciesConfig(_Strict):
    """The ``policies:`` block: defaults every assistant gets (docs/policies.md)."""

    rate_limit: RateLimitConfig | None = None
    approval: ApprovalConfig | None = None
    summarization: SummarizationConfig | None = None
    limits: CallLimitsConfig | None = None
    input: InputGuardConfig | None = None
    pii: PiiConfig | None = None
    cache: CacheConfig | None = None
    budget: BudgetConfig | None = None
    routing: RoutingConfig | None = None
    quality: QualityConfig | None = None
    # Model name (as the provider reports it, or "provider:name") → its price, over the
    # shipped table.
    prices: dict[str, ModelPrice] = Field(default_factory=dict)


# -- assistants (runtime/assistants.py) ---------------------------------------------------------

# Policies that are not the assistant's to set, and why (refused, not ignored).
_NOT_PER_ASSISTANT = {
    "rate_limit": "rate limits count per API key and tenant, before the assistant is known",
    "prices": "prices are the models', whoever calls them",
    "budget": "budgets are per API key and tenant",
}


class AssistantPolicies(_Strict):
    """``assistants.<name>.policies``: each block given replaces the one of ``policies:``
    for this assistant's runs; ``null`` turns that policy off for them; blocks not given
    are the defaults (``Settings.assistant_policies``)."""

    input: InputGuardConfig | None = None
    pii: PiiConfig | None = None
    cache: CacheConfig | None = None
    routing: RoutingConfig | None = None
    approval: ApprovalConfig | None = None
    summarization: SummarizationConfig | None = None
    limits: CallLimitsConfig | None = None
    quality: QualityConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_per_assistant(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, why in _NOT_PER_ASSISTANT.items():
                if key in data:
                    raise ValueError(
                        f"{key} cannot be set per assistant ({why}): set it under `policies:`"
                    )
        return data

    @field_validator("input")
    @classmethod
    def _no_body_cap(cls, v: InputGuardConfig | None) -> InputGuardConfig | None:
        if v is not None and v.max_body_bytes is not None:
            # The body is capped before it is read, so before its assistant is known.
            raise ValueError(
                "max_body_bytes cannot be set per assistant (a body is capped before it is "
                "read): set it under policies.input"
            )
        return v


class AssistantConfig(_Strict):
    """``assistants.<name>``: an assistant of ``graph`` created at start, with its own
    policies over the defaults (docs/policies.md, "Assistants")."""

    graph: str
    description: str | None = None
    policies: AssistantPolicies = Field(default_factory=AssistantPolicies)


# -- prompts (src/dockyard/prompts/, docs/prompts.md) ------------------------------------


class PromptsConfig(_Strict):
    """``prompts:``: the prompt registry's project files, cache refresh and retention."""

    # The project's prompt files (relative to the project), pushed when the process starts:
    # a new version only where a file's content changed.
    dir: Path = Path("prompts")
    push_on_start: bool = True
    # How often each process asks whether the registry changed (a one-row read): a label
    # moved anywhere is served everywhere within about this long.
    refresh_seconds: float = Field(default=1.0, gt=0, le=60)
    # Versions older than this that no label points at (and not a prompt's latest) are
    # removed by a periodic sweep; None keeps every version.
    retention_days: float | None = Field(default=None, gt=0)
    retention_sweep_seconds: float = Field(default=3600.0, gt=0)


# -- rollouts (src/dockyard/rollouts/, docs/rollouts.md) -------------------------------

_PROMPT_AT_VERSION = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)@([1-9][0-9]*)$")


class RolloutCandidate(_Strict):
    """What the candidate variant runs: a prompt version or a model (one of them)."""

    # NAME@VERSION of the registry: the candidate's runs get that version wherever the
    # graph calls prompt(NAME, ...).
    prompt: str | None = None
    # A model under `models:`: every chat_model(...) of the candidate's runs goes to it.
    model: str | None = None

    @field_validator("prompt")
    @classmethod
    def _prompt_ref(cls, v: str | None) -> str | None:
        if v is not None and not _PROMPT_AT_VERSION.match(v):
            raise ValueError(f"{v!r}: expected NAME@VERSION (e.g. ticket-summary@4)")
        return v

    @model_validator(mode="after")
    def _one(self) -> RolloutCandidate:
        if (self.prompt is None) == (self.model is None):
            raise ValueError("set prompt (NAME@VERSION) or model (a name under `models:`), one")
        return self

    @property
    def prompt_ref(self) -> tuple[str, int] | None:
        """(name, version) of a prompt candidate."""
        if self.prompt is None:
            return None
        name, _, version = self.prompt.rpartition("@")
        return name, int(version)


class RolloutRollback(_Strict):
    """When the candidate is rolled back: over the last ``window_minutes`` (since the
    rollout started), with at least ``min_runs`` of its runs ended (scored, for quality)."""

    min_quality: float | None = Field(default=None, ge=0, le=1)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    # At most an hour: run outcomes and scores are kept two hours (the alerts' pruning).
    window_minutes: float = Field(default=15.0, gt=0, le=60)
    min_runs: int = Field(default=20, ge=1)
    # How often the process holding the rollouts' lease checks.
    check_seconds: float = Field(default=30.0, gt=0, le=3600)


class RolloutConfig(_Strict):
    """``rollouts.<name>``: send part of an assistant's traffic to a candidate prompt
    version or model; the rest stays on the stable variant (what it runs today)."""

    assistant: str
    candidate: RolloutCandidate
    # Share of users (or threads) on the candidate, 0..1; sticky by a hash of the
    # rollout's name and the user (or thread).
    share: float = Field(default=0.0, ge=0, le=1)
    # API key names (or ids) and user ids that always get the candidate.
    keys: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    # What a variant sticks to: the user (metadata or configurable user_id, else the API
    # key), or the thread.
    sticky: Literal["user", "thread"] = "user"
    # The label `promote` moves to the candidate version (prompt rollouts).
    stable_label: str = Field(default="production", pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    rollback: RolloutRollback = Field(default_factory=RolloutRollback)


# -- observability (src/dockyard/observability/, docs/observability.md) ----------------


class MetricsConfig(_Strict):
    """``observability.metrics``: Prometheus metrics at ``/metrics``."""

    enabled: bool = True
    # Serve /metrics on this port (of ``host``) instead of the API port; `dockyard worker`
    # serves it only when this is set.
    port: int | None = Field(default=None, ge=1, le=65535)
    # /metrics asks for a valid API key like any route (default: open, like /ok).
    require_key: bool = False
    # prometheus-client's multiprocess directory, shared by every process on one host.
    # Default: ``<data_dir>/metrics`` when processes share runs (PostgreSQL + Redis, or
    # ``serve --workers N``); one process's own registry otherwise.
    multiprocess_dir: Path | None = None


class LogsConfig(_Strict):
    """``observability.logs``: structlog JSON lines on stdout."""

    # False: dockyard leaves the process's logging alone (an application embedding
    # create_app configures its own); the PII redaction of every record stays.
    enabled: bool = True
    # Overrides the top-level log_level for the lines dockyard writes.
    level: Literal["debug", "info", "warning", "error"] | None = None
    # None: readable console lines under `dockyard dev`, JSON everywhere else.
    format: Literal["json", "console"] | None = None
    # One line per HTTP request (method, route template, status, duration).
    requests: bool = True


class _OtelEnv(BaseSettings):
    """OpenTelemetry's own variables, read here so that nothing else reads the environment."""

    model_config = SettingsConfigDict(env_prefix="OTEL_", extra="ignore")

    exporter_otlp_endpoint: str | None = None
    service_name: str | None = None


class TracesConfig(_Strict):
    """``observability.traces``: OpenTelemetry spans, exported over OTLP when configured."""

    enabled: bool = True
    # The collector's OTLP/HTTP base URL (``/v1/traces`` is added), as
    # OTEL_EXPORTER_OTLP_ENDPOINT takes it; that variable is read when this is unset.
    # Unset: no spans at all (no SDK loaded, nothing recorded).
    endpoint: str | None = None
    service_name: str = "dockyard"  # else OTEL_SERVICE_NAME
    # The share of traces recorded; a client's sampled flag (traceparent) is followed.
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _otel_env(cls, data: Any) -> Any:
        if not isinstance(data, dict) or ("endpoint" in data and "service_name" in data):
            return data
        env = _OtelEnv()
        data = dict(data)
        if data.get("endpoint") is None and env.exporter_otlp_endpoint:
            data["endpoint"] = env.exporter_otlp_endpoint
        if "service_name" not in data and env.service_name:
            data["service_name"] = env.service_name
        return data

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if not v:
            return None
        if not v.startswith(("http://", "https://")):
            raise ValueError(
                f"{v!r}: an OTLP/HTTP URL (http://collector:4318); gRPC is not supported"
            )
        return v.rstrip("/")

    @property
    def exporting(self) -> bool:
        """Spans are made and exported: enabled, with an endpoint."""
        return self.enabled and bool(self.endpoint)


def _seed_quality(quality: QualityConfig, seeded: dict[str, Any], where: str) -> QualityConfig:
    """``quality`` with the seed environment's thresholds where the file set none."""
    given = {k: v for k, v in seeded.items() if k not in quality.model_fields_set}
    if not given:
        return quality
    try:
        return QualityConfig.model_validate({**quality.model_dump(exclude_unset=True), **given})
    except ValidationError as e:
        names = ", ".join(SEED_QUALITY_ENV[k] for k in given)
        why = "; ".join(err["msg"].removeprefix("Value error, ") for err in e.errors())
        raise ValueError(f"{where}.quality with {names} from the environment: {why}") from None


def _read_secret(where: str, path: Path) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise ValueError(f"{where} {path}: cannot be read ({e.strerror})") from e
    if not text:
        raise ValueError(f"{where} {path}: is empty")
    return SecretStr(text)


Severity = Literal["warning", "critical"]


class _Rule(_Strict):
    """What every alert rule has (docs/observability.md, "Alerts")."""

    severity: Severity = "warning"
    # Only the runs of this assistant (its name or graph id); None: every run.
    assistant: str | None = None


class _WindowRule(_Rule):
    window_minutes: float = Field(default=15.0, gt=0)
    # Fewer ended runs than this in the window say nothing (one failed run of one is 100%).
    min_runs: int = Field(default=10, ge=1)


class ErrorRateRule(_WindowRule):
    """Share of the runs ended in the window that ended in error or timeout, above ``threshold``."""

    kind: Literal["error_rate"]
    threshold: float = Field(default=0.05, ge=0, le=1)


class ErrorCountRule(_WindowRule):
    """Runs ended in error or timeout in the window, more than ``threshold``."""

    kind: Literal["error_count"]
    window_minutes: float = Field(default=60.0, gt=0)
    threshold: int = Field(default=10, ge=0)
    min_runs: int = Field(default=1, ge=1)


class AvailabilityRule(_WindowRule):
    """Share of the runs ended in the window that succeeded, below ``threshold``."""

    kind: Literal["availability"]
    threshold: float = Field(default=0.95, ge=0, le=1)


class LatencyRule(_WindowRule):
    """The p95 of run latency (created to ended) of the window, above ``threshold_seconds``."""

    kind: Literal["latency_p95"]
    threshold_seconds: float = Field(default=30.0, gt=0)


class QualityRule(_WindowRule):
    """The mean quality score of the window, below ``threshold``."""

    kind: Literal["quality"]
    threshold: float = Field(default=0.7, ge=0, le=1)
    min_runs: int = Field(default=5, ge=1)  # scores, here


class InterruptedRule(_Rule):
    """Runs waiting for a human (interrupted) for longer than ``minutes``."""

    kind: Literal["interrupted"]
    minutes: float = Field(default=30.0, gt=0)


class BudgetRule(_Rule):
    """A budget's spend reached ``threshold`` of its limit (the budget policy's
    ``budget.threshold`` event; the alert clears when the period resets)."""

    kind: Literal["budget"]
    threshold: float = Field(default=0.8, gt=0, le=1)


class BreakerRule(_Rule):
    """A model's circuit breaker is open."""

    kind: Literal["breaker_open"]
    severity: Severity = "critical"


AlertRule = Annotated[
    ErrorRateRule
    | ErrorCountRule
    | AvailabilityRule
    | LatencyRule
    | QualityRule
    | InterruptedRule
    | BudgetRule
    | BreakerRule,
    Field(discriminator="kind"),
]


def default_alert_rules() -> dict[str, AlertRule]:
    """The thresholds of the deployment guides."""
    return {
        "error-rate": ErrorRateRule(kind="error_rate", threshold=0.05),
        "errors-warning": ErrorCountRule(kind="error_count", threshold=10),
        "errors-critical": ErrorCountRule(kind="error_count", threshold=50, severity="critical"),
        "availability-warning": AvailabilityRule(kind="availability", threshold=0.95),
        "availability-critical": AvailabilityRule(
            kind="availability", threshold=0.90, severity="critical"
        ),
        "latency-warning": LatencyRule(kind="latency_p95", threshold_seconds=10.0),
        "latency-critical": LatencyRule(
            kind="latency_p95", threshold_seconds=30.0, severity="critical"
        ),
        "quality": QualityRule(kind="quality", threshold=0.7),
        "interrupted": InterruptedRule(kind="interrupted", minutes=30.0),
        "budget-80": BudgetRule(kind="budget", threshold=0.8),
        "budget-95": BudgetRule(kind="budget", threshold=0.95, severity="critical"),
        "breaker-open": BreakerRule(kind="breaker_open"),
    }


class _Notifier(_Strict):
    # Alerts below this severity are not sent here.
    min_severity: Severity = "warning"
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)


class SlackNotifier(_Notifier):
    """A Slack incoming webhook; its URL is a secret (``url`` or ``url_file``)."""

    type: Literal["slack"]
    url: SecretStr | None = None
    url_file: Path | None = None

    @model_validator(mode="after")
    def _one_url(self) -> SlackNotifier:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("set url or url_file (one of them)")
        if self.url_file is not None:
            self.url = _read_secret("url_file", self.url_file)
        return self


class WebhookNotifier(_Notifier):
    """A JSON POST signed as run webhooks are (``secret``/``secret_file``, else
    ``webhooks.secret``; unsigned without any)."""

    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    secret: SecretStr | None = None
    secret_file: Path | None = None
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _one_secret(self) -> WebhookNotifier:
        if self.secret is not None and self.secret_file is not None:
            raise ValueError("set secret or secret_file, not both")
        if self.secret_file is not None:
            self.secret = _read_secret("secret_file", self.secret_file)
        return self


class EmailNotifier(_Notifier):
    """E-mail over SMTP. ``security``: ``starttls`` (port 587), ``ssl`` (465) or ``none``
    (a relay on the same host). The password comes from ``password`` (e.g.
    ``DOCKYARD_OBSERVABILITY__ALERTS__NOTIFIERS__<NAME>__PASSWORD``) or ``password_file``."""

    type: Literal["email"]
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[str] = Field(min_length=1)
    # CA certificates (PEM) that sign the server's certificate, when not a public CA's
    # (a relay inside the company).
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _password(self) -> EmailNotifier:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if self.password_file is not None:
            self.password = _read_secret("password_file", self.password_file)
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or {"starttls": 587, "ssl": 465, "none": 25}[self.security]


AlertNotifier = Annotated[
    SlackNotifier | WebhookNotifier | EmailNotifier, Field(discriminator="type")
]


class AlertsConfig(_Strict):
    """``observability.alerts``: alert rules evaluated in process, and their notifiers
    (``observability/alerts``; docs/observability.md, "Alerts"). Off unless ``enabled``."""

    enabled: bool = False
    interval_seconds: float = Field(default=60.0, gt=0)
    # A still-firing alert is sent again after this long; 0: only once.
    cooldown_minutes: float = Field(default=60.0, ge=0)
    # One process evaluates at a time: it holds a lease in the database this long and
    # renews it each interval. Default: three intervals (at least 30 s).
    lease_seconds: float | None = Field(default=None, gt=0)
    rules: dict[str, AlertRule] = Field(default_factory=default_alert_rules)
    notifiers: dict[str, AlertNotifier] = Field(default_factory=dict)

    @property
    def lease(self) -> float:
        return self.lease_seconds or max(3 * self.interval_seconds, 30.0)

    @model_validator(mode="after")
    def _lease_outlasts_interval(self) -> AlertsConfig:
        if self.lease <= self.interval_seconds:
            raise ValueError(
                "observability.alerts.lease_seconds must exceed interval_seconds "
                "(the holder renews it once per interval)"
            )
        return self


class ObservabilityConfig(_Strict):
    """``observability:``: metrics, logs, traces and alerts."""

    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    logs: LogsConfig = Field(default_factory=LogsConfig)
    traces: TracesConfig = Field(default_factory=TracesConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DOCKYARD_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    config_file: Path | None = None
    project_dir: Path = Path(".")
    host: str = "127.0.0.1"
    port: int = Field(default=8123, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    data_dir: Path = Path(".dockyard")
    database_url: str | None = None
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    # Seconds a request waits for a pooled connection (e.g. while PostgreSQL restarts).
    database_pool_timeout: float = Field(default=10.0, gt=0)
    # Connections opened past database_pool_size under load, closed again when idle.
    # Default: the pool size for dockyard's own queries, none for the run path's pool.
    database_max_overflow: int | None = Field(default=None, ge=0, le=1000)
    # Connections older than this are replaced (a proxy or firewall that drops long-lived
    # connections). Default: never for dockyard's own queries, an hour for the run path's.
    database_pool_recycle_seconds: float | None = Field(default=None, gt=0)
    # Server-side prepared statements for repeated queries (a third less PostgreSQL CPU
    # per run in the worker layout). Turn off behind a pooler that cannot keep them
    # (PgBouncer in transaction mode before 1.21).
    database_prepared_statements: bool = True
    redis_url: str | None = None
    # Keys and channels are namespaced so that several deployments can share one Redis.
    redis_prefix: str = Field(default="dockyard", pattern=r"^[A-Za-z0-9_.:-]+$")
    graphs: dict[str, str] = Field(default_factory=dict)
    policies: PoliciesConfig = Field(default_factory=PoliciesConfig)
    assistants: dict[str, AssistantConfig] = Field(default_factory=dict)
    models: dict[str, ModelSpec] = Field(default_factory=dict)
    store: StoreConfig = Field(default_factory=StoreConfig)
    runs: RunsConfig = Field(default_factory=RunsConfig)
    threads: ThreadsConfig = Field(default_factory=ThreadsConfig)
    crons: CronsConfig = Field(default_factory=CronsConfig)
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig)
    http: HttpConfig = Field(default_factory=HttpConfig)
    checkpointer: CheckpointerConfig = Field(default_factory=CheckpointerConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)
    rollouts: dict[str, RolloutConfig] = Field(default_factory=dict)
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)
    env: dict[str, str] | str | None = None
    # The seed guide's environment names for the quality thresholds (SEED_QUALITY_ENV):
    # read from the environment only; they fill the thresholds no quality block sets.
    seed_quality_accept: float | None = Field(
        default=None, ge=0, le=1, validation_alias=AliasChoices("ANTHROPIC_QUALITY_THRESHOLD")
    )
    seed_quality_retry: float | None = Field(
        default=None, ge=0, le=1, validation_alias=AliasChoices("ANTHROPIC_RETRY_THRESHOLD")
    )
    seed_quality_fallback: float | None = Field(
        default=None, ge=0, le=1, validation_alias=AliasChoices("ANTHROPIC_FALLBACK_THRESHOLD")
    )
    seed_quality_max_retries: int | None = Field(
        default=None, ge=0, le=10, validation_alias=AliasChoices("ANTHROPIC_MAX_RETRIES")
    )

    @field_validator("graphs")
    @classmethod
    def _graph_specs(cls, v: dict[str, str]) -> dict[str, str]:
        for name, spec in v.items():
            if ":" not in spec:
                raise ValueError(
                    f"graph {name!r}: {spec!r} is not 'path/to/file.py:attr' or 'module:attr'"
                )
        return v

    @field_validator("models", mode="before")
    @classmethod
    def _model_strings(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: {"model": s} if isinstance(s, str) else s for k, s in v.items()}
        return v

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> Settings:
        for name, spec in self.models.items():
            for other in spec.fallbacks:
                if other == name:
                    raise ValueError(f"models.{name}.fallbacks: a model cannot fall back to itself")
                if other not in self.models and other != "default":
                    raise ValueError(
                        f"models.{name}.fallbacks: no model named {other!r} under `models:` "
                        f"(configured: {', '.join(sorted(self.models))})"
                    )
            if len(set(spec.fallbacks)) != len(spec.fallbacks):
                raise ValueError(f"models.{name}.fallbacks: a name is listed twice")
        return self

    @model_validator(mode="after")
    def _assistants_and_routing(self) -> Settings:
        models = {*self.models, "default"}
        for name, a in self.assistants.items():
            if a.graph not in self.graphs:
                raise ValueError(
                    f"assistants.{name}.graph: no graph named {a.graph!r} (graphs: "
                    f"{', '.join(sorted(self.graphs)) or 'none'})"
                )
            # /v1/chat/completions and runs.create take a name: it must say one thing.
            if name in self.graphs or name in models:
                what = "graph" if name in self.graphs else "model under `models:`"
                raise ValueError(
                    f"assistants.{name}: a {what} has that name too; rename the assistant"
                )
        blocks = [("policies.routing", self.policies.routing)]
        blocks += [
            (f"assistants.{name}.policies.routing", a.policies.routing)
            for name, a in self.assistants.items()
        ]
        for where, routing in blocks:
            for key, model in routing.model_names() if routing is not None else ():
                if model not in models:
                    raise ValueError(
                        f"{where}.{key}: no model named {model!r} under `models:` "
                        f"(models: {', '.join(sorted(models))})"
                    )
        return self

    @model_validator(mode="after")
    def _seed_quality_env(self) -> Settings:
        seeded = {
            key: value
            for key in SEED_QUALITY_ENV
            if (value := getattr(self, f"seed_quality_{key}")) is not None
        }
        if seeded:
            # Assigned only where a block is (assigning marks the key as set, and an
            # assistant's unset quality means the default's).
            if self.policies.quality is not None:
                self.policies.quality = _seed_quality(self.policies.quality, seeded, "policies")
            for name, a in self.assistants.items():
                if a.policies.quality is not None:
                    where = f"assistants.{name}.policies"
                    a.policies.quality = _seed_quality(a.policies.quality, seeded, where)
        models = {*self.models, "default"}
        blocks = [("policies", self.policies.quality)]
        blocks += [
            (f"assistants.{n}.policies", a.policies.quality) for n, a in self.assistants.items()
        ]
        for where, quality in blocks:
            if quality is not None and quality.fallback_model not in (None, *models):
                raise ValueError(
                    f"{where}.quality.fallback_model: no model named {quality.fallback_model!r} "
                    f"under `models:` (models: {', '.join(sorted(models))})"
                )
        return self

    @model_validator(mode="after")
    def _rollout_targets(self) -> Settings:
        seen: list[tuple[str, str]] = []
        for name, r in self.rollouts.items():
            if problem := self.rollout_problem(name, r):
                raise ValueError(problem)
            for other, target in seen:
                if self.rollouts_overlap(r.assistant, target):
                    raise ValueError(
                        f"rollouts.{name}: its assistant {r.assistant!r} has runs that rollout "
                        f"{other!r} ({target!r}) steers too; one rollout per assistant at a time"
                    )
            seen.append((name, r.assistant))
        return self

    def rollouts_overlap(self, a: str, b: str) -> bool:
        """Whether rollouts of targets ``a`` and ``b`` (assistant or graph names) would
        steer some of the same runs: a graph's rollout steers the runs of every assistant
        of that graph that has none of its own, so its quality and errors are theirs."""
        if a == b:
            return True

        def graph(target: str) -> str:
            return self.assistants[target].graph if target in self.assistants else target

        return (a in self.graphs and graph(b) == a) or (b in self.graphs and graph(a) == b)

    def rollout_problem(self, name: str, r: RolloutConfig) -> str | None:
        """What is wrong with rollout ``name`` here (its name, assistant, candidate
        model); None when nothing. Config-file and API-created rollouts both pass it."""
        where = f"rollouts.{name}"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", name):
            return f"{where}: a name of letters, digits, _ . - (128 at most)"
        if r.assistant not in self.assistants and r.assistant not in self.graphs:
            return (
                f"{where}.assistant: no assistant or graph named {r.assistant!r} "
                f"(assistants: {', '.join(sorted(self.assistants)) or 'none'}; graphs: "
                f"{', '.join(sorted(self.graphs)) or 'none'})"
            )
        model = r.candidate.model
        if model is not None and model not in {*self.models, "default"}:
            return (
                f"{where}.candidate.model: no model named {model!r} under `models:` "
                f"(models: {', '.join(sorted(self.models)) or 'none'})"
            )
        return None

    def assistant_policies(self, name: str) -> PoliciesConfig:
        """The policies of ``assistants.<name>``'s runs: its blocks over ``policies:``."""
        own = self.assistants[name].policies
        return self.policies.model_copy(update={k: getattr(own, k) for k in own.model_fields_set})

    @model_validator(mode="after")
    def _one_thread_ttl(self) -> Settings:
        ttl = self.checkpointer.ttl
        if ttl is not None and ttl.default_ttl and self.threads.default_ttl_minutes:
            raise ValueError(
                "set threads.default_ttl_minutes or checkpointer.ttl.default_ttl, not both"
            )
        return self

    @model_validator(mode="after")
    def _budget_estimate_model(self) -> Settings:
        budget = self.policies.budget
        if budget is not None and budget.estimate_model not in {"default", *self.models}:
            raise ValueError(
                f"policies.budget.estimate_model: no model named {budget.estimate_model!r} "
                f"under `models:` (configured: {', '.join(sorted(self.models)) or 'none'})"
            )
        return self

    @model_validator(mode="after")
    def _input_body_cap(self) -> Settings:
        cap = self.policies.input.max_body_bytes if self.policies.input is not None else None
        if cap is not None and cap > self.server.max_body_bytes:
            raise ValueError(
                f"policies.input.max_body_bytes ({cap}) is over server.max_body_bytes "
                f"({self.server.max_body_bytes}), which refuses larger bodies first; lower the "
                "one or raise the other"
            )
        return self

    @property
    def thread_ttl(self) -> tuple[str, float] | None:
        """(strategy, minutes) a new thread gets when its request names no ttl."""
        ttl = self.checkpointer.ttl
        if ttl is not None and ttl.default_ttl:
            return ttl.strategy, ttl.default_ttl
        if self.threads.default_ttl_minutes:
            return "delete", self.threads.default_ttl_minutes
        return None

    @property
    def thread_sweep_interval_seconds(self) -> float:
        ttl = self.checkpointer.ttl
        if ttl is not None and ttl.sweep_interval_minutes:
            return ttl.sweep_interval_minutes * 60
        return self.threads.sweep_interval_seconds

    @property
    def sqlite_dir(self) -> Path:
        d = self.data_dir if self.data_dir.is_absolute() else self.project_dir / self.data_dir
        return d

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))


class _FileSource(PydanticBaseSettingsSource):
    """Reads the project file named by ``config_file`` (from kwargs or env)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self._data: dict[str, Any] = _FILE_DATA.get(id(settings_cls), {})

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


# The file is parsed before Settings is built (so errors name the file); the
# parsed dict is handed to _FileSource through this slot.
_FILE_DATA: dict[int, dict[str, Any]] = {}


def find_config_file(project_dir: Path) -> Path | None:
    for name in CONFIG_FILE_NAMES:
        candidate = project_dir / name
        if candidate.is_file():
            return candidate
    return None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse dockyard.yaml or langgraph.json into Settings' field names."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"config file {path}: cannot be read ({e.strerror})") from e
    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"config file {path}: not valid {path.suffix[1:].upper()}: {e}") from e
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"config file {path}: expected a mapping at the top level, got {type(raw).__name__}"
        )
    if path.name == "langgraph.json" or path.suffix == ".json":
        return from_langgraph_json(path, raw)
    return raw


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        if not e["loc"]:  # a rule across sections
            lines.append(f"{e['msg']} (in {source})")
            continue
        key = ".".join(str(p) for p in e["loc"])
        env_name = "DOCKYARD_" + "__".join(str(p) for p in e["loc"]).upper()
        if key in SEED_QUALITY_ENV.values():
            env_name = key
        value = e.get("input")
        shown = repr(value) if not isinstance(value, dict) else "{...}"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key} = {shown}: {msg} (set in {source} or {env_name})")
    return "invalid configuration:\n  " + "\n  ".join(lines)


def _format_settings_error(err: SettingsError) -> str:
    match = re.search(r'field "(\w+)"', str(err))
    if match is None:
        return f"invalid configuration: {err}"
    name = "DOCKYARD_" + match.group(1).upper()
    value = os.environ.get(name)
    return (
        f"invalid configuration:\n  {match.group(1)} = {value!r}: expected a JSON object "
        f"({err.__cause__ or err}) (set in {name})"
    )


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build Settings from the project file, the environment and ``overrides``.

    Raises ConfigError with one message naming each bad key, its value and
    what was expected.
    """
    project_dir = Path(overrides.get("project_dir") or ".")
    env_file = os.environ.get("DOCKYARD_CONFIG_FILE")
    path: Path | None
    if config_file is not None:
        path = Path(config_file)
    elif env_file:
        path = Path(env_file)
    else:
        path = find_config_file(project_dir)
    data: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"config file {path}: does not exist")
        data = read_config_file(path)
        overrides.setdefault("project_dir", path.parent)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if path is not None:
        overrides["config_file"] = path
    _FILE_DATA[id(Settings)] = data
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, str(path or "the environment"))) from e
    except SettingsError as e:
        # pydantic-settings could not decode a DOCKYARD_* variable holding JSON.
        raise ConfigError(_format_settings_error(e)) from e
    finally:
        _FILE_DATA.pop(id(Settings), None)
