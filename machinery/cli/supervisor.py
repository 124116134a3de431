"""``machinery serve --processes N``: N server processes, each with the API and a worker, on one port.

One interpreter runs the API threads and the worker loop under one lock, so a single process uses about
one core. The supervisor binds the listening socket, forks N children that each build the app (their own
storage connections, worker and express runner) and serve on the inherited socket; the kernel hands each
connection to one of them. They share the database (SQLite in WAL mode, or PostgreSQL): claims, leases
and fencing keep every transition exactly-once across them, as across ``machinery worker`` processes.

- Leases of a killed predecessor are voided once, by the supervisor, before any child starts (no
  sibling is alive then); the children never void leases, so one child's start cannot void a live
  sibling's.
- A stop signal (SIGTERM, SIGINT) reaching the supervisor is sent on to every child, which stops as a
  single server does; the supervisor exits when they all have.
- Each child asks the kernel to kill it when the supervisor dies (``PR_SET_PDEATHSIG``), so ``kill -9`` of
  the supervisor takes the whole server down at once, as it would a single process.
- A child that dies on its own takes the others down too (the supervisor exits with status 1): a
  process manager (systemd, a container runtime) then restarts the whole server, which voids the
  leases the dead child held.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def listen(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A listening TCP socket on ``host:port``, inheritable by forked children."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (elsewhere: nothing)."""
    if not sys.platform.startswith("linux"):
        return
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        logger.warning("cannot ask to die with the supervisor (prctl); a killed supervisor leaves children")
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def supervise(
    processes: int, child: Callable[[int], None], on_exit: Callable[[int], None] = lambda _pid: None
) -> int:
    """Fork ``processes`` children running ``child(index)``; wait for them; the exit status.

    ``on_exit(pid)`` is called for every child that ended (the metrics forget its live gauges).

    Call it before this process starts any thread or opens any connection: ``fork`` copies only the
    calling thread.
    """
    pids: dict[int, int] = {}
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for index in range(processes):
        pid = os.fork()
        if pid == 0:
            status = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                die_with_parent()
                child(index)
            except SystemExit as exit_:
                status = exit_.code if isinstance(exit_.code, int) else 0
            except BaseException:
                logger.exception("server process %s failed", index)
                status = 1
            finally:
                logging.shutdown()
                os._exit(status)
        pids[pid] = index
    logger.info("serving with %s processes: %s", processes, ", ".join(map(str, pids)))
    status = 0
    while pids:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in pids:
            continue
        index = pids.pop(pid)
        on_exit(pid)
        exit_code = os.waitstatus_to_exitcode(code)
        if not stopping:
            logger.error(
                "server process %s (pid %s) ended with %s: stopping the others", index, pid, exit_code
            )
            status = 1
            forward(signal.SIGTERM, None)
    return status
