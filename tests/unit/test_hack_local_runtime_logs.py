"""Container output reaches two files: the log as printed, and the same lines in the CRI
log format that kwok serves to `kubectl logs` (through the API server's pods/log)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import pytest

from perennial_hack.local_runtime import node

pytestmark = pytest.mark.unit


def test_cri_line_is_what_a_container_runtime_writes() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    assert node.cri_line(b"hello\n", when) == b"2026-01-02T03:04:05.678901000Z stdout F hello\n"
    assert node.cri_line(b"no newline", when).endswith(b" stdout P no newline\n")


def test_spawn_writes_the_plain_and_the_cri_log(tmp_path: Path) -> None:
    script = "import sys; print('one'); print('two', file=sys.stderr); sys.stdout.write('tail')"
    log, cri = tmp_path / "logs" / "c.log", tmp_path / "logs" / "c.cri.log"
    proc = node.spawn([sys.executable, "-c", script], {}, str(tmp_path), log, cri)
    assert proc.wait(timeout=60) == 0
    node.drain(proc)
    assert sorted(log.read_text().replace("tail", "\ntail").split()) == ["one", "tail", "two"]
    lines = cri.read_text().splitlines()
    assert len(lines) == 3
    for line in lines:
        stamp, stream, tag, _ = line.split(" ", 3)
        assert dt.datetime.fromisoformat(stamp.replace("000Z", "+00:00")).tzinfo is not None
        assert stream == "stdout" and tag in ("F", "P")
    assert lines[-1].endswith(" P tail")
