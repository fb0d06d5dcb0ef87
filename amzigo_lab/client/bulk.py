"""Fetching a large result from the local gateway's bulk socket (`gateway/bulk.py`).

The Flight call has already run, policy-checked and audited the query; its answer held only
the schema and a one-time id. Here: connect to the bulk socket, send the id, read the length,
receive the Arrow IPC stream into one buffer of that size and open it without copying.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from amzigo_lab.client.protocol import BULK_MISSING, GatewayError, GatewayUnavailable


def fetch(path: Path, key: str, *, timeout: float) -> pa.Table:
    """The result waiting under `key` at the bulk socket `path`."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with conn:
        conn.settimeout(timeout)
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
            buffer = pa.allocate_buffer(size)
            _receive(conn, memoryview(buffer))
        except (OSError, struct.error) as exc:
            raise GatewayUnavailable(
                f"the gateway's result socket {path} closed before the whole result arrived "
                f"({type(exc).__name__}); run the query again"
            ) from None
    return ipc.open_stream(buffer).read_all()


def _receive(conn: socket.socket, view: memoryview) -> memoryview:
    """Fill `view` from `conn` (ConnectionError if the peer closes first)."""
    got, size = 0, len(view)
    while got < size:
        n = conn.recv_into(view[got:], size - got)
        if n == 0:
            raise ConnectionError("closed early")
        got += n
    return view
