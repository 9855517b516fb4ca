"""Run the operator with tracemalloc, and dump what is alive on SIGUSR1.

    python bench/operator/heap.py DIR [operator arguments...]

Used by scale.py --heap DIR: each SIGUSR1 writes DIR/heap-<n>.json, the live object counts
by type (gc) and tracemalloc's bytes by allocating line, so two moments (idle, after every
object was deleted) can be compared: what the operator keeps. tracemalloc's own bookkeeping
roughly doubles the RSS, so the RSS figures of such a run are not comparable to others.
"""

from __future__ import annotations

import collections
import gc
import json
import runpy
import signal
import sys
import tracemalloc
from pathlib import Path
from types import FrameType

FRAMES = 6
TOP = 40


def dump(out: Path, seq: list[int]) -> None:
    seq[0] += 1
    gc.collect()
    types = collections.Counter(type(o).__name__ for o in gc.get_objects())
    snapshot = tracemalloc.take_snapshot()
    stats = snapshot.statistics("traceback")
    lines = [
        {
            "kib": round(s.size / 1024, 1),
            "count": s.count,
            "where": [f"{f.filename}:{f.lineno}" for f in s.traceback],
        }
        for s in stats[:TOP]
    ]
    traced, _ = tracemalloc.get_traced_memory()
    (out / f"heap-{seq[0]}.json").write_text(
        json.dumps(
            {
                "traced_mib": round(traced / 2**20, 1),
                "types": types.most_common(40),
                "top": lines,
            },
            indent=1,
        )
    )


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    seq = [0]

    def on_signal(signum: int, frame: FrameType | None) -> None:
        dump(out, seq)

    tracemalloc.start(FRAMES)
    signal.signal(signal.SIGUSR1, on_signal)
    sys.argv = ["perennial-operator", *sys.argv[2:]]
    runpy.run_module("perennial_operator", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
