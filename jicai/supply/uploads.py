"""Interruption proof files (断供证明, R-I2): size and type checked by their first bytes, stored under
``JICAI_HOME/uploads/supply/incidents/<incident id>/<sha256>.<ext>``.

Only PDF, JPEG and PNG are accepted, told apart by their magic bytes (a renamed executable stays
refused whatever its name says); a file whose extension names another type is refused too, so what a
user downloads is what the name promises. Files are written once under their content hash and never
overwritten; a database row (``IncidentProof``) names each.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from django.conf import settings

from jicai.supply.common import WorkflowError

MAX_PROOF_BYTES = 10 * 1024 * 1024
"""Largest proof file accepted: 10 MiB (a scanned letter or a few photographed pages)."""

UPLOAD_DIR = ("uploads", "supply", "incidents")


@dataclass(frozen=True)
class FileType:
    content_type: str
    extension: str
    extensions: tuple[str, ...]
    magic: bytes


FILE_TYPES = (
    FileType("application/pdf", "pdf", ("pdf",), b"%PDF-"),
    FileType("image/jpeg", "jpg", ("jpg", "jpeg"), b"\xff\xd8\xff"),
    FileType("image/png", "png", ("png",), b"\x89PNG\r\n\x1a\n"),
)


@dataclass(frozen=True)
class CheckedFile:
    data: bytes
    original_name: str
    size: int
    content_type: str
    extension: str
    sha256: str


def detect_type(head: bytes) -> FileType | None:
    """The accepted type whose magic bytes ``head`` starts with, if any."""
    return next((t for t in FILE_TYPES if head.startswith(t.magic)), None)


def clean_name(name: str) -> str:
    """The file's own name without any directory part, at most 200 characters."""
    base = PurePath(name.replace("\\", "/")).name.strip() or "proof"
    return base[-200:]


def check_proof(chunks: Iterable[bytes], original_name: str, *, declared_size: int | None = None) -> CheckedFile:
    """Read the upload (refusing it as soon as it exceeds the limit) and check its type."""
    limit_mb = MAX_PROOF_BYTES // (1024 * 1024)
    if declared_size is not None and declared_size > MAX_PROOF_BYTES:
        raise WorkflowError(
            f"文件过大：不能超过 {limit_mb} MB", f"The file is larger than {limit_mb} MiB", "proof.too_large", "file"
        )
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_PROOF_BYTES:
            raise WorkflowError(
                f"文件过大：不能超过 {limit_mb} MB",
                f"The file is larger than {limit_mb} MiB",
                "proof.too_large",
                "file",
            )
        parts.append(chunk)
    data = b"".join(parts)
    if not data:
        raise WorkflowError("文件为空", "The file is empty", "proof.empty", "file")
    found = detect_type(data[:16])
    if found is None:
        raise WorkflowError(
            "文件类型不支持：只接受 PDF、JPEG 或 PNG 文件（按文件内容判断，不看扩展名）",
            "Only PDF, JPEG or PNG files are accepted (judged by content)",
            "proof.type",
            "file",
        )
    name = clean_name(original_name)
    suffix = PurePath(name).suffix.lower().lstrip(".")
    if suffix and suffix not in found.extensions:
        raise WorkflowError(
            f"文件扩展名“.{suffix}”与文件内容（{found.extension.upper()}）不符",
            f"The extension .{suffix} does not match the content ({found.extension})",
            "proof.extension",
            "file",
        )
    return CheckedFile(
        data=data,
        original_name=name,
        size=size,
        content_type=found.content_type,
        extension=found.extension,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def upload_root() -> Path:
    return Path(settings.JICAI_HOME).joinpath(*UPLOAD_DIR)


def store(checked: CheckedFile, incident_id: int) -> str:
    """Write the file (once per content) and return its path relative to the upload root."""
    relative = f"{incident_id}/{checked.sha256}.{checked.extension}"
    target = upload_root() / relative
    if target.exists():
        return relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(checked.data)
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return relative


def resolve(relative: str) -> Path:
    """The stored file of a proof row; refuses paths that would leave the upload root."""
    root = upload_root().resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise FileNotFoundError(relative)
    return path
