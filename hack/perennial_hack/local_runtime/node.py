"""What the local "node" hands out: a loopback address per pod, and processes.

Linux routes the whole of 127.0.0.0/8 to the loopback interface, so every pod can have an
address of its own (and listen on 8080 next to the others) without any network setup.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import hashlib
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

_PR_SET_PDEATHSIG = 1


class LoopbackPool:
    """127.B.0.2 .. 127.B.255.254, one per pod uid; 127.0.0.1 stays the API server's.

    B (the block) keeps two runtimes on one machine (two test sessions) off each other's
    addresses: every serving pod listens on 8080.
    """

    def __init__(self, block: int = 0) -> None:
        if not 0 <= block <= 255:
            raise ValueError(f"loopback block {block} is not in 0..255")
        self.block = block
        self._by_uid: dict[str, str] = {}
        self._lock = threading.Lock()

    def address(self, index: int) -> str:
        third, fourth = divmod(index, 253)
        if third > 255:
            raise RuntimeError("no loopback addresses left")
        return f"127.{self.block}.{third}.{fourth + 2}"

    def take(self, uid: str, prefer: str | None = None) -> str:
        """The pod's address; `prefer` (an address it had before) is kept when free."""
        with self._lock:
            if uid in self._by_uid:
                return self._by_uid[uid]
            used = set(self._by_uid.values())
            if prefer and prefer.startswith("127.") and prefer not in used:
                self._by_uid[uid] = prefer
                return prefer
            index = 0
            while self.address(index) in used:
                index += 1
            self._by_uid[uid] = self.address(index)
            return self._by_uid[uid]

    def keep(self, uid: str, address: str) -> None:
        """Hold an address a finished pod still shows (after a runtime restart)."""
        with self._lock:
            if address.startswith("127.") and address not in self._by_uid.values():
                self._by_uid.setdefault(uid, address)

    def release(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)


def loopback_block(state: Path) -> int:
    """A block (1..254) that depends only on the state folder: stable across restarts."""
    return 1 + int(hashlib.sha256(str(state.resolve()).encode()).hexdigest(), 16) % 254


def _die_with_parent() -> None:
    # Signal the child when the thread that forked it exits (Linux ties PDEATHSIG to the
    # thread; each pod's worker thread outlives its processes), so a runtime killed with
    # SIGKILL leaves nothing behind. SIGTERM, not SIGKILL: perennial-serve then stops its
    # own worker processes, which a SIGKILL of their parent would orphan.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def spawn(
    argv: Sequence[str], env: Mapping[str, str], cwd: str, log: Path, cri_log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start a container's process in a session of its own (its children go with it). Its
    output (stdout and stderr together) goes to `log` as it is, and to `cri_log` in the CRI
    log format, where kwok reads it for `kubectl logs`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    Path(cwd).mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        list(argv),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent,
    )
    assert proc.stdout is not None
    pump = threading.Thread(
        target=_pump, args=(proc.stdout, log, cri_log), name=f"log-{log.name}", daemon=True
    )
    pump.start()
    _PUMPS[proc] = pump
    return proc


_PUMPS: weakref.WeakKeyDictionary[subprocess.Popen[bytes], threading.Thread] = (
    weakref.WeakKeyDictionary()
)


def _pump(stream: IO[bytes], log: Path, cri_log: Path | None) -> None:
    with stream, log.open("ab") as plain:
        cri = cri_log.open("ab") if cri_log is not None else None
        try:
            for line in iter(stream.readline, b""):
                plain.write(line)
                plain.flush()
                if cri is not None:
                    cri.write(cri_line(line, dt.datetime.now(dt.UTC)))
                    cri.flush()
        finally:
            if cri is not None:
                cri.close()


def cri_line(line: bytes, when: dt.datetime) -> bytes:
    """One line as a container runtime logs it: `<RFC 3339 nano> <stream> <F|P> <text>`,
    F for a full line, P for a part (output that ended without a newline)."""
    tag = b"F" if line.endswith(b"\n") else b"P"
    stamp = when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z").encode()
    return stamp + b" stdout " + tag + b" " + line.rstrip(b"\n") + b"\n"


def drain(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Wait until the ended process's output is all in its log files."""
    pump = _PUMPS.get(proc)
    if pump is not None:
        pump.join(timeout_s)


def exit_code(returncode: int) -> int:
    """Popen's -N for 'killed by signal N' is 128+N in a container's status."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def terminate(procs: Sequence[subprocess.Popen[bytes]], grace_s: float) -> None:
    """SIGTERM every process group, wait up to grace_s, then SIGKILL; all reaped."""
    for proc in procs:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(0.05)
    for proc in procs:
        # The group too: a server's workers may outlive their parent by a moment.
        _signal_group(proc, signal.SIGKILL)
        proc.wait()
