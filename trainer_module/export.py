"""SavedModel export: writes the signatures of the serving contract (contract.saved_model,
where each is described) for `model` and the Transform layer.

The SavedModel holds the serving graph and the variables its signatures read, nothing else:
no optimizer slots, EMA copies or seed states (checkpoints keep those for resuming). Its root
is a plain `tf.Module` that tracks the raw `tf.Variable`s, as `keras.export.ExportArchive`
does. Saving the Keras model object itself writes each Keras 3 variable twice into the
MetaGraph: once for the wrapper, which the `saver_def` restore op fills, and once for the
wrapped `tf.Variable`, which the signatures read. TF Serving's C++ loader restores through
`saver_def`, so the variables the signatures read would stay uninitialised there
("Could not find variable …") while Python's object-based loader hides the problem.
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from contract.saved_model import (
    EVALUATE_EXAMPLES_SIGNATURE,
    EXTRA_ASSETS_DIR,
    NO_LABEL_ID,
    PREDICT_FEATURES_SIGNATURE,
    RANKED_CLASS_IDS_OUTPUT,
    RANKED_HITS_OUTPUT,
    RANKED_SCORES_OUTPUT,
    SCORES_OUTPUT,
    SEGMENT_IDS_OUTPUT,
    SEGMENT_RATINGS_OUTPUT,
    SEGMENT_RATINGS_SIGNATURE,
    SEGMENT_SCORES_OUTPUT,
    SEGMENT_START_TIMES_OUTPUT,
    SERIALIZED_EXAMPLES_INPUT,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_SEGMENTS_SIGNATURE,
    TOP_K_CLASS_IDS_OUTPUT,
    TOP_K_LABELS_OUTPUT,
    TOP_K_SCORES_OUTPUT,
    TRANSFORM_FEATURES_SIGNATURE,
    TRUE_CLASS_IDS_OUTPUT,
    UNRATED,
    VIDEO_ID_OUTPUT,
)
from trainer_module.features import LABELS_KEY, NUM_FRAMES_KEY, multi_hot
from trainer_module.reader import model_input_names, parse_examples, parse_segment_ratings
from trainer_module.segments import (
    by_video,
    class_columns,
    score_segments,
    segment_class_ids,
    segment_ratings,
    segment_starts,
)
from trainer_module.training_config import CONFIG_FILENAME, TrainingConfig
from trainer_module.vocabulary import label_names

HISTORY_FILENAME = "training_history.json"
# The root attribute holding the trained model's weights in `model.weights` order: warm
# starts read them by these checkpoint keys (`trained_weights/<i>/.ATTRIBUTES/…`).
TRAINED_WEIGHTS = "trained_weights"
SERIALIZED_EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name=SERIALIZED_EXAMPLES_INPUT)


def export_serving_model(model: keras.Model, config: TrainingConfig, export_dir: str,
                         tft_layer=None, history: dict | None = None) -> None:
    """Writes `model` (and the Transform layer, if any) as a serving-only SavedModel with the
    signatures above, plus its training config and `history` (how training went) in
    assets.extra/."""
    signatures = _signatures(model, config, tft_layer)
    # Warm starts read the trained model's weights; `model` may wrap it (BlendWithNeighbours).
    trained = getattr(model, "trained_model", model)
    trained_weights = [weight.value for weight in trained.weights]
    root = tf.Module()
    setattr(root, TRAINED_WEIGHTS, trained_weights)
    # Everything else the signatures read (neighbour references, Transform tables' state),
    # each variable under one path only.
    tracked = {id(v) for v in trained_weights}
    root.serving_variables = [v for v in signature_variables(signatures.values())
                              if id(v) not in tracked]
    if tft_layer is not None:
        root.tft_layer = tft_layer  # its lookup tables and assets
    tf.saved_model.save(root, export_dir, signatures=signatures)
    extra = os.path.join(export_dir, EXTRA_ASSETS_DIR)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, CONFIG_FILENAME), "w") as f:
        f.write(config.to_json())
    with tf.io.gfile.GFile(os.path.join(extra, HISTORY_FILENAME), "w") as f:
        f.write(json.dumps(history or {}, indent=2, sort_keys=True))


def signature_variables(functions) -> list[tf.Variable]:
    """The variables the concrete `functions` read, each once, in order of first use."""
    seen, variables = set(), []
    for function in functions:
        for variable in function.variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def _signatures(model: keras.Model, config: TrainingConfig, tft_layer) -> dict:
    """Signature name → concrete function, for `model` and the Transform layer."""
    spec = config.feature_spec()
    names = tf.constant(label_names(config.num_classes))

    def parse(examples, with_labels=False, with_ids=False):
        return parse_examples(examples, spec, with_labels, config.max_frames, with_ids)

    def score(features):
        return model({name: features[name] for name in model_input_names(spec)},
                     training=False)

    def predict(features):
        scores = score(features)
        top = tf.math.top_k(scores, k=min(config.top_k, config.num_classes))
        return {SCORES_OUTPUT: scores, TOP_K_CLASS_IDS_OUTPUT: top.indices,
                TOP_K_SCORES_OUTPUT: top.values,
                TOP_K_LABELS_OUTPUT: tf.gather(names, top.indices)}

    def transformed(features):
        # Video-level features go through Transform, as in training; frame-level Transform
        # only derives the label.
        if tft_layer is not None and not spec.is_frame_level:
            return tft_layer(features)
        return features

    @tf.function(input_signature=[SERIALIZED_EXAMPLES_SPEC])
    def serve_examples(examples):
        features = parse(examples, with_ids=True)
        video_ids = features.pop(VIDEO_ID_OUTPUT)
        return {**predict(transformed(features)), VIDEO_ID_OUTPUT: video_ids}

    @tf.function(input_signature=[SERIALIZED_EXAMPLES_SPEC])
    def evaluate_examples(examples):
        features = parse(examples, with_labels=True)
        labels = multi_hot(features.pop(LABELS_KEY), config.num_classes)
        return ranked_against_labels(score(transformed(features)), labels, config.top_k)

    signatures = {SERVING_DEFAULT_SIGNATURE: serve_examples.get_concrete_function(),
                  EVALUATE_EXAMPLES_SIGNATURE: evaluate_examples.get_concrete_function()}
    if not spec.is_frame_level:
        @tf.function(input_signature=[
            tf.TensorSpec([None, size], tf.float32, name=name) for name, size in spec.items()])
        def predict_features(*features):
            return predict(dict(zip(spec.names, features, strict=True)))

        signatures[PREDICT_FEATURES_SIGNATURE] = predict_features.get_concrete_function()
    if tft_layer is not None:
        @tf.function(input_signature=[SERIALIZED_EXAMPLES_SPEC])
        def transform_features(examples):
            raw = parse(examples, with_labels=True)
            if spec.is_frame_level:
                # Frame-level Transform only derives the label from the context's `labels`.
                raw = {LABELS_KEY: raw[LABELS_KEY]}
            return tft_layer(raw)

        signatures[TRANSFORM_FEATURES_SIGNATURE] = (
            transform_features.get_concrete_function())
    if spec.is_frame_level and config.num_classes > max(segment_class_ids()):
        signatures.update(_segment_signatures(model, config))
    return signatures


def ranked_against_labels(scores: tf.Tensor, labels: tf.Tensor, top_k: int) -> dict:
    """`evaluate_examples`' outputs for `scores` and multi-hot `labels` [batch, classes]: the
    top max(top_k, most labels of a video) classes, whether each is a label, and the labels."""
    num_labels = tf.cast(tf.reduce_sum(labels, axis=1), tf.int32)
    depth = tf.minimum(tf.maximum(top_k, tf.reduce_max(num_labels)),
                       tf.shape(scores)[1])
    ranked = tf.math.top_k(scores, k=depth)
    label_positions = tf.where(labels > 0)  # row by row, classes ascending
    label_ids = tf.RaggedTensor.from_value_rowids(
        tf.cast(label_positions[:, 1], tf.int32), label_positions[:, 0],
        nrows=tf.shape(labels, out_type=tf.int64)[0])
    return {RANKED_CLASS_IDS_OUTPUT: ranked.indices, RANKED_SCORES_OUTPUT: ranked.values,
            RANKED_HITS_OUTPUT: tf.gather(labels, ranked.indices, batch_dims=1) > 0,
            TRUE_CLASS_IDS_OUTPUT: label_ids.to_tensor(default_value=NO_LABEL_ID)}


def _segment_signatures(model: keras.Model, config: TrainingConfig) -> dict:
    """`serving_segments` and `segment_ratings` (see the module docstring)."""
    spec, size = config.feature_spec(), config.segment_size
    columns = class_columns(config.num_classes)

    def segments_of(examples):
        parsed = parse_examples(examples, spec, max_frames=config.max_frames, with_ids=True)
        scored = score_segments(lambda inputs: model(inputs, training=False), parsed, spec,
                                parsed[VIDEO_ID_OUTPUT], size, columns)
        return parsed, scored

    def lay_out(scored, values, fill, num_videos):
        return by_video(values, scored["video_row"], scored[SEGMENT_START_TIMES_OUTPUT],
                        num_videos, size, fill)

    @tf.function(input_signature=[SERIALIZED_EXAMPLES_SPEC])
    def serve_segments(examples):
        parsed, scored = segments_of(examples)
        videos = tf.size(examples)
        return {VIDEO_ID_OUTPUT: parsed[VIDEO_ID_OUTPUT],
                SEGMENT_IDS_OUTPUT: lay_out(scored, scored[SEGMENT_IDS_OUTPUT], "", videos),
                SEGMENT_START_TIMES_OUTPUT: lay_out(
                    scored, scored[SEGMENT_START_TIMES_OUTPUT], -1, videos),
                SEGMENT_SCORES_OUTPUT: lay_out(scored, scored[SEGMENT_SCORES_OUTPUT], 0,
                                               videos)}

    @tf.function(input_signature=[SERIALIZED_EXAMPLES_SPEC])
    def rate_segments(examples):
        parsed = parse_segment_ratings(examples, spec, config.max_frames)
        keys = segment_starts(parsed[NUM_FRAMES_KEY], size)
        ratings = segment_ratings(parsed, *keys, columns)
        return {SEGMENT_RATINGS_OUTPUT: by_video(ratings, *keys, tf.size(examples), size,
                                                 UNRATED)}

    return {SERVING_SEGMENTS_SIGNATURE: serve_segments.get_concrete_function(),
            SEGMENT_RATINGS_SIGNATURE: rate_segments.get_concrete_function()}


def load_training_config(model_dir: str) -> TrainingConfig:
    """The TrainingConfig an exported model was trained with (assets.extra/)."""
    path = os.path.join(model_dir, EXTRA_ASSETS_DIR, CONFIG_FILENAME)
    if not os.path.exists(path):
        raise ValueError(f"{model_dir} was not exported by this project (no {path})")
    with open(path) as f:
        return TrainingConfig.from_dict(json.load(f))
