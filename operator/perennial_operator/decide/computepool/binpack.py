"""Resource quantities and first-fit-decreasing bin packing, pure.

Every amount is an integer number of milli-units ("500m" cpu = 500, "1Gi" memory =
1073741824000, one GPU = 1000), so packing arithmetic is exact and never rounds a pod
into a node it does not fit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType

from perennial_operator.api.computepool import GPU_RESOURCE

CPU = "cpu"
MEMORY = "memory"
GPU = GPU_RESOURCE
PODS = "pods"
PACKED = (CPU, MEMORY, GPU, PODS)  # what a pool node is packed by

_SUFFIX: Mapping[str, Fraction | int] = MappingProxyType({
    "": 1, "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000),
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
})  # fmt: skip
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$"
)


def parse_quantity(value: str | int | float) -> Fraction:
    """A Kubernetes quantity ("500m", "2Gi", "1e3", 4) as an exact fraction of units."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int | float):
        return Fraction(Decimal(str(value)))
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    try:
        number = Fraction(Decimal(match["num"]))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"not a quantity: {value!r}") from exc
    suffix = match["suffix"] or ""
    if suffix[:1] in ("e", "E"):
        return number * Fraction(10) ** int(suffix[1:])
    return number * _SUFFIX[suffix]


def milli(value: str | int | float) -> int:
    """Quantity in milli-units, rounded up as the API server does for requests."""
    return math.ceil(parse_quantity(value) * 1000)


@dataclass(frozen=True)
class Resources:
    """A vector of milli-units by resource name; absent means zero."""

    amounts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, quantities: Mapping[str, str | int | float]) -> Resources:
        return cls({k: milli(v) for k, v in quantities.items() if k in PACKED})

    def get(self, name: str) -> int:
        return int(self.amounts.get(name, 0))

    def __add__(self, other: Resources) -> Resources:
        names = set(self.amounts) | set(other.amounts)
        return Resources({n: self.get(n) + other.get(n) for n in names})

    def __sub__(self, other: Resources) -> Resources:
        names = set(self.amounts) | set(other.amounts)
        return Resources({n: self.get(n) - other.get(n) for n in names})

    def fits_in(self, capacity: Resources) -> bool:
        return all(self.get(n) <= capacity.get(n) for n in self.amounts)

    def exceeding(self, capacity: Resources) -> list[str]:
        """Resource names where this is more than `capacity` (for "too big" messages)."""
        return sorted(n for n in self.amounts if self.get(n) > capacity.get(n))


def total(vectors: Iterable[Resources]) -> Resources:
    out = Resources()
    for vector in vectors:
        out = out + vector
    return out


@dataclass(frozen=True)
class Item:
    key: str
    size: Resources


@dataclass(frozen=True)
class Packing:
    placed: Mapping[str, int]  # item key -> bin index (existing bins first, then new ones)
    new_bins: int
    unplaced: tuple[str, ...]  # fits an empty node, but maxNodes ran out
    too_big: tuple[str, ...]  # fits no node of the shape at all


def _dominant_share(size: Resources, shape: Resources) -> Fraction:
    shares = [Fraction(size.get(n), shape.get(n)) for n in size.amounts if shape.get(n) > 0]
    return max(shares, default=Fraction(0))


def first_fit_decreasing(
    items: Sequence[Item], free: Sequence[Resources], shape: Resources, max_new: int
) -> Packing:
    """Place items, largest first (by dominant share of `shape`), into the first bin with
    room: the existing bins' free capacity first, then up to `max_new` empty bins of `shape`.

    Largest-first keeps big pods (GPU trainers) from being stranded behind many small ones.
    """
    order = sorted(items, key=lambda i: (-_dominant_share(i.size, shape), i.key))
    bins = list(free)
    placed: dict[str, int] = {}
    unplaced: list[str] = []
    too_big: list[str] = []
    for item in order:
        if not item.size.fits_in(shape) and not any(item.size.fits_in(b) for b in bins):
            too_big.append(item.key)
            continue
        index = next((i for i, room in enumerate(bins) if item.size.fits_in(room)), None)
        if index is None and len(bins) - len(free) < max_new:
            bins.append(shape)
            index = len(bins) - 1
        if index is None:
            unplaced.append(item.key)
            continue
        bins[index] = bins[index] - item.size
        placed[item.key] = index
    return Packing(placed, len(bins) - len(free), tuple(unplaced), tuple(too_big))
