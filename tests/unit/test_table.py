"""chalicelib.store.table: what goes into a DynamoDB item comes back out, and reading it back as
what was stored refuses a record of another shape instead of passing it on."""

from __future__ import annotations

import pytest

from chalicelib.store import table


def test_every_storable_value_comes_back_from_its_item_unchanged():
    values = {
        "name": "ada",
        "count": 7,
        "negative": -3,
        "flag": True,
        "off": False,
        "empty": "",
        "nested": {"scopes": ["a", "b"], "inner": {"n": 0, "none": None}},
        "list": [1, "two", [False]],
    }
    item = table.to_item(values)
    assert item["count"] == {"N": "7"}
    assert item["flag"] == {"BOOL": True}
    assert table.from_item(item) == values


def test_a_none_value_is_left_out_of_the_item_but_kept_inside_a_map():
    item = table.to_item({"a": None, "m": {"b": None}})
    assert "a" not in item
    assert item["m"] == {"M": {"b": {"NULL": True}}}


def test_a_string_set_comes_back_as_a_sorted_list_and_a_decimal_as_a_float():
    assert table.from_attr({"SS": ["b", "c", "a"]}) == ["a", "b", "c"]
    assert table.from_attr({"N": "1.5"}) == 1.5


def test_types_dynamodb_would_store_differently_are_refused_both_ways():
    with pytest.raises(TypeError):
        table.to_attr(1.5)  # DynamoDB wants a Decimal; nothing here stores fractions
    with pytest.raises(TypeError):
        table.to_attr({"a", "b"})
    with pytest.raises(TypeError):
        table.from_attr({"B": b"\x00"})


def test_readers_return_what_was_stored_and_defaults_for_absent_attributes():
    values = table.from_item(table.to_item({"id": "u1", "n": 4, "s": None}))
    assert table.text(values, "id") == "u1"
    assert table.number(values, "n") == 4
    assert table.number(values, "missing", 0) == 0
    assert table.optional_text(values, "id") == "u1"
    assert table.optional_text(values, "missing") is None


def test_readers_refuse_a_value_of_another_type_and_a_missing_required_one():
    values = table.from_item(table.to_item({"id": 5, "n": "4", "list": ["x"]}))
    with pytest.raises(TypeError):
        table.text(values, "id")
    with pytest.raises(TypeError):
        table.number(values, "n")
    with pytest.raises(TypeError):
        table.optional_text(values, "list")
    with pytest.raises(KeyError):
        table.text(values, "absent")
    with pytest.raises(KeyError):
        table.number(values, "absent")
