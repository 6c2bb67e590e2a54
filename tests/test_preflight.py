"""Bad flags and bad data stop `run_local` with one clear line before any component runs."""

import gc
import os
import weakref

import pytest

from pipeline.run_local import main, memory_returned_after
from tests.helpers import random_rows, write_video_examples


def run_expecting_error(capsys, tmp_path, *argv) -> str:
    pipeline_root = tmp_path / "pipeline_root"
    code = main([*argv, "--pipeline_root", str(pipeline_root),
                 "--serving_model_dir", str(tmp_path / "serving")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert not os.path.exists(pipeline_root), "nothing may run or be written"
    return err


def test_pattern_matching_no_files(capsys, tmp_path):
    err = run_expecting_error(capsys, tmp_path, "--data_root", str(tmp_path / "nowhere"))
    pattern = f"{tmp_path}/nowhere/train/*.tfrecord"
    assert err == f"error: --train_data_pattern {pattern} matches no files"


def test_feature_names_and_sizes_of_different_lengths(capsys, tmp_path, tiny_data_root):
    err = run_expecting_error(capsys, tmp_path, "--data_root", tiny_data_root,
                              "--feature_names", "mean_rgb,mean_audio", "--feature_sizes", "1024")
    assert "--feature_names has 2 entries" in err and "--feature_sizes has 1" in err


def test_feature_size_that_disagrees_with_the_data(capsys, tmp_path, tiny_data_root):
    err = run_expecting_error(capsys, tmp_path, "--data_root", tiny_data_root,
                              "--feature_names", "mean_rgb,mean_audio",
                              "--feature_sizes", "1024,100")
    assert "feature 'mean_audio' has 128 values but --feature_sizes says 100" in err
    assert "train/validate0000.tfrecord" in err


def test_feature_missing_from_the_data(capsys, tmp_path):
    for split in ("train", "validate"):
        os.makedirs(tmp_path / "data" / split)
        rows = [{k: v for k, v in r.items() if k != "mean_audio"} for r in random_rows(2)]
        write_video_examples(str(tmp_path / "data" / split / "a.tfrecord"), rows)
    err = run_expecting_error(capsys, tmp_path, "--data_root", str(tmp_path / "data"))
    assert "feature 'mean_audio' is not in the data (it has id, labels, mean_rgb)" in err


@pytest.mark.parametrize("flag,value,message", [
    ("--model", "NoSuchModel", "unknown --model 'NoSuchModel'"),
    ("--label_loss", "L1", "unknown --label_loss 'L1'"),
    ("--train_steps", "0", "--train_steps must be positive"),
    ("--eval_steps", "0", "--eval_steps must be positive, got 0"),
    ("--label_smoothing", "1.5", "--label_smoothing must be in [0, 1), got 1.5"),
    ("--beam_workers", "-1", "--beam_workers must be 0 or more, got -1"),
    ("--moe_num_mixtures", "8",
     "--model LogisticModel does not take --moe_num_mixtures; it takes --l2_penalty"),
])
def test_unknown_names_and_bad_numbers(capsys, tmp_path, tiny_data_root, flag, value, message):
    err = run_expecting_error(capsys, tmp_path, "--data_root", tiny_data_root, flag, value)
    assert message in err


def test_label_smoothing_needs_cross_entropy(capsys, tmp_path, tiny_data_root):
    err = run_expecting_error(capsys, tmp_path, "--data_root", tiny_data_root,
                              "--label_smoothing", "0.01", "--label_loss", "HingeLoss")
    assert "--label_smoothing needs --label_loss=CrossEntropyLoss, not HingeLoss" in err


def test_video_level_model_asked_to_read_frame_data(capsys, tmp_path):
    from tests.helpers import write_frame_examples

    for split in ("train", "validate"):
        os.makedirs(tmp_path / "frames" / split)
        write_frame_examples(str(tmp_path / "frames" / split / "a.tfrecord"), random_rows(2))
    err = run_expecting_error(capsys, tmp_path, "--data_root", str(tmp_path / "frames"))
    assert "holds frame-level SequenceExamples (audio, rgb)" in err
    err = run_expecting_error(capsys, tmp_path, "--data_root", str(tmp_path / "frames"),
                              "--frame_features", "--model", "LogisticModel")
    assert "--model LogisticModel is video-level" in err
    err = run_expecting_error(capsys, tmp_path, "--data_root", str(tmp_path / "frames"),
                              "--frame_features", "--model", "DbofModel",
                              "--feature_names", "rgb,audio", "--feature_sizes", "1024,100")
    assert "frame feature 'audio' has 128 bytes per frame but --feature_sizes says 100" in err


def test_train_dir_with_checkpoints_of_another_model(capsys, tmp_path, tiny_data_root):
    from trainer_module.training_config import CONFIG_FILENAME, TrainingConfig

    train_dir = tmp_path / "checkpoints"
    train_dir.mkdir()
    (train_dir / CONFIG_FILENAME).write_text(TrainingConfig(model="LogisticModel").to_json())
    err = run_expecting_error(capsys, tmp_path, "--data_root", tiny_data_root,
                              "--model", "MoeModel", "--train_dir", str(train_dir))
    assert "holds checkpoints of another model (model 'LogisticModel' → 'MoeModel'" in err
    assert "--start_new_model" in err


def test_a_preset_sets_defaults_that_flags_override():
    from pipeline.flags import PRESETS, parse_args_with_preset
    from pipeline.run_local import build_parser

    args = parse_args_with_preset(build_parser(), ["--preset", "best-video"])
    assert args.model == PRESETS["best-video"]["model"]
    assert args.train_steps == PRESETS["best-video"]["train_steps"]
    args = parse_args_with_preset(build_parser(), ["--preset", "best-video", "--train_steps", "7"])
    assert args.train_steps == 7 and args.model == PRESETS["best-video"]["model"]
    assert parse_args_with_preset(build_parser(), []).model == "LogisticModel"


def test_a_preset_with_a_key_no_flag_takes_is_refused_with_one_line(capsys, monkeypatch):
    from pipeline.flags import PRESETS, parse_args_with_preset
    from pipeline.run_local import build_parser

    monkeypatch.setitem(PRESETS, "best-video", {**PRESETS["best-video"], "mlp_layers": 3})
    with pytest.raises(SystemExit) as exit_info:
        parse_args_with_preset(build_parser(), ["--preset", "best-video"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert err == "error: --preset best-video sets --mlp_layers, which no flag takes"


def test_every_preset_key_is_a_flag():
    from pipeline.flags import PRESETS, parse_args_with_preset
    from pipeline.run_local import build_parser

    for name, preset in PRESETS.items():
        args = vars(parse_args_with_preset(build_parser(), ["--preset", name]))
        assert {key: args[key] for key in preset} == preset


def test_every_model_hyperparameter_flag_says_what_it_does_and_its_defaults():
    """The help is each model's declaration (trainer_module.hparams.setting) with its default
    in each model that declares it."""
    from pipeline.run_local import build_parser
    from trainer_module.models import hyperparameter_flags

    helps = {flag: text for flag, (_, text) in hyperparameter_flags().items()}
    assert {"ensemble_size", "l2_normalize_input", "lstm_cells"} <= set(helps)
    for flag, text in helps.items():
        assert len(text.split(" (default ")[0].split()) >= 3, f"--{flag}: {text!r}"
    assert helps["moe_num_mixtures"] == (
        "experts per class, not counting the dummy that always predicts 0 "
        "(default 2 in MoeModel)")
    assert "8192 in DbofModel, GatedDbofModel; 4096 in SoftDbofModel" in helps[
        "dbof_cluster_size"]
    usage = " ".join(build_parser().format_help().split())
    assert all(" ".join(text.split()) in usage for text in helps.values())


def test_beam_runs_in_process_on_small_data_and_in_worker_processes_on_large(
        tmp_path, tiny_data_root):
    from pipeline.pipeline_config import MULTI_PROCESSING_MIN_BYTES, beam_workers_for
    from pipeline.run_local import build_parser, config_from_args

    def beam_args(*flags):
        args = build_parser().parse_args(["--data_root", tiny_data_root, "--pipeline_root",
                                          str(tmp_path), *flags])
        return config_from_args(args)[0].beam_pipeline_args

    assert beam_args() == ("--direct_running_mode=in_memory",)
    assert beam_args("--beam_workers", "3") == ("--direct_running_mode=multi_processing",
                                                "--direct_num_workers=3")
    assert beam_workers_for(int(MULTI_PROCESSING_MIN_BYTES) - 1) == 0
    assert beam_workers_for(int(MULTI_PROCESSING_MIN_BYTES)) == os.cpu_count()


def test_asking_for_gpus_where_none_is_visible_stops_with_one_line(capsys, tmp_path,
                                                                   tiny_data_root):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible")
    err = run_expecting_error(capsys, tmp_path, "--data_root", tiny_data_root,
                              "--require_gpus", "1")
    assert err.startswith("error: --require_gpus 1: TensorFlow sees 0 GPU(s)")


def test_the_official_flat_layout_is_a_data_root(tmp_path, tiny_data_root):
    """The download's layout, train*.tfrecord and validate*.tfrecord in one folder."""
    from data_tools.checks import data_root_patterns

    flat = tmp_path / "flat"
    flat.mkdir()
    for split in ("train", "validate"):
        for index, name in enumerate(sorted(os.listdir(os.path.join(tiny_data_root, split)))):
            os.symlink(os.path.join(tiny_data_root, split, name),
                       flat / f"{split}{index:04d}.tfrecord")
    assert data_root_patterns(str(flat)) == (f"{flat}/train*.tfrecord",
                                             f"{flat}/validate*.tfrecord")
    assert data_root_patterns(tiny_data_root) == (f"{tiny_data_root}/train/*.tfrecord",
                                                  f"{tiny_data_root}/validate/*.tfrecord")


def test_a_bool_flag_alone_is_true_and_takes_false_for_one_that_defaults_to_true():
    from pipeline.flags import parse_args_with_preset
    from pipeline.run_local import build_parser

    def parsed(*argv):
        return vars(parse_args_with_preset(build_parser(), list(argv)))

    assert parsed()["jit_compile"] is True and parsed()["start_new_model"] is False
    assert parsed("--jit_compile=false")["jit_compile"] is False
    assert parsed("--start_new_model")["start_new_model"] is True
    assert parsed("--start_new_model", "true")["start_new_model"] is True


def test_what_a_component_left_in_reference_cycles_is_freed_before_the_next():
    class Batch:
        pass

    gc.disable()  # only memory_returned_after may collect
    try:
        with memory_returned_after("Evaluator"):
            batch = Batch()
            batch.itself = batch
            watched = weakref.ref(batch)
            del batch
        assert watched() is None
    finally:
        gc.enable()
