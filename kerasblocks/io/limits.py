"""Resource limits checked before a file is inflated or read.

A zip archive declares each member's inflated size in its central
directory, and an HDF5 dataset its shape; both are read as data and
compared with the limits before a single member is inflated or a
dataset read, so a 5 MB file that would inflate to 5 GiB is refused
without using the memory.
"""

from __future__ import annotations

import dataclasses
import zipfile

from kerasblocks._keras_compat import saving_lib
from kerasblocks.io.errors import ResourceLimitError


@dataclasses.dataclass(frozen=True)
class Limits:
    """What a file may ask of memory and disk when it is loaded.

    Attributes:
        max_bytes: the most bytes a whole archive may inflate to, and the
            most any one dataset may declare (default 4 GiB).
        max_members: the most members an archive may hold.
        max_ratio: the most a member may inflate per stored byte, for
            members over 1 MiB (DEFLATE cannot exceed ~1032).
    """

    max_bytes: int = 4 << 30
    max_members: int = 10_000
    max_ratio: int = 1100


DEFAULT = Limits()


def check_archive(archive: zipfile.ZipFile, path, limits: Limits) -> None:
    """Raises `ResourceLimitError` when the archive's directory declares
    more than `limits` allow. Reads only the central directory."""
    limits = limits or DEFAULT
    members = archive.infolist()
    try:  # Keras's own guards first, then ours
        for info in members:
            saving_lib._reject_zip_bomb(archive, info.filename)
        saving_lib._reject_zip_extract_bomb(archive)
    except ValueError as error:
        raise ResourceLimitError(path, [str(error)]) from None
    problems = []
    if len(members) > limits.max_members:
        problems.append(
            f"{len(members):,} archive members (limit {limits.max_members:,})"
        )
    total = sum(info.file_size for info in members)
    if total > limits.max_bytes:
        problems.append(
            f"the archive inflates to {total:,} bytes "
            f"(limit max_bytes={limits.max_bytes:,})"
        )
    for info in members:
        if info.file_size > 1 << 20 and info.file_size > limits.max_ratio * max(
            info.compress_size, 1
        ):
            problems.append(
                f"archive member {info.filename!r} inflates "
                f"{info.compress_size:,} stored bytes to {info.file_size:,}"
            )
    if problems:
        raise ResourceLimitError(path, problems)
