"""Fetching a large result from the local gateway's bulk socket (`gateway/bulk.py`).

The Flight call has already run, policy-checked and audited the query; its answer held only
the schema and a one-time id. Here: connect to the bulk socket, send the id, read the length,
receive the Arrow IPC stream into one buffer of that size and open it without copying.
"""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from amzigo_lab.client.protocol import BULK_MISSING, GatewayError, GatewayUnavailable


class Spare:
    """A receive buffer made ready while the gateway runs the query: memory for a result of
    about `size` bytes, allocated and touched (page faults taken) on a thread of its own, so
    the client's wait overlaps what would otherwise follow it. `fetch` takes it when the
    result fits and would use at least half of it."""

    def __init__(self, size: int) -> None:
        self._buffer: pa.Buffer | None = None
        self._thread = threading.Thread(target=self._make, args=(size,), daemon=True)
        self._thread.start()

    def _make(self, size: int) -> None:
        buffer = pa.allocate_buffer(size)
        view = memoryview(buffer)
        for offset in range(0, size, _PAGE):
            view[offset] = 0  # one write per page: the fault happens here, not in recv
        self._buffer = buffer

    def take(self, size: int) -> pa.Buffer | None:
        """The buffer if `size` bytes fit it and use at least half of it, else None."""
        self._thread.join()
        buffer, self._buffer = self._buffer, None
        if buffer is None or not buffer.size // 2 <= size <= buffer.size:
            return None
        return buffer


_PAGE = 4096


def fetch(path: Path, key: str, *, timeout: float, spare: Spare | None = None) -> pa.Table:
    """The result waiting under `key` at the bulk socket `path` (received into `spare`'s
    buffer when it fits)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with conn:
        conn.settimeout(timeout)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # fewer wake-ups
        try:
            conn.connect(str(path))
        except OSError as exc:
            raise GatewayUnavailable(
                f"the gateway's result socket {path} does not answer ({exc.strerror}); "
                "is the gateway still running? Run the query again"
            ) from None
        try:
            conn.sendall(key.encode("ascii") + b"\n")
            (size,) = struct.unpack("<q", _receive(conn, memoryview(bytearray(8))))
            if size == BULK_MISSING or size < 0:
                raise GatewayError(
                    "the gateway no longer holds this result (a result waits 30 seconds for "
                    "its client, and is sent once); run the query again"
                )
            ready = spare.take(size) if spare is not None else None
            buffer = ready if ready is not None else pa.allocate_buffer(size)
            _receive(conn, memoryview(buffer)[:size])
        except (OSError, struct.error) as exc:
            raise GatewayUnavailable(
                f"the gateway's result socket {path} closed before the whole result arrived "
                f"({type(exc).__name__}); run the query again"
            ) from None
    return ipc.open_stream(buffer.slice(0, size)).read_all()


def _receive(conn: socket.socket, view: memoryview) -> memoryview:
    """Fill `view` from `conn` (ConnectionError if the peer closes first)."""
    got, size = 0, len(view)
    while got < size:
        n = conn.recv_into(view[got:], size - got)
        if n == 0:
            raise ConnectionError("closed early")
        got += n
    return view
