"""What a weight load matched and did not."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class LoadReport:
    """What a weight load matched and did not.

    Attributes:
        loaded: model paths that received a value.
        missing: model paths with no value in the file.
        unexpected: file paths that match no model variable.
        mismatched: `(path, file shape, model shape)` for paths present in
            both with different shapes.
    """

    loaded: list[str] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)
    mismatched: list[tuple[str, tuple, tuple]] = dataclasses.field(
        default_factory=list
    )

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def __str__(self) -> str:
        parts = []
        for label, items in (
            ("missing", self.missing),
            ("unexpected", self.unexpected),
        ):
            if items:
                shown = ", ".join(items[:5])
                more = f", ... ({len(items)} in all)" if len(items) > 5 else ""
                parts.append(f"{label} {len(items)}: {shown}{more}")
        if self.mismatched:
            shown = ", ".join(
                f"{p} file {tuple(a)} vs model {tuple(b)}"
                for p, a, b in self.mismatched[:5]
            )
            more = (
                f", ... ({len(self.mismatched)} in all)"
                if len(self.mismatched) > 5
                else ""
            )
            parts.append(
                f"shape mismatch {len(self.mismatched)}: {shown}{more}"
            )
        return "; ".join(parts) if parts else f"all {len(self.loaded)} loaded"
