"""Build the PII corpus (bench/pii/corpus.jsonl): Korean and English texts with labelled
spans of e-mail addresses, phone numbers, Korean RRNs, card numbers and IP addresses,
and near-misses that are none of them (RRNs with a wrong check digit or no such date,
card numbers failing Luhn, dates, order, account and business numbers, version strings).

The labels come from how each text is built, not from any detector. Seeded: the same
file every time.

    .venv/bin/python bench/pii_corpus.py            # writes bench/pii/corpus.jsonl
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "pii" / "corpus.jsonl"

Value = tuple[str, str | None]  # (text, entity or None for a near-miss)


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def rrn_digit(first12: str) -> str:
    weights = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
    total = sum(int(d) * w for d, w in zip(first12, weights, strict=True))
    return str((11 - total % 11) % 10)


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def digits(self, n: int) -> str:
        return "".join(self.r.choice("0123456789") for _ in range(n))

    # -- entities ------------------------------------------------------------------------

    def email(self) -> Value:
        users = [
            "hong.gildong",
            "kim_minji",
            "j.smith",
            "alice+billing",
            "lee.sooyoung",
            "park77",
            "support",
            "Emily.Chen",
            "oneil",
            "dev-ops",
        ]
        domains = [
            "gmail.com",
            "naver.com",
            "daum.net",
            "kakao.com",
            "example.co.kr",
            "mail.corp-example.com",
            "acme.io",
            "university.ac.kr",
            "example.org",
            "outlook.com",
        ]
        user = self.r.choice(users) + (str(self.r.randint(1, 99)) if self.r.random() < 0.3 else "")
        value = f"{user}@{self.r.choice(domains)}"
        return (value.upper() if self.r.random() < 0.05 else value), "email"

    def kr_phone(self) -> Value:
        r = self.r
        kind = r.random()
        if kind < 0.45:
            a, b, c = r.choice(["010", "010", "011", "016"]), self.digits(4), self.digits(4)
            sep = r.choice(["-", "-", "-", " ", ".", ""])
            return f"{a}{sep}{b}{sep}{c}", "phone"
        if kind < 0.75:
            area = r.choice(["02", "031", "032", "051", "053", "062", "064", "070"])
            mid = self.digits(r.choice([3, 4]))
            if mid[0] == "0":
                mid = "5" + mid[1:]
            return f"{area}-{mid}-{self.digits(4)}", "phone"
        if kind < 0.9:
            sep = r.choice([" ", "-"])
            return f"+82{sep}10{sep}{self.digits(4)}{sep}{self.digits(4)}", "phone"
        return f"{r.choice(['1588', '1577', '1644', '1899'])}-{self.digits(4)}", "phone"

    def intl_phone(self) -> Value:
        r = self.r
        options: list[Callable[[], str]] = [
            lambda: f"({r.randint(201, 989)}) 555-{self.digits(4)}",
            lambda: f"{r.randint(201, 989)}-555-{self.digits(4)}",
            lambda: f"+1 {r.randint(201, 989)} 555 {self.digits(4)}",
            lambda: f"+1-{r.randint(201, 989)}-555-{self.digits(4)}",
            lambda: f"+44 20 7946 {self.digits(4)}",
            lambda: f"+49 30 {self.digits(6)}",
            lambda: f"+81 3-{self.digits(4)}-{self.digits(4)}",
            lambda: f"+1{r.randint(201, 989)}555{self.digits(4)}",
            lambda: f"+8210{self.digits(8)}",
            lambda: f"+33 1 {self.digits(2)} {self.digits(2)} {self.digits(2)} {self.digits(2)}",
        ]
        return r.choice(options)(), "phone"

    def rrn(self, *, valid: bool = True) -> Value:
        r = self.r
        year = r.randint(1950, 2019)
        month, day = r.randint(1, 12), r.randint(1, 28)
        code = (1 if r.random() < 0.5 else 2) if year < 2000 else (3 if r.random() < 0.5 else 4)
        first12 = f"{year % 100:02d}{month:02d}{day:02d}{code}{self.digits(5)}"
        check = rrn_digit(first12)
        if not valid:
            check = str((int(check) + r.randint(1, 9)) % 10)
        sep = "-" if r.random() < 0.8 else ""
        return f"{first12[:6]}{sep}{first12[6:]}{check}", "kr_rrn" if valid else None

    def bad_date_rrn(self) -> Value:
        first12 = f"{self.r.randint(50, 99)}{self.r.choice(['13', '00', '02'])}"
        first12 += f"{self.r.choice(['30', '32', '00'])}1{self.digits(5)}"
        return f"{first12[:6]}-{first12[6:]}{rrn_digit(first12)}", None

    def card(self, *, valid: bool = True) -> Value:
        r = self.r
        brand = r.choice(["visa", "visa", "mc", "mc", "amex", "discover", "jcb"])
        prefix, length = {
            "visa": ("4" + self.digits(5), 16),
            "mc": (str(r.randint(51, 55)) + self.digits(4), 16),
            "amex": (r.choice(["34", "37"]) + self.digits(4), 15),
            "discover": ("6011" + self.digits(2), 16),
            "jcb": ("35" + str(r.randint(28, 89)) + self.digits(2), 16),
        }[brand]
        body = prefix + self.digits(length - len(prefix) - 1)
        check = luhn_digit(body)
        if not valid:
            check = str((int(check) + r.randint(1, 9)) % 10)
        number = body + check
        sep = r.choice([" ", "-", ""])
        if length == 15:
            text = sep.join([number[:4], number[4:10], number[10:]])
        else:
            text = sep.join(number[i : i + 4] for i in range(0, 16, 4))
        return text, "credit_card" if valid else None

    def ip(self) -> Value:
        r = self.r
        kind = r.random()
        if kind < 0.6:
            first = r.choice([10, 172, 192, 203, 8, 121, 211, 58])
            return f"{first}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}", "ip"
        if kind < 0.8:
            return f"2001:db8:{r.randint(1, 0xFFFF):x}::{r.randint(1, 0xFFFF):x}", "ip"
        groups = [f"{r.randint(0, 0xFFFF):x}" for _ in range(8)]
        return ":".join(groups), "ip"

    # -- near-misses ---------------------------------------------------------------------

    def near_miss(self) -> Value:
        r = self.r
        options: list[Callable[[], str]] = [
            lambda: f"{r.randint(2019, 2026)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
            lambda: f"{r.randint(2019, 2026)}.{r.randint(1, 12):02d}.{r.randint(1, 28):02d}",
            lambda: f"ORD-{r.randint(2019, 2026)}-{self.digits(7)}",
            lambda: f"{r.randint(2019, 2026)}{r.randint(1, 12):02d}01-{self.digits(6)}",
            lambda: f"{r.choice(['110', '352', '1002'])}-{self.digits(3)}-{self.digits(6)}",
            lambda: f"{self.digits(3)}-{self.digits(2)}-{self.digits(5)}",
            lambda: f"978-89-{self.digits(4)}-{self.digits(3)}-{self.digits(1)}",
            lambda: f"v{r.randint(1, 9)}.{r.randint(0, 20)}.{r.randint(0, 30)}.{r.randint(0, 99)}",
            lambda: (
                f"version {r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}"
            ),
            lambda: (
                f"{r.randint(256, 999)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}"
            ),
            lambda: f"{r.randint(1, 255)}.{r.randint(0, 255)}.{r.randint(0, 255)}",
            lambda: f"010-{self.digits(4)}-{self.digits(3)}",
            lambda: f"{r.randint(1, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}",
            lambda: f"{r.randint(1, 9)},{self.digits(3)},{self.digits(3)}원",
            lambda: f"1Z{self.digits(3)}AA{self.digits(10)}",
            lambda: f"@{r.choice(['minji_k', 'devops', 'hong'])}",
            lambda: f"{r.choice(['admin', 'root'])}@localhost",
            lambda: self.digits(1).replace("0", "7") + self.digits(11),
        ]
        choice = r.random()
        if choice < 0.2:
            return self.rrn(valid=False)
        if choice < 0.27:
            return self.bad_date_rrn()
        if choice < 0.45:
            return self.card(valid=False)
        return r.choice(options)(), None


EN_TEMPLATES = [
    "Please contact me at {0} if the delivery is late.",
    "Customer {0} reported that the invoice was charged twice.",
    "My card number is {0}, can you check why it was declined?",
    "You can reach our office at {0} between 9 and 6.",
    "The login came from {0} at 3am, which looks suspicious.",
    "Ticket #4821: user {0} cannot reset the password; callback number {1}.",
    "Send the receipt to {0} and text me at {1}.",
    "Refund to card {0}; the customer's phone is {1}.",
    "Server {0} was blocked after too many attempts from {1}.",
    "Hi, I'm Jane. My email is {0}, phone {1}, and I paid with {2}.",
    "Our records show {0} as the billing contact.",
    "The order {0} shipped yesterday.",
    "Build {0} fixed the crash on startup.",
    "Meeting moved to {0}, same room.",
    "Reference number: {0}. Keep it for your records.",
    "Can you confirm the transfer to account {0}?",
    "The tracking code {0} shows the parcel in Incheon.",
    "I was charged {0} for the upgrade.",
    "The firmware {0} is rolling out this week.",
    "The device at {0} answered the ping.",
]

KO_TEMPLATES = [
    "고객님의 연락처는 {0}입니다.",
    "배송 관련 문의는 {0}로 연락 주세요.",
    "이메일 {0}으로 영수증을 보내 드렸습니다.",
    "주민등록번호 {0} 확인 부탁드립니다.",
    "결제하신 카드 번호는 {0}입니다.",
    "접속 IP {0}에서 로그인 시도가 있었습니다.",
    "김민지 고객님({0}) 환불 요청, 회신 번호 {1}.",
    "담당자 이메일은 {0}, 전화번호는 {1}입니다.",
    "본인 확인을 위해 {0}와 {1}를 알려 주세요.",
    "홍길동, {0}, {1}, 카드 {2}로 결제했습니다.",
    "주문번호 {0} 상품이 출고되었습니다.",
    "버전 {0}에서 오류가 수정되었습니다.",
    "회의는 {0}로 변경되었습니다.",
    "계좌번호 {0}로 입금해 주세요.",
    "사업자등록번호는 {0}입니다.",
    "총 결제 금액은 {0}입니다.",
    "운송장 번호 {0}로 조회해 보세요.",
    "문의 번호 {0} 건은 처리 완료되었습니다.",
    "서버 {0} 점검이 예정되어 있습니다.",
    "신청서에 적힌 번호는 {0}입니다.",
]

CLEAN = [
    "The weather in Seoul is nice today, let's meet at the cafe.",
    "오늘 회의에서 다음 분기 계획을 논의했습니다.",
    "Thanks for your patience while we look into this.",
    "상품이 마음에 드셨다니 다행입니다. 좋은 하루 보내세요!",
    "The agent summarised 12 tickets and closed 3 of them.",
    "제품 사용 설명서는 홈페이지에서 내려받을 수 있습니다.",
    "Version 2 of the API adds pagination and filters.",
    "3월 15일까지 신청하시면 10% 할인을 받으실 수 있습니다.",
    "Our team grew from 4 to 19 people in 2024.",
    "환불은 영업일 기준 3~5일 정도 소요됩니다.",
]


# Written by hand from forms seen in real tickets, not from the detectors: some of these
# no regex here catches (an en dash, spaces around an RRN's hyphen, a bracketed area code).
HARD: list[tuple[str, list[tuple[str, str]]]] = [
    ("Phone: (02) 123-4567, ext. 12", [("(02) 123-4567", "phone")]),
    ("휴대폰 010\u20132345\u20136789 (문자만 가능)", [("010\u20132345\u20136789", "phone")]),
    ("tel:+82-(0)10-3456-7890", [("+82-(0)10-3456-7890", "phone")]),
    ("UK office +44 (0)20 7946 0321", [("+44 (0)20 7946 0321", "phone")]),
    ("Call 555.234.5678 after 5pm", [("555.234.5678", "phone")]),
    (
        "연락처 : 010.9876.5432 / 이메일 : minsu.park@company.co.kr",
        [("010.9876.5432", "phone"), ("minsu.park@company.co.kr", "email")],
    ),
    ("Reply-To: <j.doe+orders@sub.example.co.uk>", [("j.doe+orders@sub.example.co.uk", "email")]),
    ("mailto:help@acme.io?subject=refund", [("help@acme.io", "email")]),
    ("주민번호: 850615 - 1234562 (뒷자리 확인)", [("850615 - 1234562", "kr_rrn")]),
    ("RRN 8506151234562 on file", [("8506151234562", "kr_rrn")]),
    ("ping fe80::1%eth0 failed", [("fe80::1", "ip")]),
    ("mapped address ::ffff:192.0.2.128 seen", [("::ffff:192.0.2.128", "ip")]),
    ("Subnet 192.168.10.0/24 is blocked", [("192.168.10.0", "ip")]),
    ("loopback [::1]:8080 answered", [("::1", "ip")]),
    ("Amex 3714 496353 98431 was charged", [("3714 496353 98431", "credit_card")]),
    ("카드번호 5105105105105100, 유효기간 12/27", [("5105105105105100", "credit_card")]),
    ("JCB: 3530-1113-3330-0000", [("3530-1113-3330-0000", "credit_card")]),
    ("Patch 10.0.19041.1 installed; KB 5034441", []),
    ("Chrome 120.0.6099.109 crashed", []),
    ("Order 4000-1234-5678-9011 is on hold", []),
    ("환불 계좌 국민 123456-01-234567", []),
    ("Flight KE 081 departs 13:05, gate 23", []),
    ("The meeting is on 2024/05/10 at 10:30-11:30", []),
    ("Coordinates 37.5665, 126.9780", []),
    ("Invoice no. 2023-10-0001234", []),
]


def build(seed: int = 15) -> list[dict[str, Any]]:
    g = Gen(seed)
    positive = [g.email, g.kr_phone, g.intl_phone, g.rrn, g.card, g.ip]
    ko_first = [g.email, g.kr_phone, g.kr_phone, g.rrn, g.card, g.ip]
    texts: list[dict[str, Any]] = []

    def emit(template: str, values: list[Value], lang: str, kind: str) -> None:
        parts = template.split("{")
        text = parts[0]
        spans = []
        for part in parts[1:]:
            index, rest = part.split("}", 1)
            value, entity = values[int(index)]
            if entity is not None:
                spans.append({"start": len(text), "end": len(text) + len(value), "entity": entity})
            text += value + rest
        texts.append({"id": len(texts), "lang": lang, "kind": kind, "text": text, "spans": spans})

    for lang, templates, gens in (("en", EN_TEMPLATES, positive), ("ko", KO_TEMPLATES, ko_first)):
        for i in range(90):  # PII in every slot
            template = templates[i % len(templates)]
            slots = template.count("{")
            emit(template, [g.r.choice(gens)() for _ in range(slots)], lang, "pii")
        for i in range(70):  # near-misses, now and then beside a real one
            template = templates[(i * 7) % len(templates)]
            slots = template.count("{")
            values = [g.near_miss() for _ in range(slots)]
            if slots > 1 and g.r.random() < 0.5:
                values[-1] = g.r.choice(gens)()
            emit(template, values, lang, "near_miss")
    for text, values in HARD:
        spans = []
        for value, entity in values:
            start = text.index(value)
            spans.append({"start": start, "end": start + len(value), "entity": entity})
        lang = "ko" if any("\uac00" <= c <= "\ud7a3" for c in text) else "en"
        texts.append({"id": len(texts), "lang": lang, "kind": "hard", "text": text, "spans": spans})
    for text in CLEAN:
        emit(text, [], "ko" if ord(text[0]) > 0x3000 else "en", "clean")
    return texts


def main() -> None:
    texts = build()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for item in texts:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    n_spans = sum(len(t["spans"]) for t in texts)
    print(f"{len(texts)} texts, {n_spans} labelled spans -> {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
