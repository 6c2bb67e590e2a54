"""`create_pipeline`: the YouTube-8M TFX pipeline, shared by the local and Kubeflow runners."""

from __future__ import annotations

import json

from google.protobuf.wrappers_pb2 import BoolValue
from tensorflow_model_analysis.proto import config_pb2
from tfx import v1 as tfx

from components.anomalies_gate import StopOnAnomalies
from components.evaluation_report import EvaluationReport
from components.latest_pushed_model import LatestPushedModel
from components.predictions_csv import BatchPredict
from components.schemas import LabelsSchema, PackagedSchema
from components.streaming_import import StreamingImportExampleGen
from components.tfma_extractors import custom_extractors, keeps_batches
from components.tfma_metrics import METRIC_CLASSES, GlobalAveragePrecision
from components.tfma_segment_metrics import SEGMENT_METRIC_CLASSES, SegmentMeanAveragePrecision
from components.tfma_slices import slicing_features
from contract.saved_model import (
    SCORES_OUTPUT,
    SEGMENT_RATINGS_OUTPUT,
    SEGMENT_RATINGS_SIGNATURE,
    SERVING_DEFAULT_SIGNATURE,
    SERVING_SEGMENTS_SIGNATURE,
    TRANSFORM_FEATURES_SIGNATURE,
)
from data_tools.checks import SPLIT_DIRS
from pipeline.pipeline_config import (
    PIPELINE_NAME,
    PipelineConfig,
    beam_runs_on_one_machine,
    direct_runner_args,
)
from pipeline.sources import (
    SOURCE_KEY,
    TRAINER_SOURCES,
    TRANSFORM_SOURCES,
    source_fingerprint,
)
from trainer_module.features import MULTI_HOT_LABELS_KEY, NUM_CLASSES_2018, VERTICALS_KEY
from trainer_module.transform import transform_custom_config

RUN_FN = "trainer_module.train.run_fn"
TUNER_FN = "trainer_module.tuning.tuner_fn"
PREPROCESSING_FN = "trainer_module.transform.preprocessing_fn"
METRICS_MODULE = GlobalAveragePrecision.__module__
EXTRACTORS_MODULE = custom_extractors.__module__
# The curated frame-level schema, shipped in this package: (package, file name).
FRAME_LEVEL_SCHEMA = ("pipeline.schemas", "frame_level.pbtxt")
EVALUATION_SCHEMA_NODE_ID = "EvaluationSchema"
# The LatestPushedModel nodes: the Evaluator's baseline and the warm-start source. What is
# served changes between runs while their inputs stay the same, so they are never cached.
BASELINE_NODE_ID, WARM_START_NODE_ID = "BaselineModel", "WarmStartModel"
UNCACHED_NODE_IDS = (BASELINE_NODE_ID, WARM_START_NODE_ID)


def make_eval_config(config: PipelineConfig) -> config_pb2.EvalConfig:
    """TFMA config: the YouTube-8M metrics on the validate split, and the blessing rule
    (GAP at least `gap_floor` and no more than `max_gap_regression` below the baseline);
    with segment labels, segment MAP@K takes GAP's place."""
    training = config.training
    gap_threshold = config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(
            lower_bound={"value": config.gap_floor}),
        # A tiny tolerance so that re-evaluating the same model does not count as a regression.
        change_threshold=config_pb2.GenericChangeThreshold(
            direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -config.max_gap_regression - 1e-9}),
    )
    # Blessing looks at the overall slice only: a threshold without slicing specs would be
    # checked on every vertical's slice too.
    overall = config_pb2.SlicingSpec()
    gap_thresholds = [config_pb2.PerSliceMetricThreshold(slicing_specs=[overall],
                                                         threshold=gap_threshold)]
    if training.segment_labels:
        return _segment_eval_config(training, overall, gap_thresholds)
    metric_args = json.dumps({
        "num_classes": training.num_classes, "top_k": training.top_k,
        # On one machine the Evaluator runs Beam in its own process (create_pipeline).
        "pools_on_local_disk": beam_runs_on_one_machine(config.beam_pipeline_args)})
    yt8m_metrics = [
        config_pb2.MetricConfig(
            class_name=metric.__name__, module=METRICS_MODULE, config=metric_args,
            per_slice_thresholds=gap_thresholds if metric is GlobalAveragePrecision else None)
        for metric in METRIC_CLASSES]
    slicing_specs = [overall]
    if training.num_classes == NUM_CLASSES_2018:  # the verticals come from its vocabulary
        slicing_specs.append(config_pb2.SlicingSpec(feature_keys=[VERTICALS_KEY]))
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=SERVING_DEFAULT_SIGNATURE,
            prediction_key=SCORES_OUTPUT,
            label_key=MULTI_HOT_LABELS_KEY,
            preprocessing_function_names=[TRANSFORM_FEATURES_SIGNATURE],
        )],
        slicing_specs=slicing_specs,
        metrics_specs=[config_pb2.MetricsSpec(metrics=yt8m_metrics)],
        # Only our metrics, so that the Evaluator's extractors may keep whole batches.
        options=config_pb2.Options(include_default_metrics=BoolValue(value=False)),
    )


def evaluator_decodes_labels_only(eval_config: config_pb2.EvalConfig) -> bool:
    """Whether the Evaluator gets the schema of the labels alone (`LabelsSchema`): when its
    models read the serialized examples and no slice needs a raw feature
    (`components.tfma_extractors`). Else it gets none and TFMA decodes every feature, which
    took 0.5 s more per 65 k videos than the labels alone (bench/README.md)."""
    raw_slices = slicing_features(eval_config) - {VERTICALS_KEY}
    return keeps_batches(eval_config) and not raw_slices


def _segment_eval_config(training, overall, thresholds) -> config_pb2.EvalConfig:
    """Segment MAP@segment_max_pred of every segment of the validate videos, overall."""
    metric_args = json.dumps({"max_pred": training.segment_max_pred})
    metrics = [config_pb2.MetricConfig(
        class_name=metric.__name__, module=SegmentMeanAveragePrecision.__module__,
        config=metric_args,
        per_slice_thresholds=thresholds if metric is SegmentMeanAveragePrecision else None)
        for metric in SEGMENT_METRIC_CLASSES]
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=SERVING_SEGMENTS_SIGNATURE, label_key=SEGMENT_RATINGS_OUTPUT,
            preprocessing_function_names=[SEGMENT_RATINGS_SIGNATURE])],
        slicing_specs=[overall],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
        options=config_pb2.Options(include_default_metrics=BoolValue(value=False)),
    )


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    """ExampleGen → statistics/schema/validation → Transform → Trainer → Evaluator → Pusher."""
    custom_config = {"training": config.training.to_dict(),
                     SOURCE_KEY: source_fingerprint(TRAINER_SOURCES)}

    frame_level = config.training.feature_spec().is_frame_level
    payload_format = (tfx.proto.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE if frame_level
                      else tfx.proto.PayloadFormat.FORMAT_TF_EXAMPLE)
    if config.import_examples:
        # Shards already laid out as an Examples artifact: register them, copy nothing.
        example_gen = tfx.dsl.Importer(
            source_uri=config.data_root,
            artifact_type=tfx.types.standard_artifacts.Examples,
            properties={"split_names": json.dumps(list(SPLIT_DIRS))},
            custom_properties={"payload_format":
                               tfx.proto.PayloadFormat.Name(payload_format)},
        ).with_id("ImportExamples")
        examples = example_gen.outputs["result"]
    else:
        # On one machine, copy shard by shard: TFX's copy holds each split in memory there.
        example_gen_class = (StreamingImportExampleGen
                             if beam_runs_on_one_machine(config.beam_pipeline_args)
                             else tfx.components.ImportExampleGen)
        example_gen = example_gen_class(
            input_base=config.data_root,
            input_config=tfx.proto.Input(splits=[
                tfx.proto.Input.Split(name="train", pattern=config.train_pattern),
                tfx.proto.Input.Split(name="validate", pattern=config.eval_pattern),
            ]),
            payload_format=payload_format).with_id("ImportExampleGen")  # either class
        examples = example_gen.outputs["examples"]
    if frame_level:
        # SchemaGen cannot infer SequenceExample tensor representations: use the curated one.
        package, file_name = FRAME_LEVEL_SCHEMA
        schema_gen = PackagedSchema(package=package, file_name=file_name).with_id("SchemaGen")
        statistics_gen = tfx.components.StatisticsGen(
            examples=examples, schema=schema_gen.outputs["schema"])
    else:
        statistics_gen = tfx.components.StatisticsGen(examples=examples)
        # The schema describes the training data; the validate split is checked against it.
        schema_gen = tfx.components.SchemaGen(
            statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True,
            exclude_splits=["validate"])
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    anomalies_gate = StopOnAnomalies(anomalies=example_validator.outputs["anomalies"])

    transform = tfx.components.Transform(
        examples=examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        custom_config={**transform_custom_config(config.training),
                       SOURCE_KEY: source_fingerprint(TRANSFORM_SOURCES)},
        # The Trainer reads raw shards and the Evaluator applies the exported Transform graph,
        # so writing transformed copies (3,862 dense label floats per video) would be waste.
        materialize=False,
        splits_config=tfx.proto.SplitsConfig(analyze=["train"]),
        disable_statistics=True,
    )
    transform.add_upstream_node(anomalies_gate)  # no training on data that breaks the schema

    # The model in production (see components/latest_pushed_model.py): an ordinary task, so
    # that every orchestrator runs it.
    warm_start_model = None
    if config.warm_start:
        warm_start_model = LatestPushedModel(
            serving_model_dir=config.serving_model_dir).with_id(WARM_START_NODE_ID)

    tuner = None
    if config.tune_trials:
        tuner = tfx.components.Tuner(
            tuner_fn=TUNER_FN,
            examples=examples,
            transform_graph=transform.outputs["transform_graph"],
            train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
            eval_args=tfx.proto.EvalArgs(splits=["validate"], num_steps=config.eval_steps),
            custom_config={**custom_config, "tuning": {"max_trials": config.tune_trials}},
        )
    trainer_class, trainer_config = tfx.components.Trainer, custom_config
    if config.vertex_training:
        from tfx.extensions.google_cloud_ai_platform import constants as vertex
        from tfx.extensions.google_cloud_ai_platform.trainer import component, executor

        trainer_class = component.Trainer
        trainer_config = {**custom_config, vertex.ENABLE_VERTEX_KEY: True,
                          vertex.VERTEX_REGION_KEY: config.vertex_training.region,
                          executor.TRAINING_ARGS_KEY: config.vertex_training.custom_job()}
    trainer = trainer_class(
        run_fn=RUN_FN,
        examples=examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"], num_steps=config.train_steps),
        eval_args=tfx.proto.EvalArgs(splits=["validate"], num_steps=config.eval_steps),
        custom_config=trainer_config,
        base_model=warm_start_model.outputs["model"] if warm_start_model else None,
        hyperparameters=tuner.outputs["best_hyperparameters"] if tuner else None,
    )

    baseline_model = LatestPushedModel(
        serving_model_dir=config.serving_model_dir,
        candidate=trainer.outputs["model"]).with_id(BASELINE_NODE_ID)
    eval_config = make_eval_config(config)
    evaluation_schema = (LabelsSchema().with_id(EVALUATION_SCHEMA_NODE_ID)
                         if evaluator_decodes_labels_only(eval_config) else None)
    evaluator = tfx.components.Evaluator(
        examples=examples,
        model=trainer.outputs["model"],
        baseline_model=baseline_model.outputs["model"],
        schema=evaluation_schema.outputs["schema"] if evaluation_schema else None,
        example_splits=["validate"],
        eval_config=eval_config,
        module_path=EXTRACTORS_MODULE,  # its custom_extractors keep the batches
    )
    if beam_runs_on_one_machine(config.beam_pipeline_args):
        # On one machine Beam's worker processes gave the Evaluator no speed and twice the
        # memory (133 k videos: 42 s and 6.9 GB against 40 s and 3.6 GB in-process), and
        # StatisticsGen 4.2 GB at 5 M videos, over the 4 GB a component may take (bench/
        # README.md, "The whole 2018 dataset on one machine"): both run in this process.
        for component in (statistics_gen, evaluator):
            component.with_beam_pipeline_args(list(direct_runner_args(0)))

    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(
                base_directory=config.serving_model_dir)),
    )

    report = EvaluationReport(model=trainer.outputs["model"], examples=examples,
                              evaluation=evaluator.outputs["evaluation"])
    components = [example_gen, statistics_gen, schema_gen, example_validator, anomalies_gate,
                  transform, *([tuner] if tuner else []),
                  *([warm_start_model] if warm_start_model else []), trainer, baseline_model,
                  *([evaluation_schema] if evaluation_schema else []), evaluator, report, pusher]
    if config.predict_data_pattern:
        components.append(BatchPredict(
            model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
            input_data_pattern=config.predict_data_pattern, top_k=config.training.top_k))

    return tfx.dsl.Pipeline(
        pipeline_name=PIPELINE_NAME,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )


def compile_for_local_runner(pipeline: tfx.dsl.Pipeline):
    """The pipeline's IR for LocalDagRunner.run_with_ir, with UNCACHED_NODE_IDS uncached."""
    from tfx.dsl.compiler import compiler

    ir = compiler.Compiler().compile(pipeline)
    for node in ir.nodes:
        if node.pipeline_node.node_info.id in UNCACHED_NODE_IDS:
            node.pipeline_node.execution_options.caching_options.enable_cache = False
    return ir
