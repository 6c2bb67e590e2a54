"""Hyperparameter search for TFX's Tuner component (opt-in: `make run-local ARGS=--tune`).

`tuner_fn` runs a keras-tuner random search minimising the validation loss (with
`--segment_labels`, the masked loss of the rated validation segments); the Trainer then
trains with the best values (`TrainingConfig.with_values`), which are recorded in the model's
training config.
"""

from __future__ import annotations

import keras_tuner

from trainer_module.models import model_hyperparameters
from trainer_module.reader import make_dataset
from trainer_module.train import compile_model, make_datasets
from trainer_module.training_config import TrainingConfig

# Searched for every model; models with a MoE (as model or classifier) also search their
# number of experts.
LEARNING_RATES = [0.001, 0.003, 0.01, 0.03]
REGULARIZATION_PENALTIES = [0.1, 1.0, 10.0]
MODEL_SEARCH_SPACES = {"moe_num_mixtures": [1, 2, 4]}


def define_search_space(hp: keras_tuner.HyperParameters, config: TrainingConfig) -> None:
    """The training choices every model searches, and those of MODEL_SEARCH_SPACES that the
    model (with its chosen classifier) takes."""
    hp.Choice("base_learning_rate", LEARNING_RATES)
    hp.Choice("regularization_penalty", REGULARIZATION_PENALTIES)
    takes = model_hyperparameters(config.model, config.model_hparams)
    for name, values in MODEL_SEARCH_SPACES.items():
        if name in takes:
            hp.Choice(name, values)


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
