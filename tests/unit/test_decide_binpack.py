"""Quantities and first-fit-decreasing packing: tables for the rules, hypothesis for the laws."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perennial_operator.decide.computepool.binpack import (
    CPU,
    GPU,
    MEMORY,
    PODS,
    Item,
    Resources,
    first_fit_decreasing,
    milli,
    parse_quantity,
    total,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("500m", Fraction(1, 2), id="millicores"),
        pytest.param("2", 2, id="plain"),
        pytest.param(4, 4, id="int"),
        pytest.param(0.5, Fraction(1, 2), id="float"),
        pytest.param("1.5", Fraction(3, 2), id="decimal"),
        pytest.param(".5", Fraction(1, 2), id="leading-dot"),
        pytest.param("2Gi", 2 * 2**30, id="binary-suffix"),
        pytest.param("128Mi", 128 * 2**20, id="mebibytes"),
        pytest.param("1k", 1000, id="kilo"),
        pytest.param("1M", 10**6, id="mega-decimal"),
        pytest.param("1e3", 1000, id="exponent"),
        pytest.param("1E-3", Fraction(1, 1000), id="negative-exponent"),
        pytest.param("100n", Fraction(1, 10**7), id="nano"),
        pytest.param("+1", 1, id="plus-sign"),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5 Gi", "Gi", "1ki", True])
def test_parse_quantity_refuses_garbage(bad):
    with pytest.raises(ValueError, match="not a quantity"):
        parse_quantity(bad)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("100m", 100), ("1", 1000), ("1n", 1), ("1Ki", 1024000), ("0.0001", 1)],
    ids=["millicores", "one", "nano-rounds-up", "kibibyte", "sub-milli-rounds-up"],
)
def test_milli_rounds_up(text, expected):
    assert milli(text) == expected


def test_resources_ignore_unpacked_names_and_compare_per_resource():
    node = Resources.of({"cpu": "4", "memory": "8Gi", "ephemeral-storage": "10Gi"})
    pod = Resources.of({"cpu": "5", "memory": "1Gi"})
    assert "ephemeral-storage" not in node.amounts
    assert not pod.fits_in(node)
    assert pod.exceeding(node) == [CPU]
    assert total([pod, pod]).get(MEMORY) == 2 * milli("1Gi")


SHAPE = Resources.of({CPU: "4", MEMORY: "16Gi", GPU: "1", PODS: "110"})


def pod(key, cpu="1", memory="1Gi", gpu=0):
    return Item(key, Resources.of({CPU: cpu, MEMORY: memory, GPU: gpu, PODS: 1}))


@pytest.mark.parametrize(
    ("items", "free", "max_new", "new_bins", "unplaced", "too_big"),
    [
        pytest.param(
            [pod(f"p{i}") for i in range(10)], [], 8, 3, (), (), id="ten-1cpu-pods-3-nodes"
        ),
        pytest.param(
            [pod("a", cpu="3")],
            [SHAPE - Resources.of({CPU: "2"})],
            8,
            1,
            (),
            (),
            id="existing-room-too-small-opens-a-node",
        ),
        pytest.param(
            [pod("a", cpu="2")],
            [SHAPE - Resources.of({CPU: "2"})],
            8,
            0,
            (),
            (),
            id="existing-room-used-first",
        ),
        pytest.param(
            [pod(f"p{i}", cpu="3") for i in range(3)],
            [],
            2,
            2,
            ("p2",),
            (),
            id="max-new-bounds-and-reports-overflow",
        ),
        pytest.param([pod("huge", cpu="8")], [], 8, 0, (), ("huge",), id="too-big-never-opens"),
        pytest.param(
            [pod("g1", cpu="1", gpu=1), pod("g2", cpu="1", gpu=1)],
            [],
            8,
            2,
            (),
            (),
            id="one-gpu-per-node",
        ),
        pytest.param([pod("a", cpu="1")], [], 0, 0, ("a",), (), id="no-room-no-new"),
    ],
)
def test_first_fit_decreasing(items, free, max_new, new_bins, unplaced, too_big):
    packing = first_fit_decreasing(items, free, SHAPE, max_new)
    assert packing.new_bins == new_bins
    assert packing.unplaced == unplaced
    assert packing.too_big == too_big


def test_largest_first_keeps_big_pods_from_being_stranded():
    # First-fit in arrival order would put the three 1-cpu pods on node 0 and need a node
    # for each 3-cpu pod; largest first fills each node with one big and one small pod.
    items = [pod(f"s{i}", cpu="1") for i in range(3)] + [pod(f"b{i}", cpu="3") for i in range(3)]
    assert first_fit_decreasing(items, [], SHAPE, 10).new_bins == 3


# ---- laws --------------------------------------------------------------------------------

quantities = st.integers(min_value=0, max_value=6000)  # milli-cpu, up to 1.5 nodes
sizes = st.builds(
    lambda cpu, mem, gpu: Resources({CPU: cpu, MEMORY: mem, GPU: gpu, PODS: 1000}),
    quantities,
    st.integers(min_value=0, max_value=24 * 2**30 * 1000),
    st.sampled_from([0, 0, 0, 1000, 2000]),
)
item_lists = st.lists(sizes, max_size=25).map(
    lambda ss: [Item(f"p{i}", s) for i, s in enumerate(ss)]
)
free_rooms = st.lists(
    st.builds(
        lambda c: Resources({CPU: c, MEMORY: 4 * 2**30 * 1000, GPU: 0, PODS: 10_000}), quantities
    ),
    max_size=4,
)


@settings(max_examples=300, deadline=None)
@given(items=item_lists, free=free_rooms, max_new=st.integers(min_value=0, max_value=30))
def test_packing_never_overfills_a_bin_and_places_each_item_once(items, free, max_new):
    packing = first_fit_decreasing(items, free, SHAPE, max_new)
    bins = list(free) + [SHAPE] * packing.new_bins
    by_key = {i.key: i.size for i in items}
    for index, room in enumerate(bins):
        assert total(by_key[k] for k, b in packing.placed.items() if b == index).fits_in(room)
    keys = list(packing.placed) + list(packing.unplaced) + list(packing.too_big)
    assert sorted(keys) == sorted(by_key)
    assert packing.new_bins <= max_new


@settings(max_examples=300, deadline=None)
@given(items=item_lists, free=free_rooms)
def test_every_item_that_fits_a_node_is_placed_when_max_allows(items, free):
    packing = first_fit_decreasing(items, free, SHAPE, max_new=len(items))
    assert packing.unplaced == ()
    fitting = {i.key for i in items if i.size.fits_in(SHAPE)}
    assert fitting <= set(packing.placed)
    assert not fitting & set(packing.too_big)
    # Never a new node that ends up empty.
    used = set(packing.placed.values())
    assert all(len(free) + n in used for n in range(packing.new_bins))
