"""A LangGraph store seen under a namespace prefix: what one tenant's requests and runs
use, so that its namespaces are its own (``policies/tenancy.py``).

Every operation's namespace gets the prefix in front, every namespace it answers loses
it: the tenant's ``("memories", "u1")`` is ``("dockyard_tenant", T, "memories", "u1")`` in
the store an admin sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)


class PrefixedStore(BaseStore):
    def __init__(self, inner: BaseStore, prefix: tuple[str, ...]) -> None:
        self.inner = inner
        self.prefix = prefix
        self.supports_ttl = inner.supports_ttl
        self.ttl_config = inner.ttl_config

    def _op(self, op: Op) -> Op:
        p = self.prefix
        if isinstance(op, GetOp | PutOp):
            return op._replace(namespace=(*p, *op.namespace))
        if isinstance(op, SearchOp):
            return op._replace(namespace_prefix=(*p, *op.namespace_prefix))
        if isinstance(op, ListNamespacesOp):
            conditions = list(op.match_conditions or ())
            prefixes = [c for c in conditions if c.match_type == "prefix"]
            if prefixes:
                conditions = [
                    c._replace(path=(*p, *c.path)) if c.match_type == "prefix" else c
                    for c in conditions
                ]
            else:
                conditions.append(MatchCondition(match_type="prefix", path=p))
            depth = op.max_depth + len(p) if op.max_depth is not None else None
            return op._replace(match_conditions=tuple(conditions), max_depth=depth)
        raise TypeError(f"unknown store operation {type(op).__name__}")

    def _strip(self, namespace: tuple[str, ...]) -> tuple[str, ...]:
        return namespace[len(self.prefix) :]

    def _item(self, item: Item) -> Item:
        # A copy: a store may hand out the objects it keeps.
        fields: dict[str, Any] = {
            "value": item.value,
            "key": item.key,
            "namespace": self._strip(item.namespace),
            "created_at": item.created_at,
            "updated_at": item.updated_at,
        }
        if isinstance(item, SearchItem):
            return SearchItem(**fields, score=item.score)
        return Item(**fields)

    def _result(self, op: Op, result: Result) -> Result:
        if isinstance(op, GetOp):
            return self._item(result) if isinstance(result, Item) else None
        if isinstance(op, SearchOp) and isinstance(result, list):
            return [self._item(i) for i in result if isinstance(i, Item)]
        if isinstance(op, ListNamespacesOp) and isinstance(result, list):
            return [self._strip(ns) for ns in result if isinstance(ns, tuple)]
        return result

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        results = self.inner.batch([self._op(op) for op in ops])
        return [self._result(op, r) for op, r in zip(ops, results, strict=True)]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        results = await self.inner.abatch([self._op(op) for op in ops])
        return [self._result(op, r) for op, r in zip(ops, results, strict=True)]
