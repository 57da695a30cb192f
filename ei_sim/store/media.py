"""Whether a figure, video or page that ei-sim wrote is whole: PNG, MP4, GIF and HTML.

Each check reads the file and returns None when it is complete, else one line saying what is
wrong. Writers run them on their temporary file before renaming it into place (a tool that
stopped early without saying so is caught there), and ``ei-sim verify`` runs them on any
such file:

- PNG: the signature, every chunk's length and CRC-32, and the closing ``IEND`` chunk;
- MP4: the top-level boxes tile the file exactly and include ``ftyp``, ``moov`` (the index a
  player needs, written last by ffmpeg: its "trailer") and ``mdat``;
- GIF: the header and the closing trailer byte;
- HTML (an ei-sim report): the closing ``</html>``.
"""

from __future__ import annotations

import os
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_TRAILER = b";"
HTML_END = b"</html>"
MEDIA_SUFFIXES = {".png": "png", ".mp4": "mp4", ".gif": "gif", ".html": "html", ".htm": "html"}


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def png_problem(data: bytes) -> str | None:
    """None for a whole PNG, else what is wrong with it."""
    if not data.startswith(PNG_SIGNATURE):
        return "not a PNG (no PNG signature)"
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            return f"truncated inside its {kind.decode('latin-1')} chunk"
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[pos + 4 : end - 4]) != crc:
            return f"its {kind.decode('latin-1')} chunk fails its CRC"
        if kind == b"IEND":
            return None if end == len(data) else "bytes after its IEND chunk"
        pos = end
    return "truncated (no IEND chunk)"


def mp4_problem(data: bytes) -> str | None:
    """None for an MP4 whose top-level boxes are whole and include ftyp, moov and mdat."""
    boxes, pos = [], 0
    while pos < len(data):
        if pos + 8 > len(data):
            return "truncated inside a box header"
        size, kind = struct.unpack(">I", data[pos : pos + 4])[0], data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            if pos + 16 > len(data):
                return "truncated inside a box header"
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = len(data) - pos
        if size < header or pos + size > len(data):
            return f"truncated inside its {kind.decode('latin-1')} box"
        boxes.append(kind)
        pos += size
    missing = [k for k in (b"ftyp", b"moov", b"mdat") if k not in boxes]
    if missing:
        names = ", ".join(k.decode() for k in missing)
        return f"incomplete (no {names} box{'es' if len(missing) > 1 else ''}: the encoder " \
               "did not finish)"
    return None


def gif_problem(data: bytes) -> str | None:
    if not data.startswith((b"GIF87a", b"GIF89a")):
        return "not a GIF (no GIF header)"
    return None if data.endswith(GIF_TRAILER) else "truncated (no GIF trailer)"


def html_problem(data: bytes) -> str | None:
    return None if HTML_END in data[-256:].lower() else "truncated (no closing </html>)"


CHECKS = {"png": png_problem, "mp4": mp4_problem, "gif": gif_problem, "html": html_problem}


def media_kind(path: str) -> str | None:
    """``png``, ``mp4``, ``gif`` or ``html`` by the file name's suffix (None otherwise)."""
    return MEDIA_SUFFIXES.get(os.path.splitext(path)[1].lower())


def file_problem(path: str, kind: str | None = None) -> str | None:
    """What is wrong with the media file ``path`` of ``kind`` (default: by its suffix); None
    when it is whole, or when its kind has no check."""
    kind = kind or media_kind(path)
    check = CHECKS.get(kind)
    if check is None:
        return None
    data = _read(path)
    if not data:
        return "empty (0 bytes)"
    return check(data)
