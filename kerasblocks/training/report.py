"""What a run leaves for people: curves, confusion matrices, exports."""

from __future__ import annotations

import numpy as np

from kerasblocks import io as kb_io


def plot_curves(history: list[dict], path: str) -> None:
    """Loss and accuracy (or MAE) per epoch, train and validation, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = [h["epoch"] for h in history]
    metric = next(
        (
            k[len("val_") :]
            for k in (history[0] if history else {})
            if k.startswith("val_") and k != "val_loss"
        ),
        "accuracy",
    )
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for axis, key, title in (
        (axes[0], "loss", "loss"),
        (axes[1], metric, metric),
    ):
        for split, style in (("train", "-o"), ("val", "--s")):
            values = [h.get(f"{split}_{key}") for h in history]
            if any(v is not None for v in values):
                axis.plot(epochs, values, style, label=split, markersize=3)
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with kb_io._atomic.atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """Counts[true, predicted]."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def classification_report(
    labels, predictions, num_classes: int, class_names=None
) -> dict:
    """The confusion matrix and each class's precision, recall and
    support (`sklearn.metrics`; a class never predicted has precision
    0), with the class names (their indices when unknown).

    Example:

    >>> found = classification_report([0, 0, 1], [0, 1, 1], 2, ["a", "b"])
    >>> found["confusion_matrix"], found["per_class"][1]["precision"]
    ([[1, 1], [0, 1]], 0.5)
    """
    from sklearn import metrics

    names = [str(n) for n in class_names] if class_names else None
    if names is None or len(names) != num_classes:
        names = [str(i) for i in range(num_classes)]
    classes = list(range(num_classes))
    precision, recall, _, support = metrics.precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    return {
        "confusion_matrix": confusion_matrix(
            labels, predictions, num_classes
        ).tolist(),
        "class_names": names,
        "per_class": [
            {
                "class": name,
                "precision": float(p),
                "recall": float(r),
                "support": int(n),
            }
            for name, p, r, n in zip(
                names, precision, recall, support, strict=True
            )
        ],
    }


def format_per_class(per_class: list[dict]) -> str:
    """A table of each class's precision, recall and support."""
    width = max([5, *(len(row["class"]) for row in per_class)])
    lines = [f"{'class':<{width}} precision recall support"]
    lines += [
        f"{row['class']:<{width}} {row['precision']:>9.4f} "
        f"{row['recall']:>6.4f} {row['support']:>7d}"
        for row in per_class
    ]
    return "\n".join(lines)


def format_confusion(matrix: np.ndarray, class_names=None) -> str:
    """Counts[true, predicted] as text, rows and columns named by class
    (names cut to 12 characters)."""
    names = [str(n)[:12] for n in (class_names or range(len(matrix)))]
    width = max(3, len(str(matrix.max())), *(len(n) for n in names))
    label = max(9, *(len(n) for n in names))
    corner = "true\\pred"
    header = f"{corner:>{label}} " + " ".join(f"{n:>{width}}" for n in names)
    rows = [
        f"{name:>{label}} " + " ".join(f"{v:>{width}}" for v in row)
        for name, row in zip(names, matrix, strict=True)
    ]
    return "\n".join([header, *rows])


def plot_confusion(matrix: np.ndarray, path: str, class_names=None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    size = max(4.0, 0.45 * len(matrix) + 2.5)
    figure, axis = plt.subplots(figsize=(size + 0.5, size))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if class_names is not None and len(matrix) <= 50:
        ticks = list(range(len(matrix)))
        axis.set_xticks(ticks, [str(n) for n in class_names], rotation=90)
        axis.set_yticks(ticks, [str(n) for n in class_names])
    if len(matrix) <= 20:
        for (i, j), value in np.ndenumerate(matrix):
            axis.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > matrix.max() / 2 else "black",
            )
    figure.colorbar(image, ax=axis)
    figure.tight_layout()
    with kb_io._atomic.atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=110)
    plt.close(figure)
