"""Training: the TFX Trainer's `run_fn` and the plain-Python `train_and_export` it wraps."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from contract.saved_model import (
    SEGMENT_IDS_OUTPUT,
    SEGMENT_SCORES_OUTPUT,
    SEGMENT_START_TIMES_OUTPUT,
    VIDEO_ID_OUTPUT,
    is_saved_model,
)
from trainer_module import checkpoints, distribution
from trainer_module.export import export_serving_model
from trainer_module.losses import get_loss
from trainer_module.metrics import EvaluationMetrics
from trainer_module.models import build_model, mixed_precision_policy, model_hyperparameters
from trainer_module.neighbours import blend_with_neighbours
from trainer_module.optimizers import ClippedAdam
from trainer_module.reader import make_dataset, segment_video_batches
from trainer_module.segment_metrics import SegmentRanking
from trainer_module.segments import class_columns, score_segments, segment_ratings
from trainer_module.training_config import TrainingConfig
from trainer_module.validation import KeepBestOnValidation

log = logging.getLogger(__name__)


def make_optimizer(config: TrainingConfig) -> keras.optimizers.Optimizer:
    """Adam with the starter code's staircase decay per `learning_rate_decay_examples`,
    per-variable gradient-norm clipping (after the replicas' gradients are summed) and, with
    `ema_momentum`, a moving average of the weights, which the model takes when training
    ends."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.base_learning_rate,
        decay_steps=max(1, config.learning_rate_decay_examples // config.batch_size),
        decay_rate=config.learning_rate_decay,
        staircase=True,
    )
    moving_average = {}
    if config.ema_momentum:
        moving_average = {"use_ema": True, "ema_momentum": config.ema_momentum}
    return ClippedAdam(clip_gradient_norm=config.clip_gradient_norm, learning_rate=schedule,
                       **moving_average)


def build_configured_model(config: TrainingConfig) -> keras.Model:
    """The model `config` trains: `config.model` with its hyperparameters, the L2 penalty
    (the given one, else the model's own default) scaled by `regularization_penalty`, as the
    starter code scales every regularisation loss. Raises ValueError as `build_model` does."""
    hparams = dict(config.model_hparams)
    resolved = model_hyperparameters(config.model, hparams)
    if "l2_penalty" in resolved:
        hparams["l2_penalty"] = resolved["l2_penalty"] * config.regularization_penalty
    with mixed_precision_policy(config.mixed_precision):
        return build_model(config.model, config.feature_spec(), config.num_classes, hparams)


def uses_xla(config: TrainingConfig) -> bool:
    """Whether the training step is XLA-compiled: with `--jit_compile`, for video-level
    models on one device. A frame-level batch is padded to its longest video, so XLA would
    compile the step again for each length; under tf.distribute Keras' own "auto" leaves XLA
    off too (keras/src/trainers/trainer.py, `_resolve_auto_jit_compile`)."""
    return (config.jit_compile and not config.feature_spec().is_frame_level
            and config.distribution == "none")


def compile_model(config: TrainingConfig) -> keras.Model:
    """The model named by `config.model`, compiled with its loss and optimizer."""
    model = build_configured_model(config)
    loss = get_loss(config.label_loss, config.label_smoothing, masked=config.segment_labels)
    model.compile(optimizer=make_optimizer(config), loss=loss, jit_compile=uses_xla(config))
    return model


def evaluate_model(model: keras.Model, dataset: tf.data.Dataset, config: TrainingConfig,
                   max_batches: int | None = None) -> dict[str, float]:
    """GAP/mAP/Hit@1/PERR of `model` on `(features, labels)` batches; with
    `config.segment_labels`, segment MAP on batches of parsed segment-rated videos."""
    if config.segment_labels:
        return evaluate_segments(model, dataset, config, max_batches)
    metrics = EvaluationMetrics(config.num_classes, config.top_k)
    for features, labels in dataset.take(max_batches or -1):
        metrics.add(model(features, training=False).numpy(), labels.numpy())
    return metrics.result()


def evaluate_segments(model: keras.Model, videos: tf.data.Dataset, config: TrainingConfig,
                      max_batches: int | None = None) -> dict[str, float]:
    """Segment MAP@segment_max_pred of `model` over every segment of the `videos` (batches
    of parsed segment-rated videos, `segment_video_batches`), as the Evaluator computes it."""
    spec, columns = config.feature_spec(), class_columns(config.num_classes)
    ranking = SegmentRanking(columns, config.segment_max_pred)
    for parsed in videos.take(max_batches or -1):
        scored = score_segments(lambda inputs: model(inputs, training=False), parsed, spec,
                                parsed[VIDEO_ID_OUTPUT], config.segment_size, columns)
        ratings = segment_ratings(parsed, scored["video_row"],
                                  scored[SEGMENT_START_TIMES_OUTPUT], columns)
        ranking.add(scored[SEGMENT_IDS_OUTPUT].numpy(), scored[SEGMENT_SCORES_OUTPUT].numpy(),
                    ratings.numpy())
    return ranking.result()


def make_datasets(config: TrainingConfig, train_files: list[str], eval_files: list[str]
                  ) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training batches (shuffled, repeated) and the validation batches (one pass)."""
    spec = config.feature_spec()
    train = make_dataset(train_files, spec, config.num_classes, config.batch_size,
                         shuffle=True, num_epochs=None, seed=config.seed,
                         max_frames=config.max_frames,
                         segment_size=config.segment_size if config.segment_labels else None)
    if config.segment_labels:
        return train, segment_video_batches(eval_files, spec, config.batch_size,
                                            config.max_frames)
    validate = make_dataset(eval_files, spec, config.num_classes, config.batch_size,
                            max_frames=config.max_frames)
    return train, validate


def train_and_export(config: TrainingConfig, train_files: list[str], eval_files: list[str],
                     train_steps: int, export_dir: str, log_dir: str,
                     eval_steps: int | None = None, tft_layer=None,
                     warm_start_from: str | None = None,
                     extra_callbacks: list[keras.callbacks.Callback] | None = None
                     ) -> dict[str, float]:
    """Trains up to `train_steps` batches, evaluates on `eval_files`, exports a SavedModel.

    With `config.train_dir`, training resumes from its latest checkpoint (the steps already
    done count towards `train_steps`); otherwise, with `config.warm_start_from` or else
    `warm_start_from` (the served model; exported models of the same architecture),
    training starts from its weights.
    `extra_callbacks` (e.g. a benchmark's step timer) join the training callbacks.
    Returns the validation metrics, which are also written to TensorBoard under `log_dir`.
    Under `multi_worker_mirrored` every worker runs this; only the chief evaluates and
    exports (the others return {}).
    """
    config = distribution.with_starter_towers(config)
    strategy = distribution.distribution_strategy(config.distribution, config.require_gpus,
                                                  config.num_gpu)
    print(distribution.describe_devices(strategy, config.distribution), flush=True)
    is_chief, task_id = distribution.worker_role(strategy)
    warm_start_from = config.warm_start_from or warm_start_from
    keras.utils.set_random_seed(config.seed)
    train_ds, eval_ds = make_datasets(config, train_files, eval_files)

    # Every worker takes part in each step and checkpoint save (their collectives); the
    # others write what only the chief keeps into a folder of their own, removed at the end.
    scratch = None if is_chief else tempfile.mkdtemp(prefix=f"worker{task_id}_")
    try:
        callbacks = [keras.callbacks.TensorBoard(log_dir=log_dir if is_chief else scratch,
                                                 update_freq=10),
                     *(extra_callbacks or [])]
        initial_step = 0
        # Variables (model, optimizer slots restored from a checkpoint) belong to the strategy.
        with strategy.scope():
            model = compile_model(config)
            if config.train_dir:
                manager, initial_step = checkpoints.restore_or_start(
                    model, config, write_dir=None if is_chief else scratch)
                callbacks.append(checkpoints.SaveCheckpoints(manager, initial_step,
                                                             config.checkpoint_steps))
            if initial_step == 0 and warm_start_from:
                checkpoints.warm_start(model, warm_start_from)
        validation = None
        if config.eval_every_steps > 0:
            validation = KeepBestOnValidation(
                lambda: evaluate_model(model, eval_ds, config, eval_steps), config.eval_every_steps,
                config.early_stopping_patience, initial_step,
                metric="segment_map" if config.segment_labels else "gap")
            callbacks.append(validation)
        if initial_step < train_steps:
            distribution.fit(model, train_ds, train_steps - initial_step, callbacks, strategy)
        else:
            log.warning("the checkpoint in %s is at step %d >= train_steps %d: nothing to train "
                        "(pass --start_new_model to train a new model)",
                        config.train_dir, initial_step, train_steps)
    finally:  # also when training fails
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if scratch:
        return {}  # the chief evaluates and exports the model
    if strategy.num_replicas_in_sync > 1:
        model = _without_strategy(model, config)
    if config.neighbour_weight:
        model = blend_with_neighbours(model, train_files, config)
    metrics = evaluate_model(model, eval_ds, config, eval_steps)
    log.debug("validation metrics after %d steps: %s", train_steps, metrics)
    with tf.summary.create_file_writer(os.path.join(log_dir, "validation")).as_default():
        for name, value in metrics.items():
            tf.summary.scalar(name, value, step=train_steps)

    history = {"resumed_from_step": initial_step, "replicas": strategy.num_replicas_in_sync,
               "final_step": max(initial_step, train_steps),
               "warm_started_from": warm_start_from if initial_step == 0 else None}
    if validation is not None and validation.gap_by_step:
        history.update(final_step=validation.step, best_step=validation.best_step,
                       validation_gap_by_step=validation.gap_by_step)
    export_serving_model(model, config, export_dir, tft_layer, history)
    return metrics


def _without_strategy(model: keras.Model, config: TrainingConfig) -> keras.Model:
    """The same model with its trained weights in plain variables, so that the export (and
    what evaluates it) is the one-process model, whatever strategy trained it."""
    plain = build_configured_model(config)
    plain.set_weights(model.get_weights())
    return plain


def run_fn(fn_args) -> None:
    """Entry point of the TFX Trainer (`run_fn='trainer_module.train.run_fn'`)."""
    import tensorflow_transform as tft

    config = TrainingConfig.from_dict(fn_args.custom_config["training"])
    # Before TensorFlow runs anything; stops here if the pod sees fewer GPUs than asked for.
    distribution.distribution_strategy(config.distribution, config.require_gpus, config.num_gpu)
    if fn_args.hyperparameters:  # the Tuner's best values (recorded with the model)
        import keras_tuner

        best = keras_tuner.HyperParameters.from_config(fn_args.hyperparameters)
        config = config.with_values(best.values)
    tft_layer = None
    if fn_args.transform_output:
        tft_layer = tft.TFTransformOutput(fn_args.transform_output).transform_features_layer()
    train_and_export(
        config,
        train_files=fn_args.train_files,
        eval_files=fn_args.eval_files,
        train_steps=fn_args.train_steps,
        eval_steps=fn_args.eval_steps or None,
        export_dir=fn_args.serving_model_dir,
        log_dir=fn_args.model_run_dir,
        tft_layer=tft_layer,
        # The model in production, if one was pushed yet (its folder is empty otherwise).
        warm_start_from=fn_args.base_model if fn_args.base_model and is_saved_model(
            fn_args.base_model) else None,
    )
