"""Hyperparameter search for TFX's Tuner component (opt-in: `make run-local ARGS=--tune`).

`tuner_fn` runs a keras-tuner random search minimising the validation loss (with
`--segment_labels`, the masked loss of the rated validation segments); the Trainer then
trains with the best values (`TrainingConfig.with_values`), which are recorded in the model's
training config.
"""

from __future__ import annotations

import dataclasses

import keras_tuner

from trainer_module.models import declared_hyperparameters
from trainer_module.reader import make_dataset
from trainer_module.train import compile_model, make_datasets
from trainer_module.training_config import TrainingConfig


def search_space(config: TrainingConfig) -> dict[str, tuple]:
    """The Tuner's choices, by flag name: each training setting and each hyperparameter of
    the model (with its chosen classifier) declared with `search` choices."""
    declared = [*dataclasses.fields(TrainingConfig),
                *declared_hyperparameters(config.model, config.model_hparams).values()]
    return {field.name: field.metadata["search"] for field in declared
            if field.metadata["search"]}


def define_search_space(hp: keras_tuner.HyperParameters, config: TrainingConfig) -> None:
    """Declares `search_space(config)` to keras-tuner, each as a choice."""
    for name, values in search_space(config).items():
        hp.Choice(name, list(values))


def tuner_fn(fn_args):
    """Entry point of the TFX Tuner (`tuner_fn='trainer_module.tuning.tuner_fn'`)."""
    from tfx.components.tuner.component import TunerFnResult

    config = TrainingConfig.from_dict(fn_args.custom_config["training"])
    max_trials = int(fn_args.custom_config["tuning"]["max_trials"])  # the pipeline's --tune

    def build(hp: keras_tuner.HyperParameters):
        define_search_space(hp, config)
        return compile_model(config.with_values(hp.values))

    hyperparameters = keras_tuner.HyperParameters()
    define_search_space(hyperparameters, config)
    tuner = keras_tuner.RandomSearch(
        build, objective="val_loss", max_trials=max_trials, hyperparameters=hyperparameters,
        directory=fn_args.working_dir, project_name="yt8m", seed=config.seed)
    train, validate = make_datasets(config, fn_args.train_files, fn_args.eval_files)
    if config.segment_labels:  # the loss needs labels: the rated validation segments
        validate = make_dataset(fn_args.eval_files, config.feature_spec(), config.num_classes,
                                config.batch_size, max_frames=config.max_frames,
                                segment_size=config.segment_size)
    return TunerFnResult(tuner=tuner, fit_kwargs={
        "x": train, "validation_data": validate, "steps_per_epoch": fn_args.train_steps,
        "validation_steps": fn_args.eval_steps or None, "epochs": 1, "verbose": 2,
        "shuffle": False})  # the reader shuffles
