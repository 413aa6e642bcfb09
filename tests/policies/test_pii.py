"""policies.pii as units: each entity and its validator, the near-misses, each action,
custom patterns, the configuration's refusals, and LangChain messages."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from dockyard.errors import ConfigError, GuardrailBlockedError, PiiBlockedError
from dockyard.policies.pii import (
    PiiPolicy,
    luhn_valid,
    protect_input,
    protect_output,
    rrn_valid,
)
from dockyard.settings import PiiConfig, load_settings


def policy(**config: object) -> PiiPolicy:
    return PiiPolicy.from_config(PiiConfig.model_validate(config))


def found(text: str, **config: object) -> list[tuple[str, str]]:
    return [(f.entity, f.text) for f in policy(**config).scan(text)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("메일은 hong.gildong@example.co.kr으로 보내 주세요", "hong.gildong@example.co.kr"),
        ("write to Alice+billing@Mail.Example.com.", "Alice+billing@Mail.Example.com"),
        ("kim_minji7@naver.com", "kim_minji7@naver.com"),
    ],
)
def test_email(text: str, value: str) -> None:
    assert found(text) == [("email", value)]


@pytest.mark.parametrize(
    "value",
    [
        "010-1234-5678",
        "010 1234 5678",
        "01012345678",
        "011-123-4567",
        "02-123-4567",
        "02-1234-5678",
        "031-123-4567",
        "070-1234-5678",
        "1588-1234",
        "+82 10 1234 5678",
        "+82-10-1234-5678",
        "+821012345678",
        "+82 2 123 4567",
        "(415) 555-0132",
        "415-555-0132",
        "+1 415 555 0132",
        "+14155550132",
        "+44 20 7946 0958",
        "+81 3-1234-5678",
    ],
)
def test_phone(value: str) -> None:
    assert found(f"연락처: {value}로 전화 주세요") == [("phone", value)]
    assert found(f"call {value}.") == [("phone", value)]


@pytest.mark.parametrize(
    "text",
    [
        "2024-01-15",  # a date
        "2024.03.07 14:30:00",
        "ORD-2024-0012345",
        "주문번호 20240115-000123",
        "account 110-123-456789",  # a bank account (3-3-6)
        "사업자등록번호 123-45-67890",
        "ISBN 978-89-1234-567-8",
        "010-1234-567",  # one digit short
        "010-1234-5678-9",  # part of a longer number
        "+12 34",  # too few digits for E.164
        "1,234,567원",
        "1850-1900",  # years, not 1588-1234
    ],
)
def test_phone_near_misses(text: str) -> None:
    assert found(text) == []


def test_rrn_checksum() -> None:
    assert rrn_valid("9001011234568")
    assert not rrn_valid("9001011234567")  # wrong check digit
    assert not rrn_valid("9013011234568")  # month 13
    assert not rrn_valid("9002301234561")  # 30 February
    assert rrn_valid("0502283123457")  # born 2005 (code 3)
    assert rrn_valid("9001015123452")  # a foreign resident (code 5): (13 - s % 11) % 10
    assert found("주민번호 900101-1234568 입니다") == [("kr_rrn", "900101-1234568")]
    assert found("주민번호 9001011234568") == [("kr_rrn", "9001011234568")]
    assert found("주민번호 900101-1234567 입니다") == []
    # Numbers issued since October 2020 carry no check digit: the switch finds them.
    assert found("900101-1234567", kr_rrn_checksum=False) == [("kr_rrn", "900101-1234567")]


def test_credit_card_luhn_and_shapes() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    for value in (
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "3782 822463 10005",  # Amex 4-6-5
        "5555555555554444",
    ):
        assert found(f"카드 {value}로 결제") == [("credit_card", value)]
    assert found("card 4111 1111 1111 1112") == []  # fails Luhn
    assert found("tracking 7992739871300") == []  # Luhn-valid, but no issuer starts with 7
    assert found("4111 1111-1111 1111") == []  # mixed separators: not how a card is printed


def test_ip() -> None:
    assert found("login from 203.0.113.7, blocked") == [("ip", "203.0.113.7")]
    assert found("IP 10.0.0.1:8080") == [("ip", "10.0.0.1")]
    assert found("접속 IP 2001:db8::8a2e:370:7334에서") == [("ip", "2001:db8::8a2e:370:7334")]
    assert found("fe80::1ff:fe23:4567:890a") == [("ip", "fe80::1ff:fe23:4567:890a")]
    for text in (
        "v1.2.3.4",
        "version 10.0.0.1",
        "버전 2.1.0.3에서",
        "256.1.1.1",
        "192.168.1",
        "1.2.3.4.5",
        "at 12:30:45",
        "std::vector",
    ):
        assert found(text) == [], text


def test_no_finds_in_identifiers_and_clean_text() -> None:
    rng = random.Random(15)
    ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(2000)]
    ids += [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(200)]
    hits = [i for i in ids if found(f"run {i} failed", entities=["phone", "kr_rrn", "credit_card"])]
    assert hits == []
    assert found("run 6a9ed97e-1821-5346-fd4f-0188c67d89d0 failed") == []  # no 1821-5346
    assert found("오늘 회의에서 다음 분기 계획을 논의했습니다.") == []
    assert found("2026-12-07 13:18:31,123 INFO dockyard.api: started on 127.0.0.1:8123") == [
        ("ip", "127.0.0.1")
    ]


TEXT = "mail hong@example.com, call 010-1234-5678, card 4111-1111-1111-1111, 900101-1234568"


def test_mask() -> None:
    assert policy(action="mask").apply(TEXT) == (
        "mail ****@*******.com, call ***-****-5678, card ****-****-****-1111, ******-*******"
    )


def test_redact() -> None:
    assert policy(action="redact").apply(TEXT) == (
        "mail [REDACTED_EMAIL], call [REDACTED_PHONE], card [REDACTED_CREDIT_CARD], "
        "[REDACTED_KR_RRN]"
    )


def test_hash_is_stable_and_keyed() -> None:
    plain = policy(action="hash").apply("hong@example.com / hong@example.com / kim@example.com")
    first, second, third = plain.split(" / ")
    assert first == second != third and first.startswith("<email_hash:")
    keyed = policy(action="hash", hash_key="k1").apply("hong@example.com")
    assert keyed.startswith("<email_hash:") and keyed != first
    assert policy(action="hash", hash_key="k2").apply("hong@example.com") != keyed


def test_block_names_the_kinds_not_the_values() -> None:
    with pytest.raises(PiiBlockedError) as e:
        policy(action="block").apply(TEXT)
    assert isinstance(e.value, GuardrailBlockedError)
    assert (e.value.status_code, e.value.code) == (400, "pii_detected")
    assert "credit_card, email, kr_rrn, phone" in e.value.message
    for secret in ("hong@", "1234-5678", "4111", "900101"):
        assert secret not in e.value.message and secret not in repr(e.value)
    assert policy(action="block").apply("nothing personal here") == "nothing personal here"


def test_entities_choose_what_is_found() -> None:
    assert found(TEXT, entities=["email"]) == [("email", "hong@example.com")]
    assert "010-1234-5678" in policy(entities=["email"]).apply(TEXT)


def test_custom_patterns() -> None:
    p = policy(action="redact", entities=["email"], patterns={"employee_id": r"EMP-\d{6}"})
    assert (
        p.apply("사번 EMP-004211, hong@example.com")
        == "사번 [REDACTED_EMPLOYEE_ID], [REDACTED_EMAIL]"
    )
    # a custom pattern runs on text with no digit in it, too
    words = policy(action="redact", entities=[], patterns={"codename": "Project Falcon"})
    assert words.apply("about Project Falcon") == "about [REDACTED_CODENAME]"


@pytest.mark.parametrize(
    ("pii", "expected"),
    [
        ({"action": "scramble"}, "policies.pii.action"),
        ({"entities": ["email", "passport"]}, "policies.pii.entities.1"),
        ({"entities": ["email", "email"]}, "names an item twice"),
        ({"patterns": {"bad": "("}}, "not a regular expression"),
        ({"patterns": {"email": "x"}}, "is a built-in entity"),
        ({"patterns": {"Bad Name": "x"}}, "lower-case letters"),
        ({"patterns": {"empty": "a*"}}, "matches the empty string"),
        ({"entities": []}, "name entities or patterns"),
        ({"apply_to": ["prompts"]}, "policies.pii.apply_to.0"),
        ({"actoin": "mask"}, "policies.pii.actoin = 'mask': unknown key"),
    ],
)
def test_bad_config_stops_startup(
    pii: dict[str, object], expected: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.delenv("DOCKYARD_CONFIG_FILE", raising=False)
    with pytest.raises(ConfigError) as e:
        load_settings(None, project_dir=tmp_path, policies={"pii": pii})
    assert expected in e.value.message


def test_config_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.delenv("DOCKYARD_CONFIG_FILE", raising=False)
    settings = load_settings(None, project_dir=tmp_path, policies={"pii": {}})
    assert settings.policies.pii is not None
    p = PiiPolicy.from_config(settings.policies.pii)
    assert p.action == "mask"
    assert p.entities == ["email", "phone", "kr_rrn", "credit_card", "ip"]
    assert all(p.applies_to(s) for s in ("input", "output", "tool_results"))
    assert load_settings(None, project_dir=tmp_path).policies.pii is None


def test_messages() -> None:
    p = policy(action="redact")
    system = SystemMessage("Escalate to support@acme.com")
    human = HumanMessage(
        [
            {"type": "text", "text": "I am hong@example.com"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ]
    )
    tool = ToolMessage("owner: 010-1234-5678", tool_call_id="c1")
    clean = HumanMessage("hello")
    out = protect_input(p, [system, human, tool, clean])
    assert out[0] is system  # the developer's prompt passes as it is
    assert out[1].content[0] == {"type": "text", "text": "I am [REDACTED_EMAIL]"}  # type: ignore[index]
    assert out[1].content[1] is human.content[1]  # type: ignore[index]
    assert out[2].content == "owner: [REDACTED_PHONE]" and out[2].tool_call_id == "c1"  # type: ignore[attr-defined]
    assert out[3] is clean
    assert human.content[0]["text"] == "I am hong@example.com"  # type: ignore[index]  # not mutated

    answer = AIMessage(
        "Calling 010-1234-5678 now",
        tool_calls=[
            {"name": "call", "args": {"to": {"number": "010-1234-5678"}, "n": 1}, "id": "t1"}
        ],
    )
    fixed = protect_output(p, answer)
    assert fixed.content == "Calling [REDACTED_PHONE] now"
    assert fixed.tool_calls[0]["args"] == {"to": {"number": "[REDACTED_PHONE]"}, "n": 1}
    assert answer.tool_calls[0]["args"]["to"]["number"] == "010-1234-5678"


def test_messages_follow_apply_to() -> None:
    p = policy(action="redact", apply_to=["tool_results"])
    human = HumanMessage("I am hong@example.com")
    tool = ToolMessage("hong@example.com", tool_call_id="c1")
    out = protect_input(p, [human, tool])
    assert out[0] is human and out[1].content == "[REDACTED_EMAIL]"
    answer = AIMessage("hong@example.com")
    assert protect_output(p, answer) is answer


def test_blocked_message_says_where() -> None:
    p = policy(action="block")
    with pytest.raises(PiiBlockedError, match="a tool result held personal data \\(email\\)"):
        protect_input(p, [ToolMessage("hong@example.com", tool_call_id="c1")])
    with pytest.raises(PiiBlockedError, match="the model's answer held personal data"):
        protect_output(
            p,
            AIMessage("", tool_calls=[{"name": "f", "args": {"a": "hong@example.com"}, "id": "1"}]),
        )


def test_detectors_for_langchains_middleware() -> None:
    from langchain.agents.middleware import PIIMiddleware

    p = policy(entities=["kr_rrn", "phone"])
    middleware = PIIMiddleware("kr_rrn", detector=p.detector("kr_rrn"), strategy="redact")
    state = {"messages": [HumanMessage("주민번호 900101-1234568, 전화 010-1234-5678")]}
    update = middleware.before_model(state, None)  # type: ignore[arg-type]
    assert update is not None
    assert update["messages"][0].content == "주민번호 [REDACTED_KR_RRN], 전화 010-1234-5678"


def test_config_from_yaml_and_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DOCKYARD_CONFIG_FILE", raising=False)
    config = tmp_path / "dockyard.yaml"
    config.write_text(
        "policies:\n  pii:\n    action: hash\n    entities: [email, kr_rrn]\n"
        "    patterns: {employee_id: 'EMP-\\d{6}'}\n    hash_key: s3cret\n"
    )
    monkeypatch.setenv("DOCKYARD_POLICIES__PII__APPLY_TO", '["output"]')
    pii = load_settings(config).policies.pii
    assert pii is not None
    assert (pii.action, pii.entities, pii.apply_to) == ("hash", ["email", "kr_rrn"], ["output"])
    assert pii.patterns == {"employee_id": r"EMP-\d{6}"}
    assert "s3cret" not in repr(pii)
