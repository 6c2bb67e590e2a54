"""Batch inference, like the starter code's inference.py: the top-k classes of every video in
any number of shards, scored by an exported model, written as the Kaggle CSV
`VideoId,LabelConfidencePairs` ("label score" pairs, space-separated).

    python -m serving.batch_predict --model_dir=serving_model \
        --input_data_pattern='data/test/*.tfrecord' --output_file=predictions.csv

Uses only the SavedModel contract: serialized records in, `video_id` and `scores` out. Works on
test shards without labels, video- or frame-level, 2018 (`id`) or 2017 (`video_id`) keys.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import numpy as np

from contract.saved_model import (
    SCORES_OUTPUT,
    SERIALIZED_EXAMPLES_INPUT,
    SERVING_DEFAULT_SIGNATURE,
    TOP_K,
    TOP_K_CLASS_IDS_OUTPUT,
    TOP_K_SCORES_OUTPUT,
    VIDEO_ID_OUTPUT,
    top_k,
)
from serving.model_dir import ModelNotFoundError, resolve_model_dir
from shards.files import compression_of, expand_pattern, written_atomically
from shards.tf_errors import op_error_reason

INFERENCE_BATCH_SIZE = 256  # records scored at once by batch inference and evaluation

CSV_HEADER = "VideoId,LabelConfidencePairs"


class BatchPredictError(Exception):
    """Input that cannot be scored; the message names the file."""


def format_csv_row(video_id: str, class_ids, scores) -> str:
    """`id,c1 s1 c2 s2 …`; each score is the shortest text that reads back as the same float32."""
    pairs = " ".join(f"{int(c)} {str(np.float32(s))}"
                     for c, s in zip(class_ids, scores, strict=True))
    return f"{video_id},{pairs}"


def score_shards(model_dir: str, files: list[str], batch_size: int,
                 signatures: tuple[str, ...] = (SERVING_DEFAULT_SIGNATURE,)
                 ) -> Iterator[tuple[object, list[str], dict[str, np.ndarray]]]:
    """(serialized records, video ids, the outputs as numpy) of every batch of `files`, in
    order: each of `signatures` run on the batch's `examples`, their outputs merged (the
    first returns `video_id`)."""
    import tensorflow as tf

    available = tf.saved_model.load(model_dir).signatures
    missing = [name for name in signatures if name not in available]
    if missing:
        raise BatchPredictError(f"{model_dir} has no {', '.join(missing)} signature (it has "
                                f"{', '.join(sorted(available))})")
    functions = [available[name] for name in signatures]
    for path in files:
        try:
            records = tf.data.TFRecordDataset(path, compression_of(path))
            records = records.batch(batch_size).prefetch(1)
            for batch in records:
                outputs = {}
                for function in functions:
                    outputs.update(function(**{SERIALIZED_EXAMPLES_INPUT: batch}))
                video_ids = [v.decode("utf-8") for v in outputs[VIDEO_ID_OUTPUT].numpy()]
                if "" in video_ids:
                    raise BatchPredictError(
                        f"{path}: a record has neither an 'id' (2018) nor a 'video_id' (2017) "
                        "feature")
                yield batch, video_ids, {k: v.numpy() for k, v in outputs.items()}
        except tf.errors.DataLossError:
            raise BatchPredictError(f"{path}: corrupt or truncated TFRecord file") from None
        except tf.errors.InvalidArgumentError as error:
            raise BatchPredictError(f"{path}: records do not match the model's input "
                                    f"({op_error_reason(error.message)})") from None


def write_predictions_csv(model_dir: str, input_data_pattern: str, output_file: str,
                          top_k_classes: int = TOP_K, batch_size: int = INFERENCE_BATCH_SIZE,
                          progress: bool = True) -> int:
    """Writes the Kaggle CSV for every record matched by `input_data_pattern`; returns the
    number of videos. The file appears only when complete."""
    from tqdm import tqdm

    files = expand_pattern(input_data_pattern)
    if not files:
        raise BatchPredictError(f"--input_data_pattern {input_data_pattern} matches no files")
    model_dir = resolve_model_dir(model_dir)
    count = 0
    with written_atomically(output_file) as partial:
        with open(partial, "w") as out, tqdm(unit=" videos", desc="predicting",
                                              disable=not progress, file=sys.stderr) as bar:
            out.write(CSV_HEADER + "\n")
            for _, video_ids, outputs in score_shards(model_dir, files, batch_size):
                if top_k_classes <= outputs[TOP_K_CLASS_IDS_OUTPUT].shape[1]:
                    # The model's own top-k (same scores, computed in the graph).
                    class_ids = outputs[TOP_K_CLASS_IDS_OUTPUT][:, :top_k_classes]
                    top_scores = outputs[TOP_K_SCORES_OUTPUT][:, :top_k_classes]
                else:
                    class_ids, top_scores = top_k(outputs[SCORES_OUTPUT], top_k_classes)
                for row in zip(video_ids, class_ids, top_scores, strict=True):
                    out.write(format_csv_row(*row) + "\n")
                count += len(video_ids)
                bar.update(len(video_ids))
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="serving_model",
                        help="a SavedModel, or a folder of versions (the latest is used)")
    parser.add_argument("--input_data_pattern", required=True, help="glob of TFRecord shards")
    parser.add_argument("--output_file", required=True, help="the CSV to write")
    parser.add_argument("--top_k", type=int, default=TOP_K, help="predictions per video")
    parser.add_argument("--batch_size", type=int, default=INFERENCE_BATCH_SIZE)
    args = parser.parse_args(argv)
    if args.top_k <= 0 or args.batch_size <= 0:
        parser.error("--top_k and --batch_size must be positive")
    try:
        count = write_predictions_csv(args.model_dir, args.input_data_pattern, args.output_file,
                                      args.top_k, args.batch_size)
    except (BatchPredictError, ModelNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {count} predictions to {args.output_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
