"""What every kb-* program shares: quiet TensorFlow, one-line errors.

Only errors that are the user's (a bad flag, a missing or corrupt file,
an unknown name, incompatible shapes, a data set too small) end in one
line and exit 2. Anything else is a bug or an outage: its traceback is
shown and the exit code is 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2


class UsageError(Exception):
    """A flag the tool itself checks is wrong (raised before anything
    heavy is imported)."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types that are the user's to fix."""
    from kerasblocks.io.errors import (
        CorruptFileError,
        UnsafeModelError,
        WeightsMismatchError,
    )
    from kerasblocks.training.checkpoints import NoUsableCheckpointError
    from kerasblocks.training.data import DataError
    from kerasblocks.training.errors import UserInputError

    return (
        UsageError,
        UserInputError,
        DataError,
        FileNotFoundError,
        CorruptFileError,
        UnsafeModelError,
        WeightsMismatchError,
        NoUsableCheckpointError,
    )


def fail(name: str, error: BaseException) -> int:
    """Prints `error` as one line and returns the usage exit code."""
    text = str(error).strip()
    message = text.splitlines()[0] if text else repr(error)
    print(f"{name}: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_main(name: str, body: Callable[[], int]) -> int:
    """Runs `body`; a user error ends in one line on stderr and exit 2,
    anything else keeps its traceback."""
    try:
        return body()
    except UsageError as error:
        return fail(name, error)
    except Exception as error:
        if isinstance(error, user_errors()):
            return fail(name, error)
        raise


def create_zoo_model(name: str, overrides: dict):
    """A zoo model from the user's --model and --model_overrides; a name
    or argument the model refuses is a `UsageError`."""
    import zoo

    try:
        zoo.get_model_entry(name)
    except ValueError as error:
        raise UsageError(f"--model: {error}") from None
    try:
        return zoo.create_model(name, **overrides)
    except ValueError as error:
        raise UsageError(f"--model={name} with {overrides}: {error}") from None
