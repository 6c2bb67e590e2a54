"""`make parity-segments`: segment MAP@K of a pushed segment model, by this project and by
the starter code's own `segment_eval_inference.py` (google/youtube-8m; TensorFlow 1.15) on
this project's submission, which must agree to the starter's six printed digits.

The starter's evaluator is run unchanged; three things about it decide its inputs:
- `read_segment_predictions` parses every line of the file as `class,segments`, including
  the `Class,Segments` header its own inference.py writes (`int('Class')` fails): the
  header is left out of its copy of the submission;
- `main` looks up every submitted class's positive ratings (`positive_counter[label_id]`)
  and stops with a KeyError on a class without any: those classes, which count in neither
  MAP, are left out too;
- on Python 3, `read_labels` names segments `"%s:%d" % (video_id, start)` with the bytes
  id, `b'AFbF':40`, which matches no submitted id: the ratings go in through its
  `--label_cache` file instead (`Labels.from_file`: `segment_id,label,score` a line),
  written here from the records.

    python -m bench.segment_parity --starter_dir=../youtube-8m --starter_python=~/tf115/bin/python \
        [--model_dir=serving_model_segments] [--eval_data_pattern='build/segment_sample/validate/*']
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import tempfile

from bench.parity import run_logged

_STARTER_MAP = re.compile(r"Num classes: (\d+) \| mAP@\d+: ([\d.]+)")


def starter_inputs(submission: str, pattern: str, workdir: str) -> tuple[str, str]:
    """The starter's label cache of the records' ratings, and the submission without its
    header and without classes that no rating finds positive (see the module docstring)."""
    import tensorflow as tf

    from trainer_module.segments import SEGMENT_CONTEXT_KEYS

    labels, positive = os.path.join(workdir, "labels.cache"), set()
    with open(labels, "w") as out:
        for record in tf.data.TFRecordDataset(sorted(glob.glob(pattern))):
            context = tf.train.SequenceExample.FromString(record.numpy()).context.feature
            video = context["id"].bytes_list.value[0].decode()
            classes, starts = (context[key].int64_list.value for key in SEGMENT_CONTEXT_KEYS[:2])
            scores = context[SEGMENT_CONTEXT_KEYS[2]].float_list.value
            for label, start, score in zip(classes, starts, scores, strict=True):
                out.write(f"{video}:{start},{label},{score}\n")
                if score > 0:
                    positive.add(label)
    predictions = os.path.join(workdir, "submission.csv")
    with open(submission) as rows, open(predictions, "w") as out:
        next(rows)  # the header
        out.writelines(row for row in rows if int(row.split(",", 1)[0]) in positive)
    return labels, predictions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starter_dir", required=True)
    parser.add_argument("--starter_python", required=True)
    parser.add_argument("--model_dir", default="serving_model_segments")
    parser.add_argument("--eval_data_pattern", default="build/segment_sample/validate/*.tfrecord")
    args = parser.parse_args(argv)
    from evaluation.offline_eval import evaluate_segments
    from evaluation.segments import rank_segments, write_submission

    ours = evaluate_segments(args.model_dir, args.eval_data_pattern)
    with tempfile.TemporaryDirectory() as workdir:
        submission = os.path.join(workdir, "ours.csv")
        write_submission(rank_segments(args.model_dir, args.eval_data_pattern,
                                       ours["max_pred"], progress=False), submission)
        labels, predictions = starter_inputs(submission, args.eval_data_pattern, workdir)
        log = os.path.join(workdir, "starter.log")
        run_logged([os.path.expanduser(args.starter_python), "segment_eval_inference.py",
                    f"--eval_data_pattern={args.eval_data_pattern}", f"--label_cache={labels}",
                    f"--submission_file={predictions}"], log, cwd=args.starter_dir)
        with open(log) as f:
            classes, starter_map = _STARTER_MAP.findall(f.read())[-1]
    print(f"segment MAP@{ours['max_pred']}: this project {ours['segment_map']:.6f} over "
          f"{ours['segment_classes']} classes; the starter's segment_eval_inference.py "
          f"{starter_map} over {classes}")
    agree = (abs(float(starter_map) - ours["segment_map"]) <= 5e-7
             and int(classes) == ours["segment_classes"])
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
