"""TFRecord files the data tests write: `tf.train.Example`s of named
features, and image shards in the TF-Slim layout kb-train reads.

TensorFlow is imported when a record is made, not with this module, so
that the tools' tests that run programs need not load it."""


def example(**features) -> bytes:
    """A serialized `tf.train.Example`: bytes and str values become byte
    features (str as UTF-8), ints int64 features."""
    import tensorflow as tf

    def feature(value):
        if isinstance(value, str):
            value = value.encode()
        if isinstance(value, bytes):
            return tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[value])
            )
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    return tf.train.Example(
        features=tf.train.Features(
            feature={k: feature(v) for k, v in features.items()}
        )
    ).SerializeToString()


def write_records(path, records) -> str:
    """Writes the serialized `records` to the TFRecord file `path`."""
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def write_image_shard(path, records) -> str:
    """A shard of `(encoded image, label, class name or None)` records
    under the keys `image/encoded`, `image/class/label` and, when there
    is a name, `image/class/text`."""
    return write_records(
        path,
        [
            example(
                **{"image/encoded": encoded, "image/class/label": label},
                **({} if text is None else {"image/class/text": text}),
            )
            for encoded, label, text in records
        ],
    )
