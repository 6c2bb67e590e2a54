"""The local server serves the pushed model as TF Serving would: predictions equal to the
in-process call, versions switched and unloaded, broken versions retried with back-off, and
real HTTP that keeps answering while clients stall or send garbage (127.0.0.1 only)."""

import base64
import concurrent.futures
import json
import logging
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf
from werkzeug.test import Client

from serving.check_server import main as check_server_main
from serving.client import main as client_main
from serving.http import MAX_CHUNK_SIZE_LINE, create_server
from serving.registry import ModelRegistry
from serving.server import create_app

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
    return Client(create_app(registry, max_request_bytes=1_000_000))


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
    meta = client.get(f"/v1/models/{NAME}/metadata").get_json()
    assert meta["model_spec"] == {"name": NAME, "signature_name": "", "version": "1"}
    signatures = meta["metadata"]["signature_def"]["signature_def"]
    # TF Serving lists every SignatureDef of the MetaGraph, the init op's too.
    assert set(signatures) == {"serving_default", "predict_features", "evaluate_examples",
                               "__saved_model_init_op"}
    examples = signatures["serving_default"]["inputs"]["examples"]
    assert examples["dtype"] == "DT_STRING" and examples["tensor_shape"] == {
        "dim": [{"size": "-1", "name": ""}], "unknown_rank": False}


@pytest.mark.parametrize("body,message", [
    ({"signature_name": "predict_features",
      "instances": [{"mean_rgb": [0.0] * 3, "mean_audio": [0.0] * 128}]},
     "Matrix size-incompatible"),  # from the graph, as in TF Serving
    ({"instances": [b64(b"not an example")]}, "Could not parse example input"),
    ({"signature_name": "__saved_model_init_op", "instances": [1]},
     "Failed to get input map for signature"),
])
def test_requests_the_model_refuses_are_400(client, records, body, message):
    code, answer = post(client, f"/v1/models/{NAME}:predict", body)
    assert code == 400 and message in answer["error"], answer
    assert post(client, f"/v1/models/{NAME}:predict", {"instances": [b64(records[0])]})[0] == 200


def push(base, source, version: int) -> None:
    """As the Pusher does: the version folder appears complete."""
    shutil.copytree(source, base / f".{version}.tmp")
    os.rename(base / f".{version}.tmp", base / str(version))


def versions_in_status(client) -> list[tuple[str, str]]:
    statuses = client.get(f"/v1/models/{NAME}").get_json()["model_version_status"]
    return [(s["version"], s["state"]) for s in statuses]


def test_a_new_version_is_served_and_the_old_one_unloaded_after_its_requests(
        tmp_path, serving_base, records):
    base = tmp_path / "models"
    source = os.path.join(serving_base, "1")
    push(base, source, 1)
    registry = ModelRegistry(NAME, str(base))
    registry.refresh()
    client = Client(create_app(registry))
    (base / "2").mkdir()  # a push in progress: no saved_model.pb yet, keep serving 1
    registry.refresh()
    assert versions_in_status(client) == [("1", "AVAILABLE")]
    shutil.rmtree(base / "2")

    with registry.use(NAME, None) as in_flight:  # a request on version 1 while 2 arrives
        push(base, source, 2)
        registry.refresh()
        assert versions_in_status(client) == [("2", "AVAILABLE"), ("1", "END")]
        outputs = in_flight.model.run("serving_default",
                                      {"examples": np.array(records, dtype=object)})
        assert outputs["scores"].shape == (len(records), 3862)
    with pytest.raises(tf.errors.CancelledError, match="Session has been closed"):
        in_flight.model.run("serving_default", {"examples": np.array(records, dtype=object)})
    assert post(client, f"/v1/models/{NAME}/versions/1:predict",
                {"instances": [b64(records[0])]})[0] == 404
    assert post(client, f"/v1/models/{NAME}/versions/2:predict",
                {"instances": [b64(records[0])]})[0] == 200


def test_a_broken_version_is_retried_with_back_off_while_the_last_good_one_serves(
        tmp_path, serving_base, records, caplog):
    base = tmp_path / "models"
    push(base, os.path.join(serving_base, "1"), 1)
    now = [0.0]
    registry = ModelRegistry(NAME, str(base), clock=lambda: now[0])
    registry.refresh()
    client = Client(create_app(registry))
    (base / "2").mkdir()
    (base / "2" / "saved_model.pb").write_bytes(b"not a SavedModel")

    def attempts_after(seconds: float) -> int:
        now[0] = seconds
        for _ in range(5):
            registry.refresh()
        return sum("cannot load yt8m version 2" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.ERROR, logger="serving.registry"):
        assert [attempts_after(t) for t in (0.0, 1.0, 2.0, 5.0, 6.0, 14.0)] == [1, 1, 2, 2, 3, 4]
    (status_2, status_1) = client.get(f"/v1/models/{NAME}").get_json()["model_version_status"]
    assert status_2["version"] == "2" and status_2["state"] == "END"
    assert status_2["status"]["error_code"] != "OK" and status_2["status"]["error_message"]
    assert status_1 == {"version": "1", "state": "AVAILABLE",
                        "status": {"error_code": "OK", "error_message": ""}}
    assert post(client, f"/v1/models/{NAME}:predict", {"instances": [b64(records[0])]})[0] == 200

    # A rewritten version is tried again at once, and served.
    shutil.rmtree(base / "2")
    push(base, os.path.join(serving_base, "1"), 2)
    registry.refresh()
    assert versions_in_status(client) == [("2", "AVAILABLE"), ("1", "END")]


def resident_megabytes() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_version_switches_do_not_grow_memory(tmp_path, serving_base, records):
    base = tmp_path / "models"
    registry = ModelRegistry(NAME, str(base))
    client = Client(create_app(registry))
    body = {"instances": [b64(r) for r in records]}
    resident = []
    for version in range(1, 15):
        push(base, os.path.join(serving_base, "1"), version)
        registry.refresh()
        assert post(client, f"/v1/models/{NAME}:predict", body)[0] == 200
        if version > 1:
            shutil.rmtree(base / str(version - 1))
        resident.append(resident_megabytes())
    # Each version holds ~17 MB of weights: kept versions would add that much per switch.
    growth_per_switch = (resident[-1] - resident[3]) / (len(resident) - 4)
    assert growth_per_switch < 0.5, resident


# --- real HTTP ------------------------------------------------------------------------------

@pytest.fixture
def http_server(serving_base):
    """The hardened waitress server on an ephemeral 127.0.0.1 port, stopped after the test."""
    registry = ModelRegistry(NAME, serving_base)
    registry.refresh()
    server = create_server(create_app(registry, max_request_bytes=1_000_000), host="127.0.0.1",
                           port=0, threads=4, max_request_bytes=1_000_000, max_connections=400,
                           idle_timeout_seconds=30)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server.effective_port
    server.close()
    thread.join(timeout=10)


def request(port: int, method: str, path: str, body: bytes | None = None, timeout: float = 30):
    """(status, parsed JSON body) of one request on its own connection."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def json_body_of(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), json.loads(body)


def test_real_http_on_localhost(http_server, serving_base, records, in_process, tiny_data_root,
                               capsys):
    port = http_server
    code, body = request(port, "POST", f"/v1/models/{NAME}:predict",
                         json.dumps({"instances": [b64(r) for r in records]}).encode())
    assert code == 200
    np.testing.assert_array_equal(np.float32([p["scores"] for p in body["predictions"]]),
                                  in_process["scores"])
    assert request(port, "POST", f"/v1/models/{NAME}:predict", b"{")[0] == 400

    # `make predict`'s client: reads the shard itself, prints ids and label names.
    shard = tf.io.gfile.glob(os.path.join(tiny_data_root, "validate", "*.tfrecord"))[0]
    assert client_main(["--input", shard, "--count", "2", "--port", str(port)]) == 0
    printed = capsys.readouterr().out.splitlines()
    first = body["predictions"][0]
    assert printed[1].startswith(f"{first['video_id']}: {first['top_k_labels'][0]} ")
    assert len(printed) == 3

    # `make check-serving`: what the server returns is what the SavedModel computes.
    assert check_server_main(["--model_dir", serving_base, "--input", shard,
                              "--port", str(port)]) == 0
    assert check_server_main(["--model_dir", serving_base, "--input", shard,
                              "--port", str(port), "--model_name", "other"]) == 2


@pytest.mark.parametrize("data,code", [
    (b"NOT A REQUEST LINE\r\n\r\n", 400),
    # Headers unfinished at waitress's limit of 262,144 bytes, and no byte more: the server
    # has read everything when it answers and closes (unread bytes would reset the socket).
    (b"GET /v1/models/yt8m HTTP/1.1\r\nX: ".ljust(262_144, b"a"), 431),
    (b"POST /v1/models/yt8m:predict HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", 413),
    (b"POST /v1/models/yt8m:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     + b"1" * (MAX_CHUNK_SIZE_LINE + 1), 400),
])
def test_refusals_by_the_http_layer_are_json(http_server, data, code):
    status, body = json_body_of(raw_exchange(http_server, data))
    assert status == code and set(body) == {"error"}


def test_stalled_and_malformed_clients_do_not_stop_well_formed_requests(http_server, records):
    """A bounded load test: 150 connections that send nothing or half a request, and a mix
    of malformed requests, while well-formed requests keep arriving; every well-formed one
    is answered 200 within the time limit."""
    port = http_server
    good = json.dumps({"instances": [b64(records[0])]}).encode()
    stalled = []
    try:
        for i in range(150):  # more than waitress's default limit of 100 connections
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                s.sendall(b"POST /v1/models/yt8m:predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
            stalled.append(s)
        malformed = [(b"{", 400), (b'{"instances": ' + b"[" * 3000 + b"]" * 3000 + b"}", 400),
                     (b'{"instances": [["0.5"]]}', 400), (b"[" * 50_000, 400)]
        deadline = time.monotonic() + 120

        def well_formed(_):
            return request(port, "POST", f"/v1/models/{NAME}:predict", good, timeout=60)[0]

        def bad(i):
            body, expected = malformed[i % len(malformed)]
            return request(port, "POST", f"/v1/models/{NAME}:predict", body)[0] == expected

        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            good_codes = pool.map(well_formed, range(200))
            bad_ok = pool.map(bad, range(40))
            good_codes, bad_ok = list(good_codes), list(bad_ok)
        assert time.monotonic() < deadline
        assert good_codes == [200] * 200
        assert all(bad_ok)
    finally:
        for s in stalled:
            s.close()
