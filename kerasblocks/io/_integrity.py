"""Whole-file checksums: a flipped byte anywhere is detected on load.

- Zip archives (`.keras`, tensors files) end with an archive comment
  `kerasblocks-sha256:<hex>`: the SHA-256 of every byte before it.
- HDF5 files (`.h5`, weights files) start with a 512-byte HDF5 user
  block (which HDF5 itself ignores) holding the SHA-256 of every byte
  after it.
- SavedModel directories hold `kerasblocks_manifest.json` with the
  SHA-256 of every other file.

Files without a checksum (written by plain Keras) still load; they get
only the structural checks of their format.
"""

from __future__ import annotations

import hashlib
import json
import os

import h5py

from kerasblocks.io.errors import CorruptFileError

_ZIP_TAG = b"kerasblocks-sha256:"
_ZIP_COMMENT_SIZE = len(_ZIP_TAG) + 64
USERBLOCK_SIZE = 512
_H5_TAG = b"kerasblocks-sha256:"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
DIRECTORY_MANIFEST = "kerasblocks_manifest.json"
_CHUNK = 1 << 20


def _sha256_of(path: str, start: int = 0, end: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            size = _CHUNK if remaining is None else min(_CHUNK, remaining)
            block = f.read(size)
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


def zip_placeholder_comment() -> bytes:
    """The comment to write into an archive before `seal_zip`."""
    return _ZIP_TAG + b"0" * 64


def seal_zip(path: str) -> None:
    """Replaces the placeholder comment with the archive's checksum."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(size - _ZIP_COMMENT_SIZE)
        if not f.read(_ZIP_COMMENT_SIZE).startswith(_ZIP_TAG):
            raise ValueError(f"{path}: no placeholder comment to seal")
    digest = _sha256_of(path, 0, size - _ZIP_COMMENT_SIZE)
    with open(path, "r+b") as f:
        f.seek(size - _ZIP_COMMENT_SIZE + len(_ZIP_TAG))
        f.write(digest.encode("ascii"))


def verify_zip(path: str) -> bool:
    """Checks a sealed archive; returns False for one without a seal.

    The end-of-archive record is located and its declared comment length
    compared with the file's length, so a cut anywhere in the comment or
    record is "truncated" even for an archive whose readers would not
    mind.
    """
    size = _nonempty(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - (22 + 0xFFFF)))
        tail = f.read()
    position = tail.rfind(b"PK\x05\x06")
    if position < 0 or len(tail) - position < 22:
        raise CorruptFileError(path, "not a zip archive, or truncated")
    declared = int.from_bytes(tail[position + 20 : position + 22], "little")
    comment = tail[position + 22 :]
    if len(comment) != declared:
        raise CorruptFileError(
            path,
            f"truncated or extended (the archive declares a {declared}-byte "
            f"comment, {len(comment)} bytes follow)",
        )
    if declared != _ZIP_COMMENT_SIZE:
        return False
    if not comment.startswith(_ZIP_TAG):
        raise CorruptFileError(path, "the checksum seal is damaged")
    expected = comment[len(_ZIP_TAG) :].decode("ascii", "replace")
    if _sha256_of(path, 0, size - _ZIP_COMMENT_SIZE) != expected:
        raise CorruptFileError(path, "checksum mismatch (the file was changed)")
    return True


def seal_h5(path: str) -> None:
    """Writes the checksum of everything after the user block into it.

    The file must have been created with `userblock_size=USERBLOCK_SIZE`.
    """
    digest = _sha256_of(path, USERBLOCK_SIZE)
    block = (_H5_TAG + digest.encode("ascii")).ljust(USERBLOCK_SIZE, b"\0")
    with open(path, "r+b") as f:
        f.write(block)


def verify_h5(path: str) -> bool:
    """Checks a sealed HDF5 file; returns False for one without a seal."""
    size = _nonempty(path)
    with open(path, "rb") as f:
        head = f.read(USERBLOCK_SIZE + len(_HDF5_SIGNATURE))
    if not head.startswith(_H5_TAG):
        # HDF5 ignores a user block, so a damaged seal would go unnoticed
        # by HDF5: a file whose superblock sits after a user block was
        # written here and must carry the tag.
        if head[USERBLOCK_SIZE:] == _HDF5_SIGNATURE:
            raise CorruptFileError(path, "the checksum seal is damaged")
        return False
    head = head[:USERBLOCK_SIZE]
    expected = head[len(_H5_TAG) : len(_H5_TAG) + 64].decode("ascii", "replace")
    if size <= USERBLOCK_SIZE or _sha256_of(path, USERBLOCK_SIZE) != expected:
        raise CorruptFileError(path, "checksum mismatch (the file was changed)")
    if head[len(_H5_TAG) + 64 :].strip(b"\0"):
        raise CorruptFileError(path, "checksum mismatch in the user block")
    return True


def open_h5(path: str, what: str = "HDF5 file"):
    """`path` opened for reading as an `h5py.File`, once its seal (if
    any) is verified; a CorruptFileError naming `what` when HDF5 cannot
    read it."""
    verify_h5(path)
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise CorruptFileError(
            path, f"not a readable {what} ({error})"
        ) from None


def _nonempty(path: str) -> int:
    size = os.path.getsize(path)
    if size == 0:
        raise CorruptFileError(path, "the file is empty (truncated)")
    return size


def _files_under(directory: str) -> list[str]:
    found = []
    for root, _, files in os.walk(directory):
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), directory)
            if relative != DIRECTORY_MANIFEST:
                found.append(relative.replace(os.sep, "/"))
    return sorted(found)


def seal_directory(directory: str, extra: dict | None = None) -> None:
    """Writes the manifest: format data plus the SHA-256 of each file."""
    manifest = dict(extra or {})
    manifest["sha256"] = {
        name: _sha256_of(os.path.join(directory, name))
        for name in _files_under(directory)
    }
    with open(os.path.join(directory, DIRECTORY_MANIFEST), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


def verify_directory(directory: str) -> dict | None:
    """Checks every file against the manifest; returns the manifest, or
    None when the directory has none."""
    path = os.path.join(directory, DIRECTORY_MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            manifest = json.load(f)
        digests = manifest["sha256"]
    except (ValueError, KeyError, OSError) as error:
        raise CorruptFileError(
            directory, f"unreadable manifest ({error})"
        ) from None
    present = set(_files_under(directory))
    missing = sorted(set(digests) - present)
    if missing:
        raise CorruptFileError(
            directory, f"missing files: {', '.join(missing)}"
        )
    extra = sorted(present - set(digests))
    if extra:
        raise CorruptFileError(
            directory, f"files not in the manifest: {', '.join(extra)}"
        )
    for name, digest in sorted(digests.items()):
        if _sha256_of(os.path.join(directory, name)) != digest:
            raise CorruptFileError(directory, f"checksum mismatch in {name}")
    return manifest
