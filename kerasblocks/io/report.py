"""What a weight load matched and did not."""

from __future__ import annotations

import dataclasses

from kerasblocks.io._specs import finalize_state, relative_path
from kerasblocks.io.errors import WeightsMismatchError
from kerasblocks.params import unique_variables


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


def refuse_mismatch(model, path: str, report: LoadReport, strict) -> None:
    """In strict mode, raises on any mismatch; when a layer gets fewer
    variables than it has, in Keras's words first (its tests match
    them)."""
    if not strict or report.ok:
        return
    lead = ""
    if report.mismatched:
        where, stored, own = report.mismatched[0]
        layer, _, name = where.rpartition("/")
        lead = (
            f"Layer '{layer or model.name}' variable '{name}' has shape "
            f"{tuple(own)} in the model and {tuple(stored)} in the file. "
        )
    elif report.missing:
        layer = report.missing[0].rpartition("/")[0]
        own = [
            p
            for p in (relative_path(model, v) for v in unique_variables(model))
            if p.rpartition("/")[0] == layer
        ]
        received = len(set(own) - set(report.missing))
        lead = (
            f"Layer '{layer.rpartition('/')[2] or model.name}' expected "
            f"{len(own)} variables, but received {received} variables "
            "during loading. "
        )
    raise WeightsMismatchError(path, report, lead=lead)


def copy_variables(source, target) -> LoadReport:
    """Copies each variable of `source` into `target`'s variable of the
    same path and shape, and reports what was and was not copied.

    Layers that derive state from their variables (a Normalization's mean
    and variance) take the copied values up, as Keras's loader does.
    """
    found = {v.path: v for v in unique_variables(source)}
    report = LoadReport()
    for variable in unique_variables(target):
        match = found.pop(variable.path, None)
        if match is None:
            report.missing.append(variable.path)
        elif tuple(match.shape) != tuple(variable.shape):
            report.mismatched.append(
                (variable.path, tuple(match.shape), tuple(variable.shape))
            )
        else:
            variable.assign(match)
            report.loaded.append(variable.path)
    report.unexpected.extend(found)
    finalize_state(target)
    return report
