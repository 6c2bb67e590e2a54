"""Helpers that write small YouTube-8M-shaped TFRecords for tests."""

from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from contract.saved_model import SCORES_OUTPUT, TOP_K_CLASS_IDS_OUTPUT, TOP_K_SCORES_OUTPUT
from serving.session_model import SessionModel
from trainer_module.export import signature_variables

# The C++ session runs each signature as one graph, optimised as a whole by Grappler, so
# float outputs may differ from the Python call in the last bits once the input
# normalisation's multiplications meet batch normalisation's (measured: up to 6 units in the
# last place, 4e-7 relative, through MlpMoeModel's layers). Class ids may then swap where
# scores tie within that, and the labels with them.
FLOAT_RTOL, FLOAT_ATOL = 1e-5, 1e-7


def write_video_examples(path: str, rows: list[dict], compression: str = "") -> None:
    """Writes video-level tf.Examples; each row maps feature name → list of values."""
    options = tf.io.TFRecordOptions(compression_type=compression)
    with tf.io.TFRecordWriter(path, options) as writer:
        for row in rows:
            feature = {}
            for name, values in row.items():
                if name in ("id", "video_id"):
                    feature[name] = tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[values.encode()]))
                elif name == "labels":
                    feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                else:
                    feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
            writer.write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())


def random_rows(n: int, seed: int = 0, num_classes: int = 3862) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"id": f"v{i:03d}",
             "labels": sorted(rng.choice(num_classes, size=rng.integers(1, 4), replace=False)),
             "mean_rgb": rng.uniform(-2, 2, 1024).astype(np.float32).tolist(),
             "mean_audio": rng.uniform(-2, 2, 128).astype(np.float32).tolist()}
            for i in range(n)]


def write_frame_examples(path: str, rows: list[dict], seed: int = 0, min_frames: int = 5,
                         max_frames: int = 30) -> None:
    """Writes frame-level SequenceExamples derived from video-level rows."""
    from trainer_module.frames import sequence_example_from_video

    video_path = path + ".video"
    write_video_examples(video_path, rows)
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(path) as writer:
        for record in tf.data.TFRecordDataset(video_path):
            video = tf.train.Example.FromString(record.numpy())
            writer.write(sequence_example_from_video(
                video, rng, min_frames, max_frames).SerializeToString())
    tf.io.gfile.remove(video_path)


def assert_runs_in_tf_servings_loader(model_dir: str, loaded, serialized: list[bytes]):
    """Every signature gives the Python call's outputs when run as TF Serving runs it: floats
    within FLOAT_RTOL, top-k classes the same or tied within it, everything else equal."""
    session_model = SessionModel(model_dir)
    try:
        assert set(session_model.signature_defs) - {"__saved_model_init_op"} == set(
            loaded.signatures)
        for name, function in loaded.signatures.items():
            inputs = ({"examples": np.array(serialized, dtype=object)}
                      if name != "predict_features" else
                      {key: np.ones([3, spec.shape[1]], np.float32) for key, spec in
                       function.structured_input_signature[1].items()})
            by_python = function(**{key: tf.constant(value) for key, value in inputs.items()})
            by_session = session_model.run(name, inputs)
            assert set(by_session) == set(by_python)
            by_python = {output: value.numpy() for output, value in by_python.items()}
            _assert_same_outputs(by_session, by_python)
    finally:
        session_model.close()


def _assert_same_outputs(by_session: dict[str, np.ndarray], by_python: dict[str, np.ndarray]):
    same_classes = None
    if TOP_K_CLASS_IDS_OUTPUT in by_python:
        ids = by_session[TOP_K_CLASS_IDS_OUTPUT]
        # The session's top classes score, in the Python call, what its top scores are.
        np.testing.assert_allclose(
            np.take_along_axis(by_python[SCORES_OUTPUT], ids.astype(np.int64), axis=1),
            by_python[TOP_K_SCORES_OUTPUT], FLOAT_RTOL, FLOAT_ATOL)
        same_classes = ids == by_python[TOP_K_CLASS_IDS_OUTPUT]
    for output, value in by_python.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(by_session[output], value, FLOAT_RTOL, FLOAT_ATOL,
                                       err_msg=output)
        elif same_classes is not None and output.startswith("top_k_"):  # ids and labels
            np.testing.assert_array_equal(by_session[output][same_classes],
                                          value[same_classes], err_msg=output)
        else:
            np.testing.assert_array_equal(by_session[output], value, err_msg=output)


def assert_variables_are_what_the_signatures_read(model_dir: str, loaded):
    """No optimizer slots, EMA copies or other training state in the SavedModel."""
    read = signature_variables(loaded.signatures.values())
    read_bytes = sum(v.shape.num_elements() * v.dtype.size for v in read)
    variables = os.path.join(model_dir, "variables")
    stored_bytes = sum(os.path.getsize(os.path.join(variables, f)) for f in os.listdir(variables))
    assert read_bytes <= stored_bytes <= 1.05 * read_bytes, (stored_bytes, read_bytes)


def saved_model_cli_outputs(model_dir: str, records: list[bytes], workdir: str,
                            signature: str = "serving_default") -> dict[str, np.ndarray]:
    """`saved_model_cli run` on serialized `records`: TF Serving's loading path (C++ loader,
    `saver_def` restore, SignatureDef run by tensor name), as a separate process."""
    import subprocess
    import sys

    inputs, outdir = _saved_inputs(records, workdir), os.path.join(workdir, "outputs")
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    subprocess.run([cli, "run", "--dir", model_dir, "--tag_set", "serve", "--signature_def",
                    signature, "--inputs", f"examples={inputs}", "--outdir", outdir],
                   check=True, capture_output=True)
    return _saved_outputs(outdir)


# What `saved_model_cli run --dir D --tag_set serve --signature_def S --inputs examples=F
# --outdir O` runs once its flags are parsed (tensorflow/python/tools/saved_model_cli.py,
# `run`), here for several models in one process: TensorFlow is imported once.
_SAVED_MODEL_CLI_RUNS = """
import json, sys
from tensorflow.python.tools import saved_model_cli
for model_dir, signature, inputs, outdir in json.loads(sys.argv[1]):
    saved_model_cli.run_saved_model_with_feed_dict(
        model_dir, "serve", signature,
        saved_model_cli.load_inputs_from_input_arg_string(f"examples={inputs}", "", ""),
        outdir, False)
"""


def saved_model_cli_outputs_of_many(model_dirs: list[str], records: list[bytes], workdir: str,
                                    signature: str = "serving_default"
                                    ) -> list[dict[str, np.ndarray]]:
    """What `saved_model_cli run` gives on serialized `records` for each model of
    `model_dirs` (its own run function after its flag parsing), in one process apart from
    this one."""
    import json
    import subprocess
    import sys

    inputs = _saved_inputs(records, workdir)
    outdirs = [os.path.join(workdir, f"outputs{i}") for i in range(len(model_dirs))]
    runs = [(model_dir, signature, inputs, outdir)
            for model_dir, outdir in zip(model_dirs, outdirs, strict=True)]
    subprocess.run([sys.executable, "-c", _SAVED_MODEL_CLI_RUNS, json.dumps(runs)],
                   check=True, capture_output=True)
    return [_saved_outputs(outdir) for outdir in outdirs]


def _saved_inputs(records: list[bytes], workdir: str) -> str:
    """`records` saved where `saved_model_cli --inputs` reads them."""
    path = os.path.join(workdir, "examples.npy")
    np.save(path, np.array(records, dtype=object), allow_pickle=True)
    return path


def _saved_outputs(outdir: str) -> dict[str, np.ndarray]:
    """The outputs `saved_model_cli --outdir` wrote, by output name."""
    return {name[:-len(".npy")]: np.load(os.path.join(outdir, name), allow_pickle=True)
            for name in os.listdir(outdir)}


def save_tf1_model(path: str, session, signatures: dict) -> None:
    """Saves `session`'s graph and variables as a SavedModel tagged `serve` with TF1
    SignatureDefs, as TF Serving's own test models are built."""
    session.run(tf.compat.v1.global_variables_initializer())
    builder = tf.compat.v1.saved_model.Builder(path)
    builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=signatures)
    builder.save()


def rest_client(name: str, base: str, **server_options):
    """A WSGI test client of the local REST server serving the versions under `base`."""
    from werkzeug.test import Client

    from serving.registry import ModelRegistry
    from serving.server import create_app

    registry = ModelRegistry(name, base)
    registry.refresh()
    return Client(create_app(registry, **server_options))


def post(client, path: str, body) -> tuple[int, str]:
    """POSTs `body` (JSON-encoded unless already text or bytes); the status and text."""
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = client.post(path, data=data, content_type="application/json")
    return response.status_code, response.get_data(as_text=True)
