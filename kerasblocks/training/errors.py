"""What can stop a run, by whose fault.

`UserInputError` is the user's to fix (a flag, a file, a name, a shape,
a data set too small): the tools show its one-line message and exit 2.
Anything else is a bug or an outage and keeps its traceback.
"""

from __future__ import annotations


class UserInputError(ValueError):
    """Input the user gave cannot work; the message names the flag or
    file and what to do."""


class RunDirectoryError(UserInputError):
    """The run directory holds something else than this run."""


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class PeerLostError(RuntimeError):
    """A multi-worker run lost a peer: a collective failed or timed out.
    The message names the peer; rerun every worker to resume."""
