"""What every kb-* program shares: quiet TensorFlow, one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2


def run_main(name: str, body: Callable[[], int]) -> int:
    """Runs `body`; a user error (bad flag, missing file, wrong shape)
    ends in one line on stderr and a non-zero exit, not a traceback."""
    from kerasblocks.io.errors import CorruptFileError, UnsafeModelError

    try:
        return body()
    except (
        ValueError,
        FileNotFoundError,
        CorruptFileError,
        UnsafeModelError,
    ) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else repr(e)
        print(f"{name}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
