"""The local server honours TF Serving's REST contract (https://www.tensorflow.org/tfx/serving/api_rest)
for the pushed model, and its predictions equal in-process ones."""

import base64
import json
import os
import shutil
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from serving.client import main as client_main
from serving.server import ModelRegistry, create_app

NAME = "yt8m"


@pytest.fixture(scope="module")
def records(tiny_data_root):
    pattern = os.path.join(tiny_data_root, "validate", "*.tfrecord")
    return [r.numpy() for r in tf.data.TFRecordDataset(tf.io.gfile.glob(pattern)).take(4)]


@pytest.fixture(scope="module")
def in_process(serving_base, records):
    loaded = tf.saved_model.load(os.path.join(serving_base, "1"))
    return loaded.signatures["serving_default"](examples=tf.constant(records))


@pytest.fixture(scope="module")
def client(serving_base):
    registry = ModelRegistry(NAME, serving_base)
    registry.refresh()
    return create_app(registry, max_request_bytes=1_000_000).test_client()


def b64(record: bytes) -> dict:
    return {"b64": base64.b64encode(record).decode()}


def post(client, path, body):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = client.post(path, data=data, content_type="application/json")
    return response.status_code, response.get_json()


def test_row_format_predictions_equal_in_process(client, records, in_process):
    code, body = post(client, f"/v1/models/{NAME}:predict",
                      {"instances": [b64(r) for r in records]})
    assert code == 200 and len(body["predictions"]) == len(records)
    for row, prediction in enumerate(body["predictions"]):
        assert set(prediction) == {"scores", "top_k_class_ids", "top_k_scores", "top_k_labels",
                                   "video_id"}
        np.testing.assert_array_equal(np.float32(prediction["scores"]),
                                      in_process["scores"][row].numpy())
        assert prediction["video_id"] == in_process["video_id"][row].numpy().decode()
        assert prediction["top_k_labels"][0] == in_process["top_k_labels"][row, 0].numpy().decode()
        assert len(prediction["top_k_class_ids"]) == 20


def test_columnar_format_named_and_versioned(client, records, in_process):
    code, body = post(client, f"/v1/models/{NAME}/versions/1:predict",
                      {"signature_name": "serving_default",
                       "inputs": {"examples": [b64(r) for r in records]}})
    assert code == 200
    np.testing.assert_array_equal(np.float32(body["outputs"]["scores"]), in_process["scores"])
    # A bare columnar value and named row instances mean the same for a one-input signature.
    assert post(client, f"/v1/models/{NAME}:predict",
                {"inputs": [b64(r) for r in records]})[1] == body
    assert post(client, f"/v1/models/{NAME}:predict",
                {"instances": [{"examples": b64(r)} for r in records]})[1]["predictions"][0][
        "scores"] == body["outputs"]["scores"][0]


def test_json_friendly_signature_takes_raw_floats(client, records, in_process):
    examples = [tf.train.Example.FromString(r) for r in records]
    instances = [{name: list(e.features.feature[name].float_list.value)
                  for name in ("mean_rgb", "mean_audio")} for e in examples]
    code, body = post(client, f"/v1/models/{NAME}:predict",
                      {"signature_name": "predict_features", "instances": instances})
    assert code == 200
    np.testing.assert_allclose(np.float32([p["scores"] for p in body["predictions"]]),
                               in_process["scores"], rtol=1e-5, atol=1e-6)


def test_status_and_metadata(client):
    response = client.get(f"/v1/models/{NAME}")
    assert response.status_code == 200 and response.get_json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK",
                                                          "error_message": ""}}]}
    assert client.get(f"/v1/models/{NAME}/versions/1").status_code == 200
    meta = client.get(f"/v1/models/{NAME}/metadata").get_json()
    assert meta["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "predict_features"} <= set(signatures)
    assert signatures["serving_default"]["inputs"]["examples"]["dtype"] == "DT_STRING"


@pytest.mark.parametrize("method,path,body,code,message", [
    ("post", f"/v1/models/{NAME}:predict", "{not json", 400, "JSON Parse error"),
    ("post", f"/v1/models/{NAME}:predict", {"instances": [{"b64": "AA=="}], "inputs": []}, 400,
     "cannot both be given"),
    ("post", f"/v1/models/{NAME}:predict", {"signature": "x"}, 400,
     "Missing 'inputs' or 'instances' key"),
    ("post", f"/v1/models/{NAME}:predict", {"signature_name": "nope", "instances": [1]}, 404,
     'Serving signature name: "nope" not found'),
    ("post", f"/v1/models/{NAME}:predict",
     {"signature_name": "predict_features", "instances": [{"mean_rgb": [0.0] * 3,
                                                          "mean_audio": [0.0] * 128}]},
     400, "input 'mean_rgb': shape [1, 3] does not match"),
    ("post", f"/v1/models/{NAME}:predict", {"instances": [{"b64": "!!"}]}, 400,
     "Unable to base64 decode"),
    ("post", f"/v1/models/{NAME}:predict", {"instances": [b64(b"not an example")]}, 400,
     "Could not parse example input"),
    ("post", "/v1/models/other:predict", {"instances": []}, 404,
     "Servable not found for request: Latest(other)"),
    ("post", f"/v1/models/{NAME}/versions/7:predict", {"instances": []}, 404,
     f"Servable not found for request: Specific({NAME}, 7)"),
    ("get", f"/v1/models/{NAME}/versions/7/metadata", None, 404, "Servable not found"),
    ("post", f"/v1/models/{NAME}:classify", {"examples": []}, 400, "predict signatures only"),
    ("get", f"/v1/models/{NAME}:predict", None, 405, "Malformed request"),
    ("post", f"/v1/models/{NAME}:predict", "x" * 1_000_001, 413, "exceeds the capacity limit"),
])
def test_errors_are_tf_serving_json_and_serving_continues(client, records, method, path, body,
                                                          code, message):
    if method == "post":
        status_code, answer = post(client, path, body)
    else:
        response = client.get(path)
        status_code, answer = response.status_code, response.get_json()
    assert status_code == code and set(answer) == {"error"}
    assert message in answer["error"], answer["error"]
    assert post(client, f"/v1/models/{NAME}:predict",
                {"instances": [b64(records[0])]})[0] == 200


def test_a_newly_pushed_version_is_served(tmp_path, serving_base, records):
    base = tmp_path / "models"
    shutil.copytree(os.path.join(serving_base, "1"), base / "1")
    registry = ModelRegistry(NAME, str(base))
    registry.refresh()
    client = create_app(registry).test_client()
    (base / "2").mkdir()  # a push in progress: no saved_model.pb yet, keep serving 1
    registry.refresh()
    assert client.get(f"/v1/models/{NAME}").get_json()["model_version_status"][0][
        "version"] == "1"
    shutil.rmtree(base / "2")
    shutil.copytree(os.path.join(serving_base, "1"), base / "2")
    registry.refresh()
    assert client.get(f"/v1/models/{NAME}").get_json()["model_version_status"][0][
        "version"] == "2"
    assert post(client, f"/v1/models/{NAME}/versions/1:predict",
                {"instances": [b64(records[0])]})[0] == 404


def test_real_http_on_localhost(serving_base, records, in_process, tiny_data_root, capsys):
    import waitress.server
    from waitress import wasyncore

    registry = ModelRegistry(NAME, serving_base)
    registry.refresh()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = waitress.server.create_server(create_app(registry), host="127.0.0.1", port=port)
    stop = threading.Event()

    def serve():  # closing from the loop's own thread avoids racing its sockets
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/v1/models/{NAME}:predict"
        data = json.dumps({"instances": [b64(r) for r in records]}).encode()
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as response:
            predictions = json.load(response)["predictions"]
        np.testing.assert_array_equal(np.float32([p["scores"] for p in predictions]),
                                      in_process["scores"])
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{"))
        assert error.value.code == 400 and "error" in json.load(error.value)

        # `make predict`'s client: reads the shard itself, prints ids and label names.
        shard = tf.io.gfile.glob(os.path.join(tiny_data_root, "validate", "*.tfrecord"))[0]
        assert client_main(["--input", shard, "--count", "2", "--port", str(port)]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed[1].startswith(f"{predictions[0]['video_id']}: "
                                     f"{predictions[0]['top_k_labels'][0]} ")
        assert len(printed) == 3
    finally:
        stop.set()
        thread.join(timeout=10)
