"""The serving deployment files agree with each other, the Makefile and the REST contract."""

import os
import subprocess

import yaml

from serving.server import DEFAULT_MODEL_NAME, DEFAULT_PORT, STATUS_PATH
from tests.conftest import PROJECT_ROOT

DEPLOY = os.path.join(PROJECT_ROOT, "serving", "deploy")


def load_all(name):
    with open(os.path.join(DEPLOY, name)) as f:
        return list(yaml.safe_load_all(f))


def makefile_image():
    """`make serve`'s image: TF Serving of the TensorFlow minor the lock pins."""
    image = subprocess.run(["make", "-s", "NATIVE=1", "print-TF_SERVING_IMAGE"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(PROJECT_ROOT, "requirements.lock")) as f:
        (tensorflow,) = [line for line in f if line.startswith("tensorflow==")]
    minor = ".".join(tensorflow.split("==")[1].split(".")[:2])
    assert image == f"tensorflow/serving:{minor}.0"
    return image


def test_compose_serves_the_pushed_models_folder():
    (compose,) = load_all("docker-compose.yaml")
    service = compose["services"]["tf-serving"]
    assert service["image"] == makefile_image()
    assert service["environment"]["MODEL_NAME"] == DEFAULT_MODEL_NAME
    assert f"127.0.0.1:{DEFAULT_PORT}:8501" in service["ports"]
    source, target, _ = service["volumes"][0].split(":")
    assert os.path.normpath(os.path.join(DEPLOY, source)) == os.path.join(
        PROJECT_ROOT, "serving_model")
    assert target == f"/models/{DEFAULT_MODEL_NAME}"


def test_kubernetes_deployment_and_service_match():
    deployment, service = load_all("kubernetes.yaml")
    assert (deployment["kind"], service["kind"]) == ("Deployment", "Service")
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"] == pod["metadata"]["labels"]
    assert service["spec"]["selector"] == pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    assert container["image"] == makefile_image()
    assert f"--model_name={DEFAULT_MODEL_NAME}" in container["args"]
    assert "--rest_api_port=8501" in container["args"]
    probe_path = container["readinessProbe"]["httpGet"]["path"]
    assert STATUS_PATH.fullmatch(probe_path)["name"] == (
        DEFAULT_MODEL_NAME)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    assert ports["http"] == 8501


def test_kserve_inference_service_uses_the_tensorflow_runtime():
    (service,) = load_all("kserve.yaml")
    assert service["kind"] == "InferenceService"
    assert service["metadata"]["name"] == DEFAULT_MODEL_NAME  # the name in /v1/models/<name>
    model = service["spec"]["predictor"]["model"]
    assert model["modelFormat"]["name"] == "tensorflow"
    assert model["runtimeVersion"] == makefile_image().split(":")[1]
