"""kb-prepare: turn a folder of class subfolders into TFRecord shards.

kb-prepare --folder=photos --out_prefix=shards/photos --num_shards=8
kb-train --dataset=tfrecord:shards/photos-* ...

The records carry the keys TFDS and the TF Model Garden use for image
classification (image/encoded, image/class/label, image/class/text,
image/format, image/height, image/width). A folder with train/ and val/
subfolders gives PREFIX-train-* and PREFIX-val-* shards, to be named as
--dataset=tfrecord:PREFIX-train-*,PREFIX-val-*.
"""

from __future__ import annotations

from absl import flags

from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "folder", None, "A directory with one subfolder of images per class."
)
flags.DEFINE_string(
    "out_prefix", None, "Path prefix of the shards: PREFIX-00000-of-0000N."
)
flags.DEFINE_integer("num_shards", 4, "Shards per split.", lower_bound=1)
flags.DEFINE_bool("gzip", False, "Compress the shards with gzip.")
flags.DEFINE_integer("seed", 0, "The order of the images across shards.")
flags.DEFINE_bool(
    "strict_data", False, "Stop at an unreadable image instead of skipping."
)


def _check() -> None:
    missing = [f"--{n}" for n in ("folder", "out_prefix") if not FLAGS[n].value]
    if missing:
        raise _common.UsageError(
            f"{' and '.join(missing)} "
            f"{'are' if len(missing) > 1 else 'is'} required, e.g. "
            "--folder=photos "
            "--out_prefix=shards/photos (see --help)"
        )


def _prepare() -> int:
    from kerasblocks.data import write_image_tfrecords

    written = write_image_tfrecords(
        FLAGS.folder,
        FLAGS.out_prefix,
        FLAGS.num_shards,
        gzip=FLAGS.gzip,
        seed=FLAGS.seed,
        strict=FLAGS.strict_data,
    )
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv):
    return _common.run_main("kb-prepare", _prepare, _check, argv=argv)


def run():
    _common.run_app(main, "kb-prepare", __name__)


if __name__ == "__main__":
    run()
