"""chalicelib.store.table: what goes into a DynamoDB item comes back out as it went in, and what
DynamoDB would store as something else is refused."""

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
