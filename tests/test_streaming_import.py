"""ImportExampleGen's shard-by-shard copy (`components.streaming_import`): every record of
every input shard, in gzip shards of the output splits, and the artifact properties TFX's
executor sets; used only where Beam runs on one machine."""

import glob
import gzip
import json
import os

import tensorflow as tf
from tfx.components.util import examples_utils
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.streaming_import import StreamingImportExecutor
from pipeline.pipeline import create_pipeline, make_eval_config
from pipeline.pipeline_config import PipelineConfig
from tests.helpers import random_rows, write_video_examples


def _records(pattern: str) -> list[bytes]:
    files = sorted(glob.glob(pattern))
    return [record.numpy() for path in files for record in tf.data.TFRecordDataset(
        path, compression_type="GZIP" if path.endswith(".gz") else "")]


def test_every_record_of_every_shard_is_copied_gzipped_into_its_split(tmp_path):
    data = tmp_path / "data"
    for split, shards in (("train", 3), ("validate", 1)):
        os.makedirs(data / split)
        for index in range(shards):
            # Uncompressed and gzip inputs, as users' shards come.
            compression = "GZIP" if index % 2 else ""
            suffix = ".tfrecord.gz" if compression else ".tfrecord"
            write_video_examples(str(data / split / f"part{index}{suffix}"),
                                 random_rows(5 + index, seed=index), compression)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="train", pattern="train/*"),
        example_gen_pb2.Input.Split(name="validate", pattern="validate/*")])
    StreamingImportExecutor().Do({}, {"examples": [examples]}, {
        "input_base": str(data), "input_config": proto_utils.proto_to_json(input_config),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output()),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE})

    assert json.loads(examples.split_names) == ["train", "validate"]
    assert examples_utils.get_payload_format(examples) == example_gen_pb2.FORMAT_TF_EXAMPLE
    for split, shards in (("train", 3), ("validate", 1)):
        outputs = sorted(glob.glob(f"{examples.uri}/Split-{split}/*"))
        assert [os.path.basename(path) for path in outputs] == [
            f"data_tfrecord-{index:05d}-of-{shards:05d}.gz" for index in range(shards)]
        for path in outputs:
            with gzip.open(path) as f:
                f.read(1)  # a gzip file, whatever the input's compression
        assert _records(f"{examples.uri}/Split-{split}/*") == _records(f"{data}/{split}/*")


def test_the_shard_copy_runs_where_beam_runs_on_this_machine_only():
    def example_gen_executor(beam_args):
        pipeline = create_pipeline(PipelineConfig(beam_pipeline_args=beam_args))
        example_gen = next(c for c in pipeline.components if c.id == "ImportExampleGen")
        return example_gen.executor_spec.executor_class

    assert example_gen_executor(("--direct_running_mode=in_memory",)) is StreamingImportExecutor
    assert example_gen_executor(("--runner=DirectRunner",)) is StreamingImportExecutor
    assert example_gen_executor(("--runner=DataflowRunner",)) is not StreamingImportExecutor


def test_statistics_and_the_evaluator_run_beam_in_this_process_on_one_machine_only():
    """And only then do the Evaluator's metric accumulators travel as local files."""
    def in_process(beam_args) -> dict:
        config = PipelineConfig(beam_pipeline_args=beam_args)
        components = {c.id: c for c in create_pipeline(config).components}
        metric_args = make_eval_config(config).metrics_specs[0].metrics[0].config
        return {**{name: "--direct_running_mode=in_memory" in
                   components[name].executor_spec.beam_pipeline_args
                   for name in ("StatisticsGen", "Evaluator")},
                "pools": json.loads(metric_args)["pools_on_local_disk"]}

    assert in_process(("--direct_running_mode=multi_processing", "--direct_num_workers=2")) == {
        "StatisticsGen": True, "Evaluator": True, "pools": True}
    assert in_process(("--runner=DataflowRunner",)) == {
        "StatisticsGen": False, "Evaluator": False, "pools": False}
