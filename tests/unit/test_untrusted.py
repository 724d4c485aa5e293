"""chalicelib.core.untrusted: the one constant-time comparison and the one bounded JSON parser."""

from __future__ import annotations

import pytest

from chalicelib.core.untrusted import MAX_JSON_DEPTH, BadJSON, parse_json, same


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("abc", "abc", True),
        ("abc", "abd", False),
        ("é", "é", True),
        ("é", "e", False),
        ("\udc80", "\udc80", True),
        ("\udc80", "x", False),
        (b"\xff", b"\xff", True),
        ("tessera", b"tessera", True),
        ("", "", True),
    ],
)
def test_same_compares_any_strings_without_raising(a, b, equal):
    """hmac.compare_digest raises TypeError on non-ASCII str; same() answers for every input."""
    assert same(a, b) is equal


def test_nesting_up_to_the_limit_parses_and_one_more_level_is_refused():
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(ok.encode()) is not None
    deeper = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(BadJSON, match="nested"):
        parse_json(deeper.encode())
    objects = '{"a":' * (MAX_JSON_DEPTH + 1) + "1" + "}" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(BadJSON, match="nested"):
        parse_json(objects)


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = '{"a": "' + "[{" * 100 + '\\"[[", "b": ["]]]]"]}'
    assert parse_json(text.encode()) == {"a": "[{" * 100 + '"[[', "b": ["]]]]"]}


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"{",
        b"\xff{}",
        b'{"a": 1, "a": 2}',
        b"[NaN]",
        b"[Infinity]",
        b'["\\ud800"]',
        '["\udc80"]',
        b'"' + b"x" * 70_000 + b'"',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_bad_json_is_one_error_type(raw):
    with pytest.raises(BadJSON):
        parse_json(raw)


def test_size_limit_is_the_callers():
    with pytest.raises(BadJSON, match="too large"):
        parse_json(b"[1, 2, 3]", max_bytes=8)
    assert parse_json(b"[1, 2, 3]", max_bytes=9) == [1, 2, 3]


def test_surrogate_pairs_and_utf8_are_text():
    assert parse_json(b'["\\ud83d\\ude00", "\xc3\xa9"]') == ["😀", "é"]
