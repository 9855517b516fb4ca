"""Run the operator with tracemalloc, and dump what is alive on SIGUSR1.

    python bench/operator/heap.py DIR [operator arguments...]

Used by scale.py --heap DIR: each SIGUSR1 writes DIR/heap-<n>.json, the live object counts
by type (gc) and tracemalloc's bytes by allocating line, so two moments (idle, after every
object was deleted, and with --later some minutes after that) can be compared: what the
operator keeps. With PERENNIAL_HEAP_PAGES=1 each dump after the first also says which
resident pages of glibc's heaps hold a live Python object and which only objects born
since the first dump hold ("pages": what keeps those pages from going back); with
PERENNIAL_HEAP_CHUNKS=1 each dump walks glibc's chunks (chunks.py) and says what every
resident heap page holds, down to the blocks gc cannot see ("chunks"). tracemalloc's
own bookkeeping roughly doubles the RSS, so the RSS figures of such a run are not
comparable to others.

Each dump also holds where the memory not traced goes: the RSS, glibc's mallinfo2 (its
arena bytes in use and free), the RSS after a malloc_trim (what glibc could give back),
and pymalloc's arenas (sys._debugmallocstats: DIR/pymalloc-<n>.txt). DIR/snap-<n>.pickle
is the whole tracemalloc snapshot, for comparing two moments line by line:

    python bench/operator/heap.py --compare DIR/snap-1.pickle DIR/snap-3.pickle

pymalloc reports its arenas only while tracemalloc is off (tracemalloc wraps the allocator):
with PERENNIAL_HEAP_TRACE=0 the operator runs without tracemalloc (its RSS then near a run
without --heap; the dumps' own work adds a few MB) and the dumps have the arenas but no
snapshot.
"""

from __future__ import annotations

import array
import collections
import ctypes
import ctypes.util
import gc
import json
import os
import re
import runpy
import signal
import sys
import tempfile
import tracemalloc
import types
import weakref
from pathlib import Path
from types import FrameType
from typing import Any

import chunks
from chunks import PAGE, word

from perennial_hack.cluster import process

FRAMES = 6
TOP = 40


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None


LIBC = _libc()


def rss_mib() -> float:
    return round(process.rss_kib(os.getpid()) / 1024, 1)


def mallinfo() -> dict[str, float]:
    if LIBC is None or not hasattr(LIBC, "mallinfo2"):
        return {}
    LIBC.mallinfo2.restype = MallInfo2
    info = LIBC.mallinfo2()
    return {
        # bytes glibc got from the system by brk/sbrk and by mmap for its arenas
        "arena_mib": round(info.arena / 2**20, 1),
        "mmapped_mib": round(info.hblkhd / 2**20, 1),
        "in_use_mib": round(info.uordblks / 2**20, 1),
        "free_mib": round(info.fordblks / 2**20, 1),
    }


def pymalloc(path: Path) -> dict[str, Any]:
    """sys._debugmallocstats writes to the C stderr: catch it in a file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode(errors="replace")
    path.write_text(text)
    figures: dict[str, Any] = {}
    for key, pattern in (
        ("arenas_allocated_total", r"# arenas allocated total\s+=\s+([\d,]+)"),
        ("arenas_reclaimed", r"# arenas reclaimed\s+=\s+([\d,]+)"),
        ("arenas_highwater", r"# arenas highwater mark\s+=\s+([\d,]+)"),
        ("arenas_allocated_current", r"# arenas allocated current\s+=\s+([\d,]+)"),
        ("arena_bytes", r"bytes in allocated blocks\s+=\s+([\d,]+)"),
        ("bytes_available_in_used_pools", r"bytes in available blocks\s+=\s+([\d,]+)"),
        ("unused_pools_bytes", r"unused pools \* 16384\s+=\s+([\d,]+)"),
        ("total_arena_bytes", r"Total\s+=\s+([\d,]+)"),
    ):
        match = re.search(pattern, text)
        if match:
            figures[key] = int(match.group(1).replace(",", ""))
    return figures


def describe(obj: object) -> str:
    """A short name for what a surviving object is, to group the survivors by."""
    kind = type(obj).__name__
    try:
        if isinstance(obj, types.FunctionType):
            return f"function {obj.__module__}.{obj.__qualname__}"
        if isinstance(obj, types.BuiltinFunctionType):
            owner = type(obj.__self__).__name__ if obj.__self__ is not None else ""
            return f"builtin {owner}.{obj.__name__}"
        if isinstance(obj, types.MethodType):
            return f"method {type(obj.__self__).__name__}.{obj.__func__.__qualname__}"
        if isinstance(obj, weakref.ref):
            return f"weakref to {type(obj()).__name__}"
        if isinstance(obj, types.CellType):
            try:
                return f"cell of {type(obj.cell_contents).__name__}"
            except ValueError:
                return "cell (empty)"
        if isinstance(obj, dict):
            return f"dict keys {sorted(map(str, obj))[:4]}"
        if isinstance(obj, (list, tuple, set, frozenset)):
            first = type(next(iter(obj))).__name__ if obj else "-"
            return f"{kind} of {first}"
        if isinstance(obj, types.CoroutineType):
            return f"coroutine {obj.__qualname__}"
        if isinstance(obj, str):
            return f"str {re.sub(r'[0-9]+', '#', obj[:40])!r}"
        if isinstance(obj, bytes):
            return f"bytes {re.sub(rb'[0-9]+', b'#', obj[:40])!r}"
    except Exception:  # noqa: BLE001 (any object: a description is best effort)
        pass
    return kind


def live_objects(*mine: object) -> dict[int, object]:
    """Every gc-tracked object and what they refer to directly (strings, numbers and other
    untracked objects are reachable only so), by address; not the dump's own."""
    found: dict[int, object] = {}
    skip = {id(found), *map(id, mine)}
    for obj in gc.get_objects():
        if id(obj) in skip:
            continue
        found[id(obj)] = obj
        todo = list(gc.get_referents(obj))
        while todo:
            ref = todo.pop()
            if gc.is_tracked(ref) or id(ref) in found:
                continue
            found[id(ref)] = ref
            if isinstance(ref, (tuple, dict)):  # untracked: atoms only, not seen by gc
                todo.extend(gc.get_referents(ref))
    return found


ARENA_ALIGN = 64 * 2**20  # glibc's thread arenas: heaps of 64 MiB, aligned to their size


def region_kind(maps_line: str) -> tuple[int, int, str | None]:
    """A mapping of /proc/PID/maps (or a header line of smaps) and where glibc's blocks in it
    live: the main heap ([heap]), a thread's arena, another anonymous read-write mapping
    (blocks mmapped on their own, thread stacks); None for the rest (files, guards)."""
    parts = maps_line.split()
    start, end = (int(x, 16) for x in parts[0].split("-"))
    if parts[1] != "rw-p" or (len(parts) > 5 and parts[5] != "[heap]"):
        return start, end, None
    kind = "heap" if len(parts) > 5 else "arena" if start % ARENA_ALIGN == 0 else "mmap"
    return start, end, kind


def anonymous_regions() -> list[tuple[int, int, str]]:
    """Where glibc's blocks live (region_kind), in this process."""
    regions = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        start, end, kind = region_kind(line)
        if kind is not None:
            regions.append((start, end, kind))
    return regions


def resident_pages(regions: list[tuple[int, int, str]]) -> dict[int, str]:
    """The pages of those regions in RAM now (/proc/self/pagemap, bit 63), by page number."""
    pages: dict[int, str] = {}
    with open("/proc/self/pagemap", "rb") as pagemap:
        for start, end, kind in regions:
            pagemap.seek(start // PAGE * 8)
            entries = array.array("Q")
            entries.frombytes(pagemap.read((end - start) // PAGE * 8))
            for i, entry in enumerate(entries):
                if entry >> 63:
                    pages[start // PAGE + i] = kind
    return pages


# Where CPython 3.11 keeps a container's items: a block of its own, outside the object.
_CPYTHON_311 = sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)


def extents(obj: object, address: int) -> list[tuple[int, int]]:
    """The memory an object holds, as (start, size): the object itself and, for the
    containers, their items' block (a list's array, a dict's keys table, a set's table, a
    bytearray's buffer), which sys.getsizeof counts but which lies elsewhere."""
    if not _CPYTHON_311 or not isinstance(obj, (list, dict, set, frozenset, bytearray)):
        try:
            return [(address, max(1, sys.getsizeof(obj)))]
        except TypeError:
            return [(address, 1)]
    found = [(address, type(obj).__basicsize__)]
    if isinstance(obj, list):  # ob_item, allocated
        found.append((word(address + 24), word(address + 32) * 8))
    elif isinstance(obj, dict):  # ma_keys (ours when counted by __sizeof__), ma_values
        table = obj.__sizeof__() - type(obj).__basicsize__
        block = word(address + 40) or word(address + 32)
        if table > 0 and block:
            found.append((block, table))
    elif isinstance(obj, (set, frozenset)):  # mask, table (the small table is inline)
        table = word(address + 40)
        if table != address + 64:
            found.append((table, (word(address + 32) + 1) * 16))
    elif isinstance(obj, bytearray):  # ob_alloc, ob_bytes
        if word(address + 32):
            found.append((word(address + 32), word(address + 24)))
    return [(start, size) for start, size in found if start and size > 0]


def pinned_pages(born_before: array.array[int], top: int = 40) -> dict[str, Any]:
    """Which resident pages hold live Python objects (with their containers' item blocks),
    and which of them only objects born after the first dump hold: lone survivors, what
    keeps glibc from giving those pages back. Pages with no Python object ("none") hold
    C allocations (OpenSSL, the C parts of libraries), glibc's own chunk headers of free
    chunks next to them, or a Python object reachable from C only."""
    before = set(born_before)
    resident = resident_pages(anonymous_regions())
    old_on: collections.Counter[int] = collections.Counter()
    new_on: dict[int, list[object]] = collections.defaultdict(list)
    for address, obj in live_objects(before, resident).items():
        if type(obj) is int and obj > 2**32:
            continue  # an address: the analysis's own numbers, reached from its lists
        for start, size in extents(obj, address):
            for page in range(start // PAGE, (start + size - 1) // PAGE + 1):
                if page not in resident:
                    continue
                if address in before:
                    old_on[page] += 1
                else:
                    new_on[page].append(obj)
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    lone: collections.Counter[str] = collections.Counter()
    sample: dict[str, object] = {}
    for page, kind in resident.items():
        held = "none"
        if old_on[page]:
            held = "old"
        elif new_on.get(page):
            held = "only-new"
            for obj in new_on[page]:
                what = describe(obj)
                lone[what] += 1
                sample.setdefault(what, obj)
        by_kind[kind][held] += 1
    referrers = {}
    for what, _ in lone.most_common(top):
        refs = [
            describe(r)
            for r in gc.get_referrers(sample[what])
            if not isinstance(r, types.FrameType) and r is not sample
        ]
        referrers[what] = refs[:3]
    del sample
    return {
        "resident_pages": {k: dict(v) for k, v in by_kind.items()},
        "lone_new_objects": sum(lone.values()),
        "lone_groups": [
            {"count": n, "what": what, "referrers": referrers.get(what, [])}
            for what, n in lone.most_common(top)
        ],
    }


def small(obj: object) -> bool:
    """Served by pymalloc (512 bytes or less): what can keep an arena."""
    try:
        return sys.getsizeof(obj) <= 512
    except TypeError:
        return False


def survivors(born_before: array.array[int], top: int = 60) -> dict[str, Any]:
    """The objects alive now that were not alive at the first dump: what keeps the arenas
    of the burst from being freed. Grouped by description (and allocating line, when
    tracing), with the number of pymalloc pools (16 KiB, aligned) they are spread over."""
    before = set(born_before)
    groups: collections.Counter[tuple[str, str]] = collections.Counter()
    sizes: collections.Counter[tuple[str, str]] = collections.Counter()
    pools: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    all_pools: set[int] = set()
    for address, obj in live_objects(before).items():
        if address in before or not small(obj):
            continue
        trace = tracemalloc.get_object_traceback(obj)
        where = " <- ".join(f"{f.filename}:{f.lineno}" for f in trace) if trace else "?"
        key = (describe(obj), where)
        groups[key] += 1
        sizes[key] += sys.getsizeof(obj)
        pools[key].add(address >> 14)
        all_pools.add(address >> 14)
    return {
        "objects": sum(groups.values()),
        "bytes": sum(sizes.values()),
        "pools": len(all_pools),
        "regions_1mib": len({pool >> 6 for pool in all_pools}),
        "groups": [
            {
                "count": count,
                "bytes": sizes[key],
                "pools": len(pools[key]),
                "what": key[0],
                "where": key[1],
            }
            for key, count in groups.most_common(top)
        ],
    }


_IDLE_UNREACHED: set[int] = set()


def chunk_holders(born_before: array.array[int], n: int) -> dict[str, Any]:
    """chunks.classify at this moment: what each resident heap page holds, down to glibc's
    chunks (the first dump's chunks that gc does not reach remembered, to tell those made
    since)."""
    key = chunks.tcache_key(LIBC)
    before = set(born_before)
    regions = anonymous_regions()
    resident = resident_pages(regions)
    found: set[int] = set()
    old: set[int] = set()
    for address, obj in live_objects(before, resident, found, old).items():
        if type(obj) is int and obj > 2**32:
            continue
        for start, _ in extents(obj, address):
            found.add(start)
            if n == 1 or address in before:
                old.add(start)
    starts = array.array("Q", sorted(found))
    found.clear()
    result = chunks.classify(
        regions, resident, starts, old, None if n == 1 else _IDLE_UNREACHED, key
    )
    unreached = result.pop("_unreached")
    if n == 1:
        _IDLE_UNREACHED.update(unreached)
    return result


def dump(out: Path, seq: list[int], born: array.array[int]) -> None:
    seq[0] += 1
    n = seq[0]
    rss_before_gc = rss_mib()
    gc.collect()
    kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
    new: dict[str, Any] = {}
    if n == 1:
        born.extend(live_objects())
    else:
        new = survivors(born)
    lines: list[dict[str, Any]] = []
    if tracemalloc.is_tracing():
        snapshot = tracemalloc.take_snapshot()
        snapshot.dump(str(out / f"snap-{n}.pickle"))
        lines = [
            {
                "kib": round(s.size / 1024, 1),
                "count": s.count,
                "where": [f"{f.filename}:{f.lineno}" for f in s.traceback],
            }
            for s in snapshot.statistics("traceback")[:TOP]
        ]
        del snapshot
        gc.collect()
    traced, _ = tracemalloc.get_traced_memory()
    memory = {
        "rss_mib": rss_before_gc,
        "mallinfo": mallinfo(),
        "pymalloc": pymalloc(out / f"pymalloc-{n}.txt"),
    }
    if LIBC is not None:
        LIBC.malloc_trim(0)
        memory["rss_after_trim_mib"] = rss_mib()
        memory["mallinfo_after_trim"] = mallinfo()
    pages = pinned_pages(born) if n > 1 and os.environ.get("PERENNIAL_HEAP_PAGES") else {}
    held = chunk_holders(born, n) if os.environ.get("PERENNIAL_HEAP_CHUNKS") else {}
    (out / f"heap-{n}.json").write_text(
        json.dumps(
            {
                "traced_mib": round(traced / 2**20, 1),
                "tracemalloc_overhead_mib": round(tracemalloc.get_tracemalloc_memory() / 2**20, 1),
                "memory": memory,
                "types": kinds.most_common(40),
                "born_after_first_dump": new,
                "pages": pages,
                "chunks": held,
                "top": lines,
            },
            indent=1,
        )
    )


def compare(before: Path, after: Path, top: int = 40) -> None:
    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    for key in ("lineno", "traceback"):
        print(f"== grown, by {key}")
        for stat in new.compare_to(old, key)[:top]:
            if stat.size_diff <= 0:
                continue
            where = " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback)
            print(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d}  {where}")


def main() -> None:
    if sys.argv[1] == "--compare":
        compare(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    seq = [0]
    born: array.array[int] = array.array("Q")  # outside pymalloc: no arena kept by it

    def on_signal(signum: int, frame: FrameType | None) -> None:
        dump(out, seq, born)

    if os.environ.get("PERENNIAL_HEAP_TRACE", "1") != "0":
        tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, on_signal)
    sys.argv = ["perennial-operator", *sys.argv[2:]]
    runpy.run_module("perennial_operator", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
