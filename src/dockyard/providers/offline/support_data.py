"""The sample support agent's pretend back office: orders, refunds and an FAQ.

Everything is computed from the order id, so the same question gets the same answer on
every machine and in every test run, with no database behind it.

It sits beside ``SupportOfflineModel``, whose answers read it; the agent's tools
(``dockyard.agents.support``) call it too.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from typing import Any

ORDER_ID = re.compile(r"^[A-Z]{1,3}-?\d{3,8}$")
"""What an order id looks like: ``A1001``, ``AB-20417``."""

CURRENCY = "USD"

_CATALOG: tuple[tuple[str, float], ...] = (
    ("Harbor rain jacket", 89.00),
    ("Deck shoes", 64.50),
    ("Canvas tote bag", 24.00),
    ("Merino beanie", 19.90),
    ("Brass compass", 42.00),
    ("Rope bracelet", 12.50),
)
_STATUSES = ("processing", "shipped", "shipped", "delivered")
_CARRIERS = ("UPS", "DHL", "USPS")
_BASE_DATE = date(2025, 1, 6)

# Orders the docs and tests talk about, pinned so their story never changes.
_PINNED: dict[str, dict[str, Any]] = {
    "A1001": {
        "status": "shipped",
        "items": [("Harbor rain jacket", 1, 89.00)],
        "placed": date(2025, 3, 3),
        "carrier": "UPS",
    },
    "A1002": {
        "status": "delivered",
        "items": [("Deck shoes", 1, 64.50), ("Rope bracelet", 2, 12.50)],
        "placed": date(2025, 2, 17),
        "carrier": "DHL",
    },
    "A1003": {
        "status": "processing",
        "items": [("Merino beanie", 1, 19.90)],
        "placed": date(2025, 3, 10),
        "carrier": None,
    },
}


def normalize_order_id(order_id: str) -> str:
    return order_id.strip().lstrip("#").upper()


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("|".join(parts).encode("utf-8")).digest()


def find_order(order_id: str) -> dict[str, Any] | None:
    """The order record for ``order_id``, or ``None`` if it is not an order id."""
    oid = normalize_order_id(order_id)
    if not ORDER_ID.match(oid):
        return None
    pinned = _PINNED.get(oid)
    if pinned is not None:
        status: str = pinned["status"]
        items: list[tuple[str, int, float]] = pinned["items"]
        placed: date = pinned["placed"]
        carrier: str | None = pinned["carrier"]
    else:
        h = _digest(oid)
        status = _STATUSES[h[0] % len(_STATUSES)]
        items = [
            (_CATALOG[(h[1] + i) % len(_CATALOG)][0], 1 + h[2 + i] % 2, _CATALOG[(h[1] + i) % 6][1])
            for i in range(1 + h[5] % 2)
        ]
        placed = _BASE_DATE + timedelta(days=h[6] % 60)
        carrier = None if status == "processing" else _CARRIERS[h[7] % len(_CARRIERS)]
    total = round(sum(qty * price for _, qty, price in items), 2)
    record: dict[str, Any] = {
        "order_id": oid,
        "status": status,
        "items": [{"name": n, "quantity": q, "unit_price": p} for n, q, p in items],
        "total": total,
        "currency": CURRENCY,
        "placed_on": placed.isoformat(),
    }
    if carrier is not None:
        record["carrier"] = carrier
        record["tracking_number"] = f"{carrier[:2]}{_digest('track', oid).hex()[:10].upper()}"
    if status == "shipped":
        record["expected_delivery"] = (placed + timedelta(days=6)).isoformat()
    elif status == "delivered":
        record["delivered_on"] = (placed + timedelta(days=4)).isoformat()
    else:
        record["expected_ship_date"] = (placed + timedelta(days=2)).isoformat()
    return record


def refund(order_id: str, amount: float, reason: str) -> dict[str, Any]:
    """Issue (pretend to) a refund; the result says ``issued`` or ``not_issued`` and why."""
    order = find_order(order_id)
    oid = normalize_order_id(order_id)
    if order is None:
        return {"status": "not_issued", "order_id": oid, "error": f"there is no order {oid!r}"}
    if amount <= 0:
        return {"status": "not_issued", "order_id": oid, "error": "the amount must be positive"}
    if amount > order["total"]:
        return {
            "status": "not_issued",
            "order_id": oid,
            "error": f"{amount:.2f} is more than the order total of {order['total']:.2f} "
            f"{CURRENCY}",
        }
    refund_id = "R-" + _digest("refund", oid, f"{amount:.2f}", reason).hex()[:8].upper()
    return {
        "status": "issued",
        "refund_id": refund_id,
        "order_id": oid,
        "amount": round(amount, 2),
        "currency": CURRENCY,
        "reason": reason,
        "arrives_in": "3-5 business days, on the original payment method",
    }


FAQ: tuple[tuple[str, str, frozenset[str]], ...] = (
    (
        "How long does shipping take?",
        "Orders ship within 2 business days; standard delivery takes 3-6 business days "
        "after that, express 1-2.",
        frozenset({"shipping", "ship", "delivery", "deliver", "long", "arrive", "express"}),
    ),
    (
        "What is the return policy?",
        "Unworn items can be returned within 30 days of delivery for a full refund; "
        "start a return from your order page. Return shipping is free.",
        frozenset({"return", "returns", "policy", "exchange", "send", "back", "30"}),
    ),
    (
        "How do refunds work?",
        "Approved refunds go back to the original payment method and arrive in 3-5 "
        "business days. Damaged or wrong items are refunded without a return.",
        frozenset({"refund", "refunds", "money", "back", "damaged", "broken", "wrong"}),
    ),
    (
        "Can I cancel or change my order?",
        "Orders can be cancelled or changed until they ship (status 'processing'). "
        "After that, return the items instead.",
        frozenset({"cancel", "cancellation", "change", "modify", "address", "edit"}),
    ),
    (
        "Is there a warranty?",
        "Everything we sell has a 1-year warranty against manufacturing defects.",
        frozenset({"warranty", "guarantee", "defect", "defective", "repair"}),
    ),
    (
        "Which payment methods do you accept?",
        "Visa, Mastercard, American Express, PayPal and Apple Pay.",
        frozenset({"pay", "payment", "card", "paypal", "visa", "mastercard", "apple"}),
    ),
)

_WORD = re.compile(r"[a-z0-9]+")


def search_faq_entries(query: str, limit: int = 2) -> list[tuple[str, str]]:
    """The FAQ entries sharing the most words with ``query``, best first."""
    words = set(_WORD.findall(query.lower()))
    words |= {w[:-1] for w in words if w.endswith("s")}
    scored = [
        (len(words & keywords), -i, question, answer)
        for i, (question, answer, keywords) in enumerate(FAQ)
    ]
    hits = sorted((s for s in scored if s[0] > 0), reverse=True)
    return [(question, answer) for _, _, question, answer in hits[:limit]]
