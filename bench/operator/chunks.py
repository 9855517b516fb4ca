"""What holds the heap pages on which no Python object lies: glibc's chunks, walked.

heap.py's page map (PERENNIAL_HEAP_PAGES=1) finds the Python objects gc can reach and says
which resident pages they hold; pages that hold none of them ("none") were most of what
the deletes leave. Here the operator (with PYTHONMALLOC=malloc every Python object is a
glibc block) walks glibc's chunks in its main heap and in its threads' arenas and says,
for each chunk in use, what it is:

- "python": it holds an object (or a container's item block) that gc reaches;
- "hidden <type>": a Python object gc does not reach (its header names a live type, its
  reference count is not zero): held from C only, or through an untracked container;
- "tcache": free, kept in a thread's cache (glibc marks its cached chunks with one random
  key, the same for every thread): free memory that malloc_trim cannot give back;
- "c": any other block (OpenSSL, the C parts of libraries, CPython's own non-object
  allocations).

glibc 2.36 on x86-64 (Debian 12); only what is in RAM is looked at. The heap changes
under the walk if another thread allocates meanwhile (threads that wait in C without the
GIL): a walk that meets a chunk it cannot read ends there, and says how far it got.
"""

from __future__ import annotations

import array
import bisect
import collections
import ctypes
import gc
import string
from collections.abc import Iterator
from typing import Any

PAGE = 4096
ALIGN = 16
PREV_INUSE = 1
SIZE_BITS = 7

_PRINTABLE = set(string.printable.encode()) - set(b"\t\n\r\x0b\x0c")


def word(address: int) -> int:
    """The machine word (unsigned) at an address of this process."""
    return ctypes.c_size_t.from_address(address).value


def walk(start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """The chunks from `start` to `end`: (chunk address, size, in use). The last chunk
    (the top) is free. Stops at a chunk it cannot read (see walked())."""
    p = start
    while p + 2 * 8 <= end:
        size = word(p + 8) & ~SIZE_BITS
        if size < 2 * ALIGN or size % ALIGN or p + size > end:
            return
        nxt = p + size
        in_use = nxt + 16 <= end and bool(word(nxt + 8) & PREV_INUSE)
        yield p, size, in_use
        p = nxt


def walked(start: int, end: int) -> int:
    """Where a walk from `start` stops: `end` when it got through."""
    p = start
    for address, size, _ in walk(start, end):
        p = address + size
    return p


def first_chunk(start: int, end: int) -> int | None:
    """Where the chunks of a heap begin. The main heap's begin at its start; a thread
    arena's heap starts with glibc's heap_info and, in an arena's first heap, its
    malloc_state: the first offset from which a walk gets through to the end."""
    for offset in range(0, 4096, ALIGN // 2):
        p = start + offset
        if p + 16 > end:
            return None
        size = word(p + 8) & ~SIZE_BITS
        if size < 2 * ALIGN or size % ALIGN or p + size > end:
            continue
        if walked(p, end) == end:
            return p
    return None


def tcache_key(libc: Any) -> int:
    """glibc (2.34+) marks each chunk it keeps in a thread's cache with one random key:
    free a block of ours into this thread's cache and read it."""
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    block = libc.malloc(1000)  # a size whose cache is seldom full
    libc.free(block)
    return word(block + 8)


def _strings(data: bytes, least: int = 6) -> list[str]:
    out, run = [], bytearray()
    for byte in data:
        if byte in _PRINTABLE:
            run.append(byte)
            continue
        if len(run) >= least:
            out.append(run.decode())
        run = bytearray()
    if len(run) >= least:
        out.append(run.decode())
    return out


RANK = ("old", "new", "hidden-new", "c-new", "hidden-idle", "c-idle", "tcache", "own")


def classify(
    regions: list[tuple[int, int, str]],
    resident: dict[int, str],
    starts: array.array[int],
    old_starts: set[int],
    idle: set[int] | None,
    key: int,
) -> dict[str, Any]:
    """Each resident page of the heaps by the best thing it holds (RANK order): an object
    gc reaches, alive at the first dump ("old") or born since ("new"); a hidden object or a
    C block, there at the first dump or made since (by chunk address); only free chunks
    kept in a thread's cache ("tcache"); only this analysis's own numbers ("own"); nothing
    in use ("free"). `starts`: the sorted start addresses of what gc reaches (the objects
    and their item blocks); `old_starts`: those alive at the first dump; `idle`: the
    chunks in use at the first dump that gc does not reach (None: this is it)."""
    types_by_id = {id(t): t.__name__ for t in _all_types()}
    libraries = _libraries()
    pointing: collections.Counter[str] = collections.Counter()
    int_type = id(int)
    best: dict[int, int] = {}
    hidden: collections.Counter[str] = collections.Counter()
    c_sizes: collections.Counter[str] = collections.Counter()
    c_samples: list[dict[str, Any]] = []
    unreached = array.array("Q")
    walks = []
    for start, end, kind in regions:
        if kind == "mmap":
            continue  # blocks mmapped on their own, thread stacks: not chunk heaps
        first = first_chunk(start, end) if kind == "arena" else start
        stop = start
        for address, size, in_use in walk(first, end) if first is not None else ():
            stop = address + size
            if not in_use:
                continue
            user, user_end = address + 16, address + size
            pages = range(user // PAGE, (user_end - 1) // PAGE + 1)
            if not any(page in resident for page in pages):
                continue
            i = bisect.bisect_left(starts, user)
            what = ""
            while i < len(starts) and starts[i] < user_end:
                what = "old" if starts[i] in old_starts else what or "new"
                if what == "old":
                    break
                i += 1
            if not what:
                for header in (user, user + 16):  # a plain object; one after gc's head
                    if header + 24 > user_end:
                        continue
                    refs, kind_id = word(header), word(header + 8)
                    name = types_by_id.get(kind_id)
                    if name is None or not 0 < refs < 2**32:
                        continue
                    if (
                        kind_id == int_type
                        and abs(ctypes.c_ssize_t.from_address(header + 16).value) >= 2
                    ):
                        what = "own"  # an address or a page number of this analysis
                        break
                    was = idle is not None and address in idle
                    what = "hidden-idle" if was else "hidden-new"
                    if not was:
                        hidden[name] += 1
                    unreached.append(address)
                    break
            if not what and size >= 32 and word(user + 8) == key:
                what = "tcache"
            if not what:
                unreached.append(address)
                was = idle is not None and address in idle
                what = "c-idle" if was else "c-new"
                if not was:
                    c_sizes[_bucket(size)] += 1
                    pointing[_points_into(user, min(user_end, user + 64), libraries)] += 1
                    if len(c_samples) < 40 and sum(c_sizes.values()) % 50 == 1:
                        data = ctypes.string_at(user, min(size - 16, 256))
                        c_samples.append(
                            {"size": size, "head": data[:32].hex(), "strings": _strings(data)[:4]}
                        )
            rank = RANK.index(what)
            for page in pages:
                if page in resident and rank < best.get(page, len(RANK)):
                    best[page] = rank
        walks.append(
            {"kind": kind, "start": hex(start), "walked": round((stop - start) / (end - start), 3)}
        )
    pages_by: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for page, kind in resident.items():
        if kind != "mmap":
            rank = best.get(page)
            pages_by[kind]["free" if rank is None else RANK[rank]] += 1
    return {
        "walks": walks,
        "pages": {k: dict(v) for k, v in pages_by.items()},
        "hidden_new_types": hidden.most_common(30),
        "c_new_sizes": sorted(c_sizes.items(), key=lambda kv: int(kv[0].split("-")[0])),
        "c_new_samples": c_samples,
        # the libraries the first 8 words of each new C block point into: whose blocks
        "c_new_pointing_into": pointing.most_common(20),
        "_unreached": unreached,
    }


def _libraries() -> tuple[list[int], list[tuple[int, str]]]:
    """The file-backed mappings (start, (end, file name)), sorted: what a pointer points into."""
    spans = []
    for line in open("/proc/self/maps").read().splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[5].startswith("/"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            spans.append((start, end, parts[5].rsplit("/", 1)[-1]))
    spans.sort()
    return [s for s, _, _ in spans], [(e, name) for _, e, name in spans]


def _points_into(start: int, end: int, libraries: tuple[list[int], list[tuple[int, str]]]) -> str:
    starts, rest = libraries
    names = set()
    for address in range(start, end - 7, 8):
        value = word(address)
        i = bisect.bisect_right(starts, value) - 1
        if i >= 0 and value < rest[i][0]:
            names.add(rest[i][1])
    return " ".join(sorted(names)) or "-"


def _bucket(size: int) -> str:
    low = 32
    while low * 2 <= size:
        low *= 2
    return f"{low}-{low * 2 - 1}"


def _all_types() -> list[type]:
    seen: dict[int, type] = {}
    todo = [object]
    while todo:
        t = todo.pop()
        if id(t) in seen:
            continue
        seen[id(t)] = t
        try:
            todo.extend(type.__subclasses__(t))
        except TypeError:
            pass
    for obj in gc.get_objects():
        if isinstance(obj, type):
            seen.setdefault(id(obj), obj)
    return list(seen.values())
