"""SavedModel export: the serving contract shared by TFMA, batch inference and TF Serving.

Signatures (all return `scores` [batch, num_classes] and the top `top_k` classes as
`top_k_class_ids`, `top_k_scores` and `top_k_labels`, their names in the vocabulary):
- `serving_default`: `examples`, a batch of serialized tf.Examples (video level) or
  tf.SequenceExamples (frame level); b64 in REST requests. Also returns `video_id`, each
  example's 2018 `id` or 2017 `video_id` ("" if it has neither).
- `predict_features`: video level only, the raw float features by name (JSON-friendly).
- `transform_features`: serialized examples → Transform outputs incl. the multi-hot label
  (the Evaluator's preprocessing function; present when a Transform graph is given).
"""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from trainer_module.config import CONFIG_FILENAME, TrainingConfig
from trainer_module.features import LABELS_KEY, VIDEO_ID_OUTPUT
from trainer_module.reader import model_input_names, parse_examples
from trainer_module.vocabulary import label_names

# TF Serving ignores assets.extra/, so metadata written there travels with the model safely.
EXTRA_ASSETS_DIR = "assets.extra"
HISTORY_FILENAME = "training_history.json"


def export_serving_model(model: keras.Model, config: TrainingConfig, export_dir: str,
                         tft_layer=None, history: dict | None = None) -> None:
    """Writes `model` (and the Transform layer, if any) as a SavedModel with the signatures
    above, plus its training config and `history` (how training went) in assets.extra/."""
    spec = config.feature_spec()
    module = tf.Module()
    # Warm starts read the trained model's weights from `model`; `scorer` may wrap it
    # (BlendWithNeighbours).
    module.model = getattr(model, "trained_model", model)
    module.scorer = model
    module.tft_layer = tft_layer

    module.label_names = tf.constant(label_names(config.num_classes))

    def parse(examples, with_labels=False, with_ids=False):
        return parse_examples(examples, spec, with_labels, config.max_frames, with_ids)

    def predict(features):
        inputs = {name: features[name] for name in model_input_names(spec)}
        scores = module.scorer(inputs, training=False)
        top = tf.math.top_k(scores, k=min(config.top_k, config.num_classes))
        return {"scores": scores, "top_k_class_ids": top.indices, "top_k_scores": top.values,
                "top_k_labels": tf.gather(module.label_names, top.indices)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve_examples(examples):
        features = parse(examples, with_ids=True)
        video_ids = features.pop(VIDEO_ID_OUTPUT)
        if module.tft_layer is not None and not spec.is_frame_level:
            # Video-level features go through Transform, as in training; frame-level
            # Transform only derives the label.
            features = module.tft_layer(features)
        return {**predict(features), VIDEO_ID_OUTPUT: video_ids}

    module.serve_examples = serve_examples
    signatures = {"serving_default": serve_examples.get_concrete_function()}
    if not spec.is_frame_level:
        @tf.function(input_signature=[
            tf.TensorSpec([None, size], tf.float32, name=name) for name, size in spec.items()])
        def predict_features(*features):
            return predict(dict(zip(spec.names, features, strict=True)))

        module.predict_features = predict_features
        signatures["predict_features"] = predict_features.get_concrete_function()
    if tft_layer is not None:
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def transform_features(examples):
            raw = parse(examples, with_labels=True)
            if spec.is_frame_level:
                # Frame-level Transform only derives the label from the context's `labels`.
                raw = {LABELS_KEY: raw[LABELS_KEY]}
            return module.tft_layer(raw)

        module.transform_features = transform_features
        signatures["transform_features"] = transform_features.get_concrete_function()

    tf.saved_model.save(module, export_dir, signatures=signatures)
    extra = os.path.join(export_dir, EXTRA_ASSETS_DIR)
    tf.io.gfile.makedirs(extra)
    with tf.io.gfile.GFile(os.path.join(extra, CONFIG_FILENAME), "w") as f:
        f.write(config.to_json())
    with tf.io.gfile.GFile(os.path.join(extra, HISTORY_FILENAME), "w") as f:
        f.write(json.dumps(history or {}, indent=2, sort_keys=True))
