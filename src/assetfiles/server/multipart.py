"""Streaming the multipart body of an EnOS integration request: one message part, file parts to disk.

python-multipart parses as bytes arrive; each ``enos-file`` part's sha256 and md5 are computed
as it comes, and it is refused as soon as it passes the per-file limit (the ``enos-message`` part
has its own, smaller one). A small part (up to :data:`INLINE_PART_BYTES`, while the request's
small parts together stay within :data:`INLINE_REQUEST_BYTES`) is kept in memory: a device's
reading of a few KiB then costs no temporary file, no spool directory and no thread hops to
write and read them back (bench/README.md, "Small uploads"). A larger part goes to a temporary
file in a spool directory made for the request when the first such part arrives. So a request
holds at most the message and :data:`INLINE_REQUEST_BYTES` in memory, however it is shaped.
A part's own ``Content-Length`` header, when sent (EnOS documents it), must match its bytes.

Other text fields are read and dropped: EnOS's Python samples send one named
``Content-Disposition`` before the message. Each is bounded like the message, and so is their
number, so ignoring them costs no more than the message itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header

from assetfiles.errors import BadInput, PayloadTooLarge
from assetfiles.service.enos_uploads import ReceivedFile

MESSAGE_PART = "enos-message"
FILE_PART = "enos-file"
#: File parts per request: each may be large, so their number is bounded too (disk, not memory).
MAX_FILES = 100
#: Text fields other than the message, read and ignored.
MAX_IGNORED_FIELDS = 16
#: A file part up to this size is kept in memory ...
INLINE_PART_BYTES = 64 * 1024
#: ... while all of a request's parts kept in memory stay within this.
INLINE_REQUEST_BYTES = 256 * 1024


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    #: a file part's bytes while it is small enough to be kept in memory
    inline: bytearray | None = None
    handle: IO[bytes] | None = None
    path: Path | None = None
    length: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)
    md5: Any = field(default_factory=hashlib.md5)


@dataclass
class Received:
    message: bytes
    files: list[ReceivedFile]


class EnosMultipart:
    def __init__(
        self, spool: Path, *, max_message: int, max_file: int, accept_files: bool = True, prefix: str = ""
    ) -> None:
        """``spool``: where the request's directory for its larger parts is made (named ``prefix``
        and a random suffix, so that a sweep after a crash finds it); :meth:`discard` removes it."""
        self.spool = spool
        self.prefix = prefix
        self.workdir: Path | None = None
        self.inline_bytes = 0
        self.max_message = max_message
        self.max_file = max_file
        self.accept_files = accept_files
        self.ignored_fields = 0
        self.message: bytearray | None = None
        self.files: list[ReceivedFile] = []
        self.part = _Part()
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.error: Exception | None = None

    def discard(self) -> None:
        """Remove the spooled parts, if any were spooled."""
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    @staticmethod
    def boundary(content_type: str | None) -> bytes:
        kind, options = parse_options_header(content_type or "")
        if kind != b"multipart/form-data" or not options.get(b"boundary"):
            raise BadInput("Content-Type: must be multipart/form-data with a boundary", field="Content-Type")
        return options[b"boundary"]

    async def read(self, content_type: str | None, body: AsyncIterable[bytes]) -> Received:
        parser = MultipartParser(
            self.boundary(content_type),
            {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self.header_field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self.header_value.extend(data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
            max_header_count=16,
        )
        try:
            async for chunk in body:
                parser.write(chunk)
                if self.error is not None:
                    raise self.error
            parser.finalize()
        except (ValueError, AssertionError) as exc:  # the library's own parse errors
            raise BadInput(f"body: not a valid multipart/form-data body ({exc})", field="body") from None
        finally:
            if self.part.handle is not None:
                self.part.handle.close()
        if self.message is None:
            raise BadInput(f"{MESSAGE_PART}: the part is missing", field=MESSAGE_PART)
        return Received(bytes(self.message), self.files)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error

    def _part_begin(self) -> None:
        self.part = _Part()

    def _header_end(self) -> None:
        self.part.headers[self.header_field.decode("latin-1").lower()] = self.header_value.decode(
            "utf-8", "replace"
        )
        self.header_field.clear()
        self.header_value.clear()

    def _headers_finished(self) -> None:
        part = self.part
        _, options = parse_options_header(part.headers.get("content-disposition", ""))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if part.name == MESSAGE_PART:
            if self.message is not None:
                self._fail(BadInput(f"{MESSAGE_PART}: only one message part is allowed", field=MESSAGE_PART))
            self.message = bytearray()
        elif part.name == FILE_PART:
            if not self.accept_files:
                message = (
                    f"{FILE_PART}: with useLark=true the files are PUT to their upload URLs, not sent here"
                )
                self._fail(BadInput(message, field=FILE_PART))
                return
            if not part.filename:
                self._fail(BadInput(f"{FILE_PART}: every file part needs a filename", field=FILE_PART))
                return
            if len(self.files) >= MAX_FILES:
                message = f"{FILE_PART}: at most {MAX_FILES} files per request"
                self._fail(PayloadTooLarge(message, field=FILE_PART))
                return
            if part.filename in {f.filename for f in self.files}:
                self._fail(BadInput(f"{FILE_PART}: file {part.filename!r} is sent twice", field=FILE_PART))
                return
            part.inline = bytearray()
        elif part.filename is not None:
            message = f"body: unexpected file part {part.name!r} (files are sent as {FILE_PART})"
            self._fail(BadInput(message, field="body"))
        else:
            self.ignored_fields += 1
            if self.ignored_fields > MAX_IGNORED_FIELDS:
                message = (
                    f"body: more than {MAX_IGNORED_FIELDS} fields besides {MESSAGE_PART} and {FILE_PART}"
                )
                self._fail(BadInput(message, field="body"))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self.error is not None:
            return
        chunk = data[start:end]
        part = self.part
        part.length += len(chunk)
        if part.name == MESSAGE_PART and self.message is not None:
            if part.length > self.max_message:
                message = f"{MESSAGE_PART}: larger than {self.max_message} bytes"
                self._fail(PayloadTooLarge(message, field=MESSAGE_PART))
                return
            self.message.extend(chunk)
        elif part.name != FILE_PART:
            if part.length > self.max_message:  # an ignored field: bounded like the message
                message = f"body: field {part.name!r} is larger than {self.max_message} bytes"
                self._fail(PayloadTooLarge(message, field="body"))
        elif part.inline is not None or part.handle is not None:
            if part.length > self.max_file:
                message = f"{FILE_PART}: {part.filename} is larger than {self.max_file} bytes"
                self._fail(PayloadTooLarge(message, field=FILE_PART))
                return
            part.sha256.update(chunk)
            part.md5.update(chunk)
            if part.inline is not None:
                fits = self.inline_bytes + len(chunk) <= INLINE_REQUEST_BYTES
                if part.length <= INLINE_PART_BYTES and fits:
                    part.inline.extend(chunk)
                    self.inline_bytes += len(chunk)
                    return
                self._spill(part)
            assert part.handle is not None
            part.handle.write(chunk)

    def _spill(self, part: _Part) -> None:
        """Move a part that grew past what is kept in memory to a temporary file."""
        assert part.inline is not None
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=self.prefix, dir=self.spool))
        handle = tempfile.NamedTemporaryFile(dir=self.workdir, delete=False)  # noqa: SIM115
        handle.write(part.inline)
        self.inline_bytes -= len(part.inline)
        part.handle, part.path, part.inline = handle, Path(handle.name), None

    def _part_end(self) -> None:
        part = self.part
        if (part.handle is None and part.inline is None) or self.error is not None:
            return
        if part.handle is not None:
            part.handle.close()
            part.handle = None
        declared = part.headers.get("content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) != part.length):
            message = (
                f"{FILE_PART}: {part.filename} declares Content-Length {declared}, has {part.length} bytes"
            )
            self._fail(BadInput(message, field=FILE_PART))
            return
        declared_md5 = part.headers.get("content-md5")
        if declared_md5 is not None and _md5_hex(declared_md5) != part.md5.hexdigest():
            message = (
                f"{FILE_PART}: {part.filename} declares Content-MD5 {declared_md5.strip()!r}, "
                f"its bytes' md5 is {part.md5.hexdigest()}"
            )
            self._fail(BadInput(message, field=f"{FILE_PART}.Content-MD5"))
            return
        assert part.filename is not None
        self.files.append(
            ReceivedFile(
                part.filename,
                part.path,
                part.length,
                part.md5.hexdigest(),
                part.sha256.hexdigest(),
                part.headers.get("content-type", "").strip() or None,
                bytes(part.inline) if part.inline is not None else None,
            )
        )


def _md5_hex(declared: str) -> str | None:
    """A part's Content-MD5 as hex: EnOS's SDKs send hex, RFC 1864 says base64; None if neither."""
    value = declared.strip()
    if len(value) == 32 and all(c in "0123456789abcdefABCDEF" for c in value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None
