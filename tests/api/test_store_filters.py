"""Store search filters: every operator LangGraph's store supports, on every backend
(``live_server`` runs this file on SQLite, PostgreSQL, and PostgreSQL with Redis).

The items are chosen so that each operator gives a different answer, numbers compare as
numbers (10 > 2, though "10" < "2" as text), an item without the key matches no
comparison at all, and a filter value matches values of its own JSON type only (as jsonb
decides: true is not 1, null is not a missing key).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import UnprocessableEntityError

OPERATORS = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}  # LangGraph's BaseStore.search

# key -> value; "none" lacks both filtered keys.
ITEMS: dict[str, dict[str, Any]] = {
    "one": {"n": 1, "s": "apple", "f": 0.5},
    "two": {"n": 2, "s": "banana", "f": 2.25},
    "ten": {"n": 10, "s": "cherry", "f": 10.75},
    "none": {"other": True},
    # one key, a value of each JSON type: a filter value matches its own type only
    "m-int": {"m": 1},
    "m-true": {"m": True},
    "m-false": {"m": False},
    "m-null": {"m": None},
    "m-str": {"m": "1"},
}

CASES: list[tuple[dict[str, Any], set[str]]] = [
    # numbers, against 2
    ({"n": 2}, {"two"}),
    ({"n": {"$eq": 2}}, {"two"}),
    ({"n": {"$ne": 2}}, {"one", "ten"}),
    ({"n": {"$gt": 2}}, {"ten"}),
    ({"n": {"$gte": 2}}, {"two", "ten"}),
    ({"n": {"$lt": 2}}, {"one"}),
    ({"n": {"$lte": 2}}, {"one", "two"}),
    # floats, between the stored values
    ({"f": {"$gt": 2.0}}, {"two", "ten"}),
    ({"f": {"$lt": 2.25}}, {"one"}),
    ({"f": {"$lte": 2.25}}, {"one", "two"}),
    ({"f": {"$eq": 2.25}}, {"two"}),
    # strings, against "banana"
    ({"s": "banana"}, {"two"}),
    ({"s": {"$eq": "banana"}}, {"two"}),
    ({"s": {"$ne": "banana"}}, {"one", "ten"}),
    ({"s": {"$gt": "banana"}}, {"ten"}),
    ({"s": {"$gte": "banana"}}, {"two", "ten"}),
    ({"s": {"$lt": "banana"}}, {"one"}),
    ({"s": {"$lte": "banana"}}, {"one", "two"}),
    # operators together: all must hold
    ({"n": {"$gt": 1, "$lt": 10}}, {"two"}),
    ({"n": {"$gte": 2}, "s": {"$ne": "cherry"}}, {"two"}),
    ({"n": {"$ne": 1}, "f": {"$lt": 10}}, {"two"}),
    ({"n": {"$gt": 10}}, set()),
    # JSON types are told apart (true is not 1, null is not a missing key), as jsonb does
    ({"m": 1}, {"m-int"}),
    ({"m": {"$eq": 1}}, {"m-int"}),
    ({"m": True}, {"m-true"}),
    ({"m": {"$eq": False}}, {"m-false"}),
    ({"m": None}, {"m-null"}),
    ({"m": "1"}, {"m-str"}),
    ({"m": {"$ne": 1}}, {"m-true", "m-false", "m-null", "m-str"}),
    ({"m": {"$ne": True}}, {"m-int", "m-false", "m-null", "m-str"}),
    ({"m": {"$ne": None}}, {"m-int", "m-true", "m-false", "m-str"}),
    ({"m": {"$gte": 0}}, {"m-int"}),
    ({"m": {"$lt": 5}}, {"m-int"}),
    ({"m": {"$gte": "0"}}, {"m-str"}),
    ({"s": {"$gt": -1}}, set()),
    ({"n": {"$lt": "z"}}, set()),
]


@pytest.fixture(scope="module")
async def namespace(server_url: str) -> list[str]:
    from langgraph_sdk import get_client

    ns = [f"filters-{uuid.uuid4().hex}"]
    client = get_client(url=server_url, timeout=30)
    try:
        for key, value in ITEMS.items():
            await client.store.put_item(ns, key, value)
    finally:
        await client.aclose()
    return ns


def test_the_cases_tell_every_operator_apart() -> None:
    # Against the same pivot, no two operators give the same answer: a store that
    # swapped one for another, or ignored one, could not pass.
    for key, pivot in (("n", 2), ("s", "banana")):
        answers = {
            op: frozenset(want)
            for flt, want in CASES
            if len(flt) == 1 and isinstance(flt.get(key), dict)
            for op, value in flt[key].items()
            if len(flt[key]) == 1 and value == pivot
        }
        assert set(answers) == OPERATORS
        assert len(set(answers.values())) == len(OPERATORS)


@pytest.mark.parametrize(("flt", "want"), CASES, ids=[str(c[0]) for c in CASES])
async def test_filter(
    client: LangGraphClient, namespace: list[str], flt: dict[str, Any], want: set[str]
) -> None:
    got = await client.store.search_items(namespace, filter=flt, limit=100)
    assert {i["key"] for i in got["items"]} == want
    for item in got["items"]:
        assert item["value"] == ITEMS[item["key"]]


async def test_unknown_operator_is_refused(client: LangGraphClient, namespace: list[str]) -> None:
    for op in ("$in", "$regex", "$exists"):
        with pytest.raises(UnprocessableEntityError) as err:
            await client.store.search_items(namespace, filter={"n": {op: 1}})
        assert op in str(err.value.body)
