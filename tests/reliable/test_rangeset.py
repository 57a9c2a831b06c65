"""RangeSet: the packet numbers a receiver has seen, as merged inclusive ranges."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from twistchat.reliable.rangeset import RangeSet


def runs(values) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers, lowest first (the expected ranges)."""
    out: list[list[int]] = []
    for value in sorted(set(values)):
        if out and out[-1][1] == value - 1:
            out[-1][1] = value
        else:
            out.append([value, value])
    return [tuple(r) for r in out]


def test_empty():
    ranges = RangeSet()
    assert len(ranges) == 0
    assert list(ranges) == []
    assert ranges.largest() is None
    assert ranges.descending(10) == ()
    assert 0 not in ranges


def test_add_reports_duplicates():
    ranges = RangeSet()
    assert ranges.add(5) is True
    assert ranges.add(5) is False
    assert 5 in ranges
    assert 4 not in ranges and 6 not in ranges
    assert ranges.add(6) is True
    assert ranges.add(6) is False
    assert ranges.add(5) is False
    assert list(ranges) == [(5, 6)]


def test_merging_on_either_side_and_in_the_middle():
    ranges = RangeSet()
    for value in (10, 14, 12):
        ranges.add(value)
    assert list(ranges) == [(10, 10), (12, 12), (14, 14)]
    ranges.add(11)  # joins 10 and 12
    assert list(ranges) == [(10, 12), (14, 14)]
    ranges.add(15)  # extends a range upwards
    ranges.add(9)   # and one downwards
    assert list(ranges) == [(9, 12), (14, 15)]
    ranges.add(13)  # fills the last gap
    assert list(ranges) == [(9, 15)]
    assert ranges.largest() == 15
    assert all(v in ranges for v in range(9, 16))
    assert 8 not in ranges and 16 not in ranges


def test_descending_gives_the_highest_ranges_first():
    ranges = RangeSet()
    for value in (0, 1, 2, 5, 6, 9, 20):
        ranges.add(value)
    assert ranges.descending(10) == ((20, 20), (9, 9), (5, 6), (0, 2))
    assert ranges.descending(2) == ((20, 20), (9, 9))
    assert ranges.descending(0) == ()
    assert ranges.largest() == 20


def test_max_ranges_forgets_the_lowest_and_raises_the_floor():
    ranges = RangeSet(max_ranges=3)
    for value in (0, 2, 4):
        ranges.add(value)
    assert ranges.floor == -1
    ranges.add(6)  # a fourth range: (0, 0) goes, everything <= 0 counts as seen
    assert len(ranges) == 3
    assert list(ranges) == [(2, 2), (4, 4), (6, 6)]
    assert ranges.floor == 0
    assert 0 in ranges and -100 in ranges
    assert ranges.add(0) is False  # at or below the floor: a duplicate
    assert 1 not in ranges
    assert ranges.add(1) is True  # above the floor and unseen: new
    assert list(ranges) == [(1, 2), (4, 4), (6, 6)]
    ranges.add(10)  # (1, 2) is forgotten now
    assert ranges.floor == 2
    assert list(ranges) == [(4, 4), (6, 6), (10, 10)]
    assert all(v in ranges for v in (0, 1, 2))
    assert 3 not in ranges and 5 not in ranges
    ranges.add(8)  # and then (4, 4): the floor jumps over the unseen 3
    assert ranges.floor == 4
    assert list(ranges) == [(6, 6), (8, 8), (10, 10)]
    assert 3 in ranges and 5 not in ranges
    assert ranges.descending(2) == ((10, 10), (8, 8))


def test_merging_never_needs_the_bound():
    ranges = RangeSet(max_ranges=2)
    for value in range(1000):
        ranges.add(value)
    assert list(ranges) == [(0, 999)]
    assert ranges.floor == -1


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=150))
def test_matches_a_plain_set_when_the_bound_is_not_reached(values):
    ranges = RangeSet(max_ranges=10_000)
    seen: set[int] = set()
    for value in values:
        assert ranges.add(value) is (value not in seen)
        seen.add(value)
    assert list(ranges) == runs(seen)
    assert ranges.descending(10_000) == tuple(reversed(runs(seen)))
    assert ranges.largest() == (max(seen) if seen else None)
    for probe in range(0, 202):
        assert (probe in ranges) is (probe in seen)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.lists(st.integers(0, 120), max_size=150))
def test_bounded_set_invariants(max_ranges, values):
    ranges = RangeSet(max_ranges=max_ranges)
    seen: set[int] = set()
    floor = ranges.floor
    for value in values:
        was_known = value in seen or value <= floor
        assert ranges.add(value) is (not was_known)
        seen.add(value)
        assert ranges.floor >= floor  # the floor only rises
        floor = ranges.floor
        listed = list(ranges)
        assert len(listed) <= max_ranges
        for (low, high), (next_low, _) in zip(listed, listed[1:]):
            assert next_low >= high + 2  # sorted, disjoint, never adjacent
        assert all(low > floor and low <= high for low, high in listed)
        # Nothing seen is ever forgotten; nothing unseen above the floor appears.
        for probe in range(-1, 122):
            if probe in seen or probe <= floor:
                assert probe in ranges
            else:
                assert probe not in ranges
        # The ranges above the floor are exactly the runs of what was seen there.
        assert listed == runs(v for v in seen if v > floor)
