"""A small set of real photographs for the README's own-photos recipe.

Six colour photographs that scikit-image ships (`skimage.data`), each the
source of one class; every example is a random crop (a quarter to
two thirds of the shorter side), flipped at random and resized to a
random size, saved as JPEG. The train and validation crops come from
different seeds, so no validation image is a training image.
"""

from __future__ import annotations

import os

import numpy as np

PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "rocket",
)


def _crops(photo: np.ndarray, count: int, rng: np.random.Generator):
    from PIL import Image

    height, width = photo.shape[:2]
    short = min(height, width)
    for _ in range(count):
        side = int(short * rng.uniform(0.25, 0.67))
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        crop = photo[top : top + side, left : left + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        size = int(rng.integers(48, 129))
        yield Image.fromarray(np.ascontiguousarray(crop)).resize(
            (size, size), Image.BILINEAR
        )


def write_photo_folder(
    root: str, per_class: tuple[int, int] = (80, 20), seed: int = 0
) -> list[str]:
    """Writes `root/train/<class>/*.jpg` and `root/val/<class>/*.jpg`
    (`per_class` = (train, val) images per class); returns the class
    names."""
    from skimage import data

    for index, name in enumerate(PHOTOS):
        photo = getattr(data, name)()[..., :3]
        for split, count, offset in (
            ("train", per_class[0], 0),
            ("val", per_class[1], 1000),
        ):
            rng = np.random.default_rng(seed * 10_000 + offset + index)
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i, image in enumerate(_crops(photo, count, rng)):
                image.save(os.path.join(folder, f"{i:03d}.jpg"), quality=90)
    return list(PHOTOS)
