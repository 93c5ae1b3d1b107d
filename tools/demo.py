"""A short end-to-end demo: build, train on the bundled digits, save, reload.

Runs offline in well under a minute on 2 CPU cores:

    python -m tools.demo --steps=300 --out_dir=runs/demo
"""

from __future__ import annotations

import os

from absl import flags

from tools import _common

FLAGS = flags.FLAGS
flags.DEFINE_integer(
    "steps", 300, "Training steps (batches of 64).", lower_bound=1
)
flags.DEFINE_string("out_dir", "runs/demo", "Where the model is saved.")
flags.DEFINE_integer("seed", 0, "Seed for data order and initial weights.")


def run_demo(steps: int, out_dir: str, seed: int = 0) -> dict:
    """Trains kerasblocks' MLP on the digits data set; returns figures."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    import kerasblocks as kb

    if steps <= 0:
        raise ValueError(f"steps must be positive. Received: {steps=}")
    keras.utils.set_random_seed(seed)
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int32")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.8 * len(x))
    net = kb.layers.MLP(hidden_units=128, units=10)
    net.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    batch = 64
    epochs = max(1, round(steps * batch / split))
    net.fit(x[:split], y[:split], batch_size=batch, epochs=epochs, verbose=2)
    _, accuracy = net.evaluate(x[split:], y[split:], verbose=0)
    path = os.path.join(out_dir, "mlp.keras")
    kb.io.save_model(net, path)
    restored = kb.io.load_model(path)
    same = bool(
        np.allclose(
            restored.predict(x[split:], verbose=0),
            net.predict(x[split:], verbose=0),
            atol=1e-6,
        )
    )
    print(kb.params.parameter_table(net))
    print(
        f"validation accuracy {accuracy:.3f}; saved {path}; "
        f"reloaded outputs equal: {same}"
    )
    return {"accuracy": float(accuracy), "path": path, "reload_equal": same}


def main(argv):
    def demo() -> int:
        run_demo(FLAGS.steps, FLAGS.out_dir, FLAGS.seed)
        return 0

    return _common.run_main("kb-demo", demo, argv=argv)


def run():
    _common.run_app(main, "kb-demo", __name__)


if __name__ == "__main__":
    run()
