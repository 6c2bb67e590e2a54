"""Checks a running TF Serving (or the local server) against the SavedModel it serves.

    python -m serving.check_server --model_dir=serving_model --port=8501 \
        --input=data/sample/video/validate/validate0048.tfrecord

Sends real records to `serving_default` over REST, runs the same records through the
SavedModel the way TF Serving's C++ loader does (`serving.session_model`), and exits 0 only
if every output is equal: the check to run against the `tensorflow/serving` image.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import urllib.error

import numpy as np

from contract.saved_model import SERIALIZED_EXAMPLES_INPUT, SERVING_DEFAULT_SIGNATURE
from serving.client import predict, read_tfrecords
from serving.model_dir import ModelNotFoundError, resolve_model_dir


def compare(url: str, model_dir: str, records: list[bytes]) -> list[str]:
    """The outputs (and rows) where the server's predictions differ from the SavedModel's."""
    from serving.session_model import SessionModel

    served = predict(url, records)
    model = SessionModel(model_dir)
    try:
        expected = model.run(SERVING_DEFAULT_SIGNATURE,
                             {SERIALIZED_EXAMPLES_INPUT: np.array(records, dtype=object)})
    finally:
        model.close()
    differences = []
    for name, values in sorted(expected.items()):
        for row, prediction in enumerate(served):
            got, want = np.asarray(prediction[name]), np.asarray(values[row])
            if want.dtype == object:  # strings: JSON text is their UTF-8 decoding
                same = got.tolist() == np.vectorize(
                    lambda raw: raw.decode("utf-8"), otypes=[object])(want).tolist()
            else:
                same = got.shape == want.shape and np.array_equal(got.astype(want.dtype), want)
            if not same:
                differences.append(f"{name} of record {row}")
    return differences


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default="serving_model",
                        help="the SavedModel served (or the base path: its latest version)")
    parser.add_argument("--input", required=True, help="an uncompressed TFRecord file")
    parser.add_argument("--count", type=int, default=16, help="records to send")
    parser.add_argument("--model_name", default="yt8m")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    args = parser.parse_args(argv)
    url = f"http://{args.host}:{args.port}/v1/models/{args.model_name}:predict"
    try:
        model_dir = resolve_model_dir(args.model_dir)
        records = list(itertools.islice(read_tfrecords(args.input), args.count))
        differences = compare(url, model_dir, records)
    except (ModelNotFoundError, ValueError, OSError, urllib.error.URLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if differences:
        print(f"differ from {model_dir}: {', '.join(differences)}", file=sys.stderr)
        return 1
    print(f"{len(records)} records: {url} returns what {model_dir} computes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
