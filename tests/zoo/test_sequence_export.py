"""Serving the sequence zoo: SavedModels with dynamic batch and length,
reloaded in a process that never imports this project; TFLite parity."""

import json
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasblocks as kb
import zoo
from tests.tools._cli import run_python

SEQUENCE_MODELS = [
    n for n in zoo.list_models() if zoo.get_model_entry(n).task == "sequence"
]


def _small(name):
    entry = zoo.get_model_entry(name)
    keras.utils.set_random_seed(0)
    model = zoo.create_model(name, **entry.test_overrides)
    return model, [
        np.asarray(t) for t in tf.nest.flatten(entry.test_inputs(model))
    ]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequence_exports")
    cases = {}
    for name in SEQUENCE_MODELS:
        model, inputs = _small(name)
        # The registered batch, and a shorter batch of one.
        batches = [inputs, [x[:1, :3] for x in inputs]]
        names = [t.name.split(":")[0] for t in model.inputs]
        expected = [
            model(b if len(b) > 1 else b[0], training=False).numpy()
            for b in batches
        ]
        kb.io.export_saved_model(model, root / name)
        arrays = {}
        for i, batch in enumerate(batches):
            for input_name, x in zip(names, batch, strict=True):
                arrays[f"{i}/{input_name}"] = x
            arrays[f"{i}/expected"] = expected[i]
        np.savez(root / f"{name}.npz", **arrays)
        cases[name] = {
            "inputs": names,
            "output": model.output_names[0],
            "model": model,
        }
    return root, cases


def test_signatures_take_dynamic_batch_and_length(exported):
    root, cases = exported
    for name in ("transformer", "rnn_lm"):
        serve = tf.saved_model.load(str(root / name)).signatures[
            "serving_default"
        ]
        specs = serve.structured_input_signature[1]
        assert sorted(specs) == sorted(cases[name]["inputs"])
        for spec in specs.values():
            assert spec.shape.as_list() == [None, None]
            assert spec.dtype == tf.int32
        assert list(serve.structured_outputs) == [cases[name]["output"]]


def test_a_plain_tensorflow_process_serves_every_model(exported):
    root, cases = exported
    plan = {
        name: {"inputs": case["inputs"], "output": case["output"]}
        for name, case in cases.items()
    }
    script = textwrap.dedent(
        f"""
        import json, sys, numpy as np, tensorflow as tf
        root, plan = {str(root)!r}, json.loads({json.dumps(plan)!r})
        report = {{}}
        for name, case in plan.items():
            serve = tf.saved_model.load(root + "/" + name).signatures[
                "serving_default"]
            data = np.load(root + "/" + name + ".npz")
            errors = []
            for i in (0, 1):
                feed = {{k: tf.constant(data[f"{{i}}/{{k}}"])
                        for k in case["inputs"]}}
                out = serve(**feed)[case["output"]].numpy()
                error = np.abs(out - data[f"{{i}}/expected"])
                errors.append(float(np.max(error)))
            try:
                bad = {{k: tf.constant(data[f"0/{{k}}"]) + 1000
                       for k in case["inputs"]}}
                serve(**bad)
                errors.append("no error for bad ids")
            except tf.errors.InvalidArgumentError as error:
                errors.append("token ids must be in" in str(error))
            report[name] = errors
        ours = ("kerasblocks", "zoo")
        report["imported"] = [m for m in sys.modules if m.split(".")[0] in ours]
        print(json.dumps(report))
        """
    )
    done = run_python(
        "-c", script, timeout=600, cwd=str(root), env={"PYTHONPATH": ""}
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report.pop("imported") == []
    assert sorted(report) == sorted(SEQUENCE_MODELS)
    for name, (full, short, rejected) in report.items():
        assert full <= 1e-5 and short <= 1e-5, (name, full, short)
        assert rejected is True, name


def test_saved_model_reloads_as_the_keras_model(exported):
    root, cases = exported
    model = cases["seq2seq_attention"]["model"]
    restored = kb.io.load_model(root / "seq2seq_attention")
    assert type(restored) is type(model)
    data = np.load(root / "seq2seq_attention.npz")
    inputs = [data[f"0/{k}"] for k in cases["seq2seq_attention"]["inputs"]]
    np.testing.assert_allclose(restored(inputs), data["0/expected"], atol=1e-6)
    np.testing.assert_array_equal(
        zoo.generate(restored, inputs[0], 3), zoo.generate(model, inputs[0], 3)
    )


def test_tflite_classifier_matches_keras(tmp_path):
    model, (ids,) = _small("transformer_encoder_classifier")
    path = tmp_path / "classifier.tflite"
    kb.io.export_tflite(model, path)
    for batch in (ids, ids[:1, :3], np.resize(ids, (5, 9))):
        out = kb.io.run_tflite(path, batch.astype(np.int32))
        np.testing.assert_allclose(out, model(batch), atol=1e-5)
