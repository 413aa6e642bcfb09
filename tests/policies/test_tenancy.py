"""Tenant scoping's rules, and the prefixed store a tenant's requests and runs use."""

from __future__ import annotations

import pytest
from langgraph.store.memory import InMemoryStore

from dockyard.api.routes.chat import session_thread_id
from dockyard.caller import Caller, use
from dockyard.errors import InvalidRequestError
from dockyard.policies import tenancy
from dockyard.storage.prefixed import PrefixedStore

A = Caller("key_a", "acme")
ADMIN = Caller("key_o", "ops", frozenset({"admin"}))


def test_stamp_and_visibility() -> None:
    with use(A):
        stamped = tenancy.stamp({"topic": "x"})
        assert stamped == {"topic": "x", "dockyard_tenant": "acme", "dockyard_key_id": "key_a"}
        assert tenancy.visible(stamped)
        assert not tenancy.visible({"dockyard_tenant": "globex"})
        assert not tenancy.visible({})  # a record of no tenant is not a scoped caller's
        assert tenancy.visible_or_shared({})
        assert tenancy.search_filter(None) == {"dockyard_tenant": "acme"}
        assert tenancy.search_filter({"dockyard_tenant": "globex"}) == {
            "dockyard_tenant": {"$never": True}
        }
        with pytest.raises(InvalidRequestError) as err:
            tenancy.stamp({"dockyard_tenant": "globex"})
        assert err.value.code == "reserved_metadata"
    with use(ADMIN):
        assert tenancy.visible({"dockyard_tenant": "globex"})
        assert tenancy.stamp({"dockyard_tenant": "globex"}) == {"dockyard_tenant": "globex"}
        assert tenancy.search_filter({"a": 1}) == {"a": 1}
    assert tenancy.stamp({"a": 1}) == {"a": 1}  # no caller: an open server


def test_chat_sessions_differ_per_tenant() -> None:
    plain = session_thread_id("u1", "s1")
    with use(A):
        acme = session_thread_id("u1", "s1")
    with use(Caller("key_b", "globex")):
        globex = session_thread_id("u1", "s1")
    assert len({plain, acme, globex}) == 3


async def test_prefixed_store_maps_every_operation() -> None:
    inner = InMemoryStore()
    mine = PrefixedStore(inner, ("dockyard_tenant", "acme"))
    theirs = PrefixedStore(inner, ("dockyard_tenant", "globex"))
    await mine.aput(("prefs", "u1"), "lang", {"v": "ko"})
    await mine.aput(("notes",), "n", {"v": 1})
    await theirs.aput(("prefs", "u1"), "lang", {"v": "en"})
    item = await mine.aget(("prefs", "u1"), "lang")
    assert item is not None and item.value == {"v": "ko"} and item.namespace == ("prefs", "u1")
    raw = await inner.aget(("dockyard_tenant", "acme", "prefs", "u1"), "lang")
    assert raw is not None and raw.namespace == ("dockyard_tenant", "acme", "prefs", "u1")
    found = await mine.asearch(("prefs",))
    assert [(i.namespace, i.value) for i in found] == [(("prefs", "u1"), {"v": "ko"})]
    assert sorted(await mine.alist_namespaces()) == [("notes",), ("prefs", "u1")]
    assert await mine.alist_namespaces(prefix=("prefs",)) == [("prefs", "u1")]
    assert await mine.alist_namespaces(suffix=("u1",)) == [("prefs", "u1")]
    assert sorted(await mine.alist_namespaces(max_depth=1)) == [("notes",), ("prefs",)]
    assert sorted(await inner.alist_namespaces(max_depth=2)) == [
        ("dockyard_tenant", "acme"),
        ("dockyard_tenant", "globex"),
    ]
    await theirs.adelete(("notes",), "n")  # not theirs to delete: nothing happens
    assert await mine.aget(("notes",), "n") is not None
    assert mine.get(("notes",), "n") is not None  # the sync API maps the same way
