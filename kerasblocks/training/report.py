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


def format_confusion(matrix: np.ndarray) -> str:
    width = max(3, len(str(matrix.max())))
    header = "true\\pred " + " ".join(
        f"{i:>{width}}" for i in range(len(matrix))
    )
    rows = [
        f"{i:>9} " + " ".join(f"{v:>{width}}" for v in row)
        for i, row in enumerate(matrix)
    ]
    return "\n".join([header, *rows])


def plot_confusion(matrix: np.ndarray, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axis = plt.subplots(figsize=(4.5, 4))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
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


def export_all(
    model, out_dir: str, formats, image_serving=None, **checks
) -> dict[str, str]:
    """Exports `model` under out_dir/export in each format; returns paths.

    With `image_serving` (a `kerasblocks.io.ImageServing`), the
    SavedModel's `serving_default` takes uint8 images, `serving_bytes`
    encoded ones, and `serving_float` the model's own input. The
    SavedModel goes to `export/saved_model/<N>/` (TF Serving's layout);
    `checks` (`validation`, `options`) are `deploy.export_checked`'s."""
    from kerasblocks.training import deploy

    return deploy.export_checked(
        model, out_dir, formats, image_serving=image_serving, **checks
    )
