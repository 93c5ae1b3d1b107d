"""Errors raised by `kerasblocks.io`; each message names the file."""

from __future__ import annotations


class CorruptFileError(ValueError):
    """A file is damaged: truncated, wrong format, or a checksum differs."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class UnsafeModelError(ValueError):
    """Loading the file would run code from it; refused unless trusted."""

    def __init__(self, path, refused: list[str]):
        self.path = str(path)
        self.refused = list(refused)
        shown = "; ".join(self.refused[:5])
        more = (
            f" (and {len(self.refused) - 5} more)" if len(refused) > 5 else ""
        )
        super().__init__(
            f"{self.path}: refusing to load, it would run code from the "
            f"file (arbitrary code execution) or reach outside it: "
            f"{shown}{more}. Pass trusted=True only for files you trust."
        )


class WeightsMismatchError(ValueError):
    """Strict weight loading found missing, unexpected or misshapen
    variables; nothing was assigned. `.report` holds the lists."""

    def __init__(self, path, report, lead: str = ""):
        self.path = str(path)
        self.report = report
        super().__init__(
            f"{lead}{self.path}: weights do not match the model (paths and "
            f"shapes must match): {report}"
        )


class ResourceLimitError(UnsafeModelError):
    """The file declares more data than the load's `limits` allow; it was
    refused before anything was inflated or read."""

    def __init__(self, path, refused: list[str]):
        ValueError.__init__(
            self,
            f"{path}: refusing to load, it exceeds the resource limits: "
            f"{'; '.join(refused)}. Raise `limits` only for files you trust.",
        )
        self.path = str(path)
        self.refused = list(refused)


class ConversionError(ValueError):
    """A model could not be converted to a deployment format; the message
    names the op and the layer the converter refused. Nothing was
    written."""

    def __init__(self, path, target: str, model_name: str, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(
            f"{self.path}: cannot convert model '{model_name}' to "
            f"{target}: {problem}"
        )
