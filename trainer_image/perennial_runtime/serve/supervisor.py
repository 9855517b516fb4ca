"""The parent process: verify, fork the workers, wait until all are ready, supervise,
and on SIGTERM let every worker drain before exiting.

The parent blocks SIGTERM, SIGINT and SIGCHLD and takes them with ``sigwaitinfo``, so
no signal can arrive in the middle of a fork or a reap.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import socket
import time
import traceback

from perennial_runtime.serve import logs
from perennial_runtime.serve.worker_process import Shared, run_worker

log = logging.getLogger("perennial.serve")
SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
READY_TIMEOUT = 300.0
PR_SET_PDEATHSIG = 1
MAX_RESTARTS = 5  # per worker slot, then the pod crash-loops visibly instead


class StartupError(Exception):
    """A worker could not load the model or did not become ready."""


class Supervisor:
    def __init__(self, shared: Shared, placeholder: socket.socket) -> None:
        self.shared = shared
        self.children: dict[int, int] = {}  # pid -> worker index
        self.restarts = [0] * shared.config.workers
        self.placeholder = placeholder

    def start(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
        pending = {index: self._spawn(index) for index in range(self.shared.config.workers)}
        try:
            for index, fd in pending.items():
                self._await_ready(index, fd)
        except StartupError:
            self.stop(grace=5.0)
            raise

    def _spawn(self, index: int) -> int:
        read_fd, write_fd = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                os.close(read_fd)
                self.placeholder.close()
                _die_with(parent)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
                code = run_worker(index, self.shared, write_fd)
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_fd)
        self.children[pid] = index
        return read_fd

    @staticmethod
    def _await_ready(index: int, fd: int) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        data = b""
        try:
            while not data.endswith(b"\n"):
                ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(fd, 4096) if ready else b""
                if not chunk:
                    break
                data += chunk
        finally:
            os.close(fd)
        message = data.decode(errors="replace").strip()
        if message != "ok":
            raise StartupError(
                message.removeprefix("error: ") or f"worker {index} died while starting"
            )

    def supervise(self) -> int:
        """Until SIGTERM/SIGINT: restart workers that die. Returns the exit code."""
        while True:
            info = signal.sigwaitinfo(SIGNALS)
            if info.si_signo != signal.SIGCHLD:
                logs.event(log, "shutting down", signal=signal.Signals(info.si_signo).name)
                return self.stop(grace=self.shared.config.graceful_timeout + 5.0)
            for pid, status in self._reap():
                index = self.children.pop(pid)
                code = os.waitstatus_to_exitcode(status)
                logs.event(log, "worker died", logging.ERROR, worker=index, exit_code=code)
                self.restarts[index] += 1
                if self.restarts[index] > MAX_RESTARTS:
                    logs.event(log, "worker keeps dying; giving up", logging.ERROR, worker=index)
                    self.stop(grace=self.shared.config.graceful_timeout + 5.0)
                    return 1
                try:
                    self._await_ready(index, self._spawn(index))
                except StartupError as exc:
                    # E.g. the artifact changed on the volume: serving on with fewer workers
                    # would hide it; exit so the pod restarts and the parent verifies anew.
                    logs.event(log, f"cannot restart worker: {exc}", logging.ERROR, worker=index)
                    self.stop(grace=self.shared.config.graceful_timeout + 5.0)
                    return 3

    def _reap(self) -> list[tuple[int, int]]:
        reaped = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.children:
                reaped.append((pid, status))
        return reaped

    def stop(self, grace: float) -> int:
        """SIGTERM every worker, wait for them to drain, SIGKILL stragglers."""
        for pid in self.children:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        worst = 0
        while self.children and time.monotonic() < deadline:
            signal.sigtimedwait({signal.SIGCHLD}, max(0.01, deadline - time.monotonic()))
            for pid, status in self._reap():
                self.children.pop(pid)
                worst = max(worst, abs(os.waitstatus_to_exitcode(status)))
        for pid in self.children:
            os.kill(pid, signal.SIGKILL)
            worst = 1
        self.children.clear()
        return worst


def _die_with(parent: int) -> None:
    """A worker drains and exits when the parent dies (even by SIGKILL), so a killed
    server leaves no orphan holding the port."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's SIGTERM still works
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def serve(shared: Shared, placeholder: socket.socket) -> int:
    supervisor = Supervisor(shared, placeholder)
    try:
        supervisor.start()
    except StartupError as exc:
        logs.event(log, f"cannot serve the model: {exc}", logging.ERROR)
        return 3
    config = shared.config
    logs.event(
        log,
        "ready",
        host=config.host,
        port=shared.port,
        workers=config.workers,
        model=shared.identity.model,
        version=shared.identity.version,
        format=shared.identity.format,
        pids=sorted(supervisor.children),
    )
    code = supervisor.supervise()
    logs.event(log, "stopped", exit_code=code)
    return code
