"""JSON schemas of a graph's input, output, state, config and context.

LangGraph renders them with pydantic, which refuses ``typing.TypedDict`` before
Python 3.12, so on 3.11 a graph whose state is written as most tutorials write
it would have no schema at all. Here a ``typing.TypedDict`` anywhere in a type is
rebuilt as the ``typing_extensions.TypedDict`` it stands for, which pydantic
accepts and describes exactly as it would the original on 3.12. A field pydantic
cannot describe at all (an arbitrary class) becomes "any value" instead of
sinking the whole schema. No schema ever fails the request: one that cannot be
made is answered as null, and the reason is logged at debug level.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import types
import typing
import warnings
import weakref
from collections.abc import Callable
from typing import Annotated, Any, Literal, NotRequired, Required, Union

import typing_extensions
from langgraph.graph import StateGraph
from langgraph.warnings import LangGraphDeprecatedSinceV10
from pydantic import BaseModel, RootModel, TypeAdapter, create_model
from pydantic.fields import FieldInfo

log = logging.getLogger("dockyard.schemas")

Schema = dict[str, Any]
_KEY_WRAPPERS = (Required, NotRequired, typing_extensions.ReadOnly)
_made: weakref.WeakKeyDictionary[Any, dict[str, Schema | None]] = weakref.WeakKeyDictionary()
# Made with names known only at run time, which type checkers cannot follow.
_TypedDict: Any = typing_extensions.TypedDict


def graph_schemas(graph: Any) -> dict[str, Schema | None]:
    """The five schemas of the Agent Server API's ``GET /assistants/{id}/schemas``.

    Made once per graph object: describing LangChain's message types alone takes
    pydantic about a tenth of a second, and a compiled graph does not change.
    """
    with contextlib.suppress(KeyError, TypeError):  # TypeError: not weakly referable
        return dict(_made[graph])
    schemas = _make(graph)
    with contextlib.suppress(TypeError):
        _made[graph] = schemas
    return dict(schemas)


def _make(graph: Any) -> dict[str, Schema | None]:
    builder = graph.builder if isinstance(getattr(graph, "builder", None), StateGraph) else None

    def own(typ: Any, suffix: str) -> Callable[[], Schema | None] | None:
        if typ is None:
            return None
        if builder is None:  # a Pregel graph, from the functional API for one
            return lambda: _root_schema(graph.get_name(suffix), typ)
        return lambda: _schema_of(typ, graph.get_name(suffix))

    context = getattr(graph, "context_schema", None)
    input_schema = _first(
        "input", graph.get_input_jsonschema, own(_io_type(graph, builder, "input"), "Input")
    )
    return {
        "input_schema": input_schema,
        "output_schema": _first(
            "output", graph.get_output_jsonschema, own(_io_type(graph, builder, "output"), "Output")
        ),
        "state_schema": _first("state", lambda: _state_schema(graph, builder)) or input_schema,
        "config_schema": _first(
            "config",
            lambda: _config_schema(graph),
            context and (lambda: _config_from_context(graph.get_name("Config"), context)),
        ),
        "context_schema": _first("context", graph.get_context_jsonschema, own(context, "Context")),
    }


def _first(what: str, *makers: Callable[[], Schema | None] | None) -> Schema | None:
    """The first schema one of the makers produces. LangGraph's own answer comes first,
    so a graph it can describe reads exactly as LangGraph's server describes it."""
    for make in makers:
        if make is None:
            continue
        try:
            return make()
        except Exception as exc:  # an unusual type must not fail the route
            log.debug(
                "%s schema: %s failed: %s: %s", what, make.__qualname__, type(exc).__name__, exc
            )
    return None


def _config_schema(graph: Any) -> Schema:
    # Deprecated in LangGraph 1.0 in favour of context, but the Agent Server API
    # still answers config_schema; the warning would fire on every request.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
        schema: Schema = graph.get_config_jsonschema()
        return schema


def _io_type(graph: Any, builder: StateGraph[Any] | None, which: str) -> Any:
    if builder is not None:
        return getattr(builder, f"{which}_schema", None)
    return getattr(graph, "InputType" if which == "input" else "OutputType", None)


def _root_schema(name: str, typ: Any) -> Schema:
    # What LangGraph answers for a graph with a single input or output channel.
    model = create_model(name, __base__=RootModel[_describable(typ)])  # type: ignore[call-overload, misc]
    schema: Schema = model.model_json_schema()
    return schema


def _config_from_context(name: str, context: Any) -> Schema:
    # LangGraph's config schema: the context type under "configurable".
    model = create_model(name, configurable=(_describable(context), None))
    schema: Schema = model.model_json_schema()
    return schema


def _state_schema(graph: Any, builder: StateGraph[Any] | None) -> Schema:
    """The state type's schema, plus every other channel the graph keeps in its state
    (the keys only an input, output or node schema declares), as LangGraph's server
    lists them."""
    channels: list[str] = list(graph.stream_channels_list)
    if builder is None:
        return _record_schema(
            graph.get_name("State"), {k: _Field(graph.channels[k].UpdateType) for k in channels}
        )
    schema = _schema_of(builder.state_schema, graph.get_name("State"))
    known = schema.get("properties")
    if not isinstance(known, dict):
        return schema
    missing = [k for k in channels if k not in known]
    if missing:
        declared: dict[str, _Field] = {}
        for typ in builder.schemas:  # the state schema first, then the others
            declared = (_fields(typ) or {}) | declared
        extra = _record_schema(
            "Extra",
            {
                k: _Field(declared[k].type, info=declared[k].info)
                if k in declared
                else _Field(graph.channels[k].UpdateType)
                for k in missing
            },
        )
        known.update(extra["properties"])
        if extra.get("$defs"):
            schema["$defs"] = {**extra["$defs"], **schema.get("$defs", {})}
    return schema


def _schema_of(typ: Any, name: str) -> Schema:
    """The JSON schema pydantic gives ``typ`` on Python 3.12; failing that, one made
    field by field, where a field pydantic cannot describe may hold any value."""
    try:
        schema: Schema = TypeAdapter(_portable(typ, {})).json_schema()
        return schema
    except Exception as exc:
        fields = _fields(typ)
        if fields is None:
            raise
        log.debug("schema of %r made field by field: %s: %s", typ, type(exc).__name__, exc)
    return _record_schema(getattr(typ, "__name__", name), fields)


@dataclasses.dataclass(frozen=True)
class _Field:
    type: Any
    required: bool = False
    info: FieldInfo | None = None  # a pydantic field's default, description, alias


def _record_schema(name: str, fields: dict[str, _Field]) -> Schema:
    # A TypedDict rather than a model: any key is a valid name (a model's field may
    # not be called ``schema`` or ``model_config``), and a key may be absent.
    keys: dict[str, Any] = {}
    for key, f in fields.items():
        typ = _describable(f.type)
        if f.info is not None:
            typ = Annotated[typ, f.info]
        keys[key] = Required[typ] if f.required else NotRequired[typ]
    record: Any = _TypedDict(name, keys)
    schema: Schema = TypeAdapter(record).json_schema()
    return schema


def _describable(typ: Any) -> Any:
    portable = _portable(typ, {})
    try:
        TypeAdapter(portable).json_schema()
    except Exception:
        return Any
    return portable


def _fields(typ: Any) -> dict[str, _Field] | None:
    """The fields of a record type: a pydantic model, a TypedDict or a dataclass."""
    if isinstance(typ, type) and issubclass(typ, BaseModel):
        return {k: _Field(f.annotation, f.is_required(), f) for k, f in typ.model_fields.items()}
    if typing_extensions.is_typeddict(typ):
        required = typ.__required_keys__
        hints = typing.get_type_hints(typ, include_extras=True)
        return {k: _Field(_strip_key_wrappers(t), k in required) for k, t in hints.items()}
    if isinstance(typ, type) and dataclasses.is_dataclass(typ):
        hints = typing.get_type_hints(typ, include_extras=True)
        return {
            f.name: _dataclass_field(f, hints.get(f.name, Any)) for f in dataclasses.fields(typ)
        }
    return None


def _dataclass_field(f: dataclasses.Field[Any], typ: Any) -> _Field:
    if f.default is not dataclasses.MISSING:
        return _Field(typ, info=FieldInfo(default=f.default))
    if f.default_factory is not dataclasses.MISSING:
        return _Field(typ, info=FieldInfo(default_factory=f.default_factory))
    return _Field(typ, required=True)


def _strip_key_wrappers(hint: Any) -> Any:
    while typing_extensions.get_origin(hint) in _KEY_WRAPPERS:
        hint = typing_extensions.get_args(hint)[0]
    return hint


def _portable(tp: Any, seen: dict[Any, Any]) -> Any:
    """``tp`` with every ``typing.TypedDict`` in it rebuilt as a ``typing_extensions`` one."""
    if typing_extensions.is_typeddict(tp):
        return _portable_typeddict(tp, seen)
    args = typing_extensions.get_args(tp)
    origin = typing_extensions.get_origin(tp)
    if not args or origin is Literal:
        return tp
    if origin is Annotated:
        inner = _portable(args[0], seen)
        return tp if inner is args[0] else Annotated[(inner, *tp.__metadata__)]
    new = tuple(_portable(a, seen) for a in args)
    if all(n is a for n, a in zip(new, args, strict=True)):
        return tp
    if origin in (Union, types.UnionType):
        return Union[new]  # noqa: UP007 - built from a tuple of types
    if isinstance(tp, types.GenericAlias):
        return types.GenericAlias(origin, new)
    copy_with = getattr(tp, "copy_with", None)
    return copy_with(new) if copy_with is not None else tp


def _portable_typeddict(cls: Any, seen: dict[Any, Any]) -> Any:
    from_typing = type(cls).__module__ == "typing"
    if cls in seen:
        done = seen[cls]
        if done is not None:
            return done
        # A cycle: a typing_extensions class may refer to itself, pydantic follows it;
        # a typing one cannot be referred to before it is rebuilt, so the loop is cut.
        return Any if from_typing else cls
    seen[cls] = None
    changed = from_typing
    keys: dict[str, Any] = {}
    for key, hint in typing.get_type_hints(cls, include_extras=True).items():
        bare = _strip_key_wrappers(hint)
        new = _portable(bare, seen)
        changed = changed or new is not bare
        keys[key] = Required[new] if key in cls.__required_keys__ else NotRequired[new]
    if not changed:
        seen[cls] = cls
        return cls
    out: Any = _TypedDict(cls.__name__, keys)
    out.__module__, out.__qualname__, out.__doc__ = cls.__module__, cls.__qualname__, cls.__doc__
    if hasattr(cls, "__pydantic_config__"):
        out.__pydantic_config__ = cls.__pydantic_config__
    seen[cls] = out
    return out
