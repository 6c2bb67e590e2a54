"""Pipeline-level settings and their defaults (the starter code's names where it has one)."""

from __future__ import annotations

import dataclasses
import os

from data_tools.checks import EVAL_PATTERN, TRAIN_PATTERN
from trainer_module.training_config import TrainingConfig

PIPELINE_NAME = "yt8m"
PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_DATA_ROOT = os.path.join(PROJECT_ROOT, "data", "sample", "video")

# Beam settings per environment; "{…}" fields come from the runner's flags. Add
# project/region (Dataflow) or the job server (Flink, Spark) with --beam_arg.
BEAM_RUNNERS = {
    "direct": ("--runner=DirectRunner", "--direct_running_mode=in_memory"),
    "dataflow": ("--runner=DataflowRunner", "--experiments=use_runner_v2",
                 "--sdk_container_image={image}", "--temp_location={pipeline_root}/beam_tmp"),
    "flink": ("--runner=FlinkRunner", "--environment_type=EXTERNAL",
              "--environment_config=localhost:50000"),
    "spark": ("--runner=SparkRunner", "--environment_type=DOCKER",
              "--environment_config={image}"),
}

# From this much input on, DirectRunner worker processes beat running Beam in-process. On 2
# CPUs 2 workers took 2.9x the in-process time of the Beam components at 35 k videos, 1.35x
# at 139 k (`make bench-scale`) and 0.96x at 557 k (2.4 GB, one run at 512x): between the
# last two, they cross near 400 k videos (~1.8 GB).
MULTI_PROCESSING_MIN_BYTES = 1.8e9


def beam_workers_for(data_bytes: int) -> int:
    """run_local's default number of Beam worker processes for this much input."""
    return (os.cpu_count() or 1) if data_bytes >= MULTI_PROCESSING_MIN_BYTES else 0


def beam_runs_on_one_machine(beam_pipeline_args) -> bool:
    """Whether these Beam settings run Beam on this machine (DirectRunner, Beam's default)."""
    runners = [arg.split("=", 1)[1] for arg in beam_pipeline_args if arg.startswith("--runner=")]
    return not runners or runners[-1] in ("DirectRunner", "direct")


def direct_runner_args(workers: int) -> tuple[str, ...]:
    """DirectRunner settings for run_local: 0 runs Beam in this process; n > 0 runs n worker
    processes (each imports TensorFlow again, ~25 s, so they pay only on large inputs)."""
    if workers == 0:
        return ("--direct_running_mode=in_memory",)
    return ("--direct_running_mode=multi_processing", f"--direct_num_workers={workers}")


@dataclasses.dataclass(frozen=True)
class VertexTraining:
    """Where and on what a Vertex AI custom job trains: `workers` replicas of `image`, the
    first of them the chief (Vertex's first worker pool)."""

    project: str
    region: str
    image: str
    workers: int
    machine_type: str = "n1-standard-8"

    def custom_job(self) -> dict:
        """TFX's `ai_platform_training_args` for Vertex: a CustomJob whose worker pools are
        the chief and the other workers; Vertex sets TF_CONFIG on each replica."""
        def pool(replicas: int) -> dict:
            return {"machine_spec": {"machine_type": self.machine_type},
                    "replica_count": replicas, "container_spec": {"image_uri": self.image}}

        pools = [pool(1)] + ([pool(self.workers - 1)] if self.workers > 1 else [])
        return {"project": self.project, "job_spec": {"worker_pool_specs": pools}}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """Where data comes from, where outputs go, and what counts as a blessed model."""

    data_root: str = SAMPLE_DATA_ROOT
    train_pattern: str = TRAIN_PATTERN  # relative to data_root
    eval_pattern: str = EVAL_PATTERN  # relative to data_root
    pipeline_root: str = os.path.join(PROJECT_ROOT, "pipeline_output")
    serving_model_dir: str = os.path.join(PROJECT_ROOT, "serving_model")
    metadata_path: str | None = None  # default: <pipeline_root>/metadata.sqlite
    train_steps: int = 300
    eval_steps: int | None = None  # None: the whole validate split
    gap_floor: float = 0.0
    max_gap_regression: float = 0.0
    enable_cache: bool = True
    warm_start: bool = False  # start training from the last blessed model's weights
    # Shards (absolute glob) the blessed model writes a predictions CSV for; None: no step.
    predict_data_pattern: str | None = None
    # Use the shards in place (data_root/Split-train, data_root/Split-validate) as the Examples
    # artifact instead of ImportExampleGen's copy; see docs/kubeflow.md.
    import_examples: bool = False
    tune_trials: int = 0  # > 0: a Tuner step searches this many trials before the Trainer
    beam_pipeline_args: tuple[str, ...] = direct_runner_args(0)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    # The Trainer as a Vertex AI custom job (several workers, each given TF_CONFIG by
    # Vertex): `vertex_custom_job` below; None trains in the Trainer's own process.
    vertex_training: VertexTraining | None = None

    @property
    def metadata_sqlite(self) -> str:
        return self.metadata_path or os.path.join(self.pipeline_root, "metadata.sqlite")
