"""Large results to local clients over a plain Unix socket beside the Flight one.

A local client (`grpc+unix://`) that asks for it (`"bulk": 1` in its ticket) gets a large
result (at least `BULK_MIN_BYTES` of Arrow) in two steps: the Flight call runs and audits the
query as always, keeps the table here under a one-time id (32 random bytes) and answers with
the result's schema only, carrying the id in its metadata (`protocol.BULK_META_KEY`); the
client then connects to the bulk socket (`protocol.bulk_socket_path`, beside the gateway
socket, same permissions), sends the id and reads an 8-byte length and the Arrow IPC stream
into one buffer it opens without copying.

Why: the same 55 MB result took about 30 ms through gRPC (messages received into slices and
re-assembled) and about 13 ms written straight to the socket and received into one
pre-sized buffer, on this project's 2-core machine; that difference is most of the gateway's
cost on a 1M-row result (`python -m bench gateway`). Flight stays the protocol: the query, its
policy check, its audit record and every error travel over it; this socket only moves bytes
of a result already granted to the caller.

An id is used once; a result unclaimed after `ttl` seconds is dropped; at most `max_bytes`
of results wait at a time (beyond that the result streams over Flight as before). An unknown,
used or expired id is answered with length -1 (the client says to run the query again). Ids
and sizes are logged, never data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from amzigo_lab.client.protocol import BULK_ID_BYTES, BULK_MISSING

LOG = logging.getLogger("amzigo.gateway")

#: Results smaller than this stream over Flight (the second connection would cost more).
BULK_MIN_BYTES = 4 * 1024 * 1024
#: Seconds a result waits for its client.
BULK_TTL = 30.0
#: Bytes of results waiting at once, at most.
BULK_MAX_BYTES = 2 * 1024**3
#: Seconds a connected client has to send its id.
_ID_TIMEOUT = 10.0
#: Seconds a client may stall while the result is sent (then the result is dropped).
_SEND_TIMEOUT = 600.0
#: Socket buffer for a result (the kernel caps it at net.core.wmem_max/rmem_max): fewer
#: wake-ups of either side than the default ~200 kB.
_SOCKET_BUFFER = 4 * 1024 * 1024


@dataclass
class _Pending:
    table: pa.Table
    nbytes: int
    deadline: float


class BulkResults:
    """The bulk socket of one gateway and the results waiting on it."""

    def __init__(
        self,
        path: Path,
        *,
        mode: int | None = None,
        min_bytes: int = BULK_MIN_BYTES,
        ttl: float = BULK_TTL,
        max_bytes: int = BULK_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.min_bytes = min_bytes
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._clock = clock
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # stale: the caller holds the home's gateway lock
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o077)
        try:
            self._listener.bind(str(path))
        finally:
            os.umask(old_umask)
        st = os.stat(path)
        self.file_id = (st.st_dev, st.st_ino)
        if mode is not None:
            os.chmod(path, mode)
        self._listener.listen(16)
        self._thread = threading.Thread(target=self._accept, name="bulk-results", daemon=True)
        self._thread.start()

    # -- the gateway's side ---------------------------------------------------------------------
    def offer(self, table: pa.Table) -> str | None:
        """Keep `table` for its client; its id, or None to stream it over Flight instead
        (small, or too many bytes already waiting)."""
        nbytes = table.nbytes
        if nbytes < self.min_bytes or self._closed.is_set():
            return None
        with self._lock:
            self._expire()
            waiting = sum(p.nbytes for p in self._pending.values())
            if waiting + nbytes > self.max_bytes:
                return None
            key = secrets.token_hex(BULK_ID_BYTES)
            self._pending[key] = _Pending(table, nbytes, self._clock() + self.ttl)
        return key

    def waiting(self) -> int:
        """Results waiting for their client (expired ones dropped first)."""
        with self._lock:
            self._expire()
            return len(self._pending)

    def close(self) -> None:
        """Stop listening, drop every waiting result, remove the socket if it is still ours."""
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(timeout=5)
        with self._lock:
            self._pending.clear()
        with contextlib.suppress(OSError):
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) == self.file_id:
                self.path.unlink()

    # -- the socket -----------------------------------------------------------------------------
    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, p in self._pending.items() if p.deadline <= now]:
            del self._pending[key]
            LOG.info("bulk_expired", extra={"fields": {}})

    def _claim(self, key: str) -> pa.Table | None:
        with self._lock:
            self._expire()
            pending = self._pending.pop(key, None)
        return None if pending is None else pending.table

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(_ID_TIMEOUT)
                key = _read_line(conn, 2 * BULK_ID_BYTES + 1)
                table = self._claim(key) if key else None
                if table is None:
                    LOG.info("bulk_refused", extra={"fields": {"reason": "unknown or expired id"}})
                    conn.sendall(struct.pack("<q", BULK_MISSING))
                    return
                conn.settimeout(_SEND_TIMEOUT)  # a stalled client holds its thread this long
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
                size = _stream_size(table)
                conn.sendall(struct.pack("<q", size))
                out = pa.PythonFile(_SendAll(conn), mode="w")
                with ipc.new_stream(out, table.schema) as writer:
                    writer.write_table(table)
                LOG.info("bulk_sent", extra={"fields": {"bytes": size, "rows": table.num_rows}})
            except OSError as exc:  # the client went away: its result is gone with it
                LOG.info("bulk_aborted", extra={"fields": {"error": type(exc).__name__}})
            except Exception:  # never takes the gateway down; the client sees the cut
                LOG.exception("bulk_failed")


class _SendAll:
    """The file interface Arrow's writer needs, over `socket.sendall` (a plain `send` may
    write part of a buffer once the socket has a timeout)."""

    closed = False

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn

    def write(self, data: bytes | memoryview) -> int:
        self._conn.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def _read_line(conn: socket.socket, limit: int) -> str:
    data = b""
    while not data.endswith(b"\n") and len(data) <= limit:
        chunk = conn.recv(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    line = data.rstrip(b"\n")
    if len(line) != 2 * BULK_ID_BYTES or not all(c in b"0123456789abcdef" for c in line):
        return ""
    return line.decode("ascii")


def _stream_size(table: pa.Table) -> int:
    sink = pa.MockOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return int(sink.size())
