"""Write a QR code as a PNG readable only by its owner (mode 0600), with no imaging library."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import qrcode

_BOX = 8  # pixels per QR module
_BORDER = 4  # quiet zone, in modules (the QR standard asks for 4)


def _chunk(kind: bytes, data: bytes) -> bytes:
    """Return one PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(text: str) -> bytes:
    """Return a black-on-white 8-bit greyscale PNG of the QR code for `text`."""
    code = qrcode.QRCode(border=_BORDER, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(text)
    code.make(fit=True)
    matrix: list[list[bool]] = code.get_matrix()
    size = len(matrix) * _BOX
    rows = bytearray()
    for modules in matrix:
        line = b"\x00" + b"".join((b"\x00" if dark else b"\xff") * _BOX for dark in modules)
        rows += line * _BOX
    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )


def write_qr_png(text: str, path: str | os.PathLike[str]) -> Path:
    """Write the QR PNG of `text` to `path` with mode 0600 (refusing symlinks); return the path."""
    target = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, 0o600), "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an existing file would keep its old mode otherwise
        fh.write(qr_png(text))
    return target
