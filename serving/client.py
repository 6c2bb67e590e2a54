"""Sends real videos to a TF Serving REST endpoint and prints their top classes (`make predict`).

    python -m serving.client --input=data/sample/video/validate/validate0048.tfrecord --count=3

Standard library only (no TensorFlow import), like any client of TF Serving would be: records
are read from the TFRecord file and sent base64-encoded to `serving_default`.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import struct
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

from contract.saved_model import TOP_K_LABELS_OUTPUT, TOP_K_SCORES_OUTPUT, VIDEO_ID_OUTPUT


def read_tfrecords(path: str) -> Iterator[bytes]:
    """The records of an uncompressed TFRecord file (CRCs are left to the server's parser)."""
    with open(path, "rb") as f:
        while header := f.read(12):  # uint64 length + uint32 CRC of the length
            if len(header) < 12:
                raise ValueError(f"{path}: truncated TFRecord file")
            (length,) = struct.unpack("<Q", header[:8])
            record = f.read(length)
            if len(record) < length or len(f.read(4)) < 4:
                raise ValueError(f"{path}: truncated TFRecord file")
            yield record


def predict(url: str, records: list[bytes], timeout: float = 60.0) -> list[dict]:
    """The `predictions` of a row-format request for serialized examples."""
    body = json.dumps({"instances": [{"b64": base64.b64encode(r).decode()} for r in records]})
    request = urllib.request.Request(url, data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.load(response)["predictions"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="an uncompressed TFRecord file")
    parser.add_argument("--count", type=int, default=3, help="videos to send")
    parser.add_argument("--top", type=int, default=5, help="classes to print per video")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--model_name", default="yt8m")
    args = parser.parse_args(argv)
    url = f"http://{args.host}:{args.port}/v1/models/{args.model_name}:predict"
    try:
        records = list(itertools.islice(read_tfrecords(args.input), args.count))
        predictions = predict(url, records)
    except urllib.error.HTTPError as error:
        print(f"error: {url} answered {error.code}: {error.read().decode()}", file=sys.stderr)
        return 2
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"error: {url}: {getattr(error, 'reason', error)} (is `make serve` running?)",
              file=sys.stderr)
        return 2
    print(f"POST {url}")
    for prediction in predictions:
        top = zip(prediction[TOP_K_LABELS_OUTPUT][:args.top],
                  prediction[TOP_K_SCORES_OUTPUT][:args.top], strict=True)
        classes = ", ".join(f"{label} {score:.2f}" for label, score in top)
        print(f"{prediction[VIDEO_ID_OUTPUT]}: {classes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
