"""`tools/quiet.sh` (what make run-local/infer/evaluate/serve run under) takes out
TensorFlow's start-up notices and nothing else, keeps the exit code, and VERBOSE keeps all."""

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

QUIET = os.path.join(PROJECT_ROOT, "tools", "quiet.sh")
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796177609.307141       6 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1796177609.307650       6 cudart_stub.cc:31] Could not find cuda drivers",
    "E0000 00:00:1796177615.127546       6 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
    "2026-12-02 02:14:40.289308: E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:10575]"
    " Unable to register cuDNN factory: Attempting to register factory for plugin cuDNN",
]
USERS_LINES = ["error: --train_data_pattern matches no file",
               "E0000 00:00:1796177615.127546       6 op_kernel.cc:52] OUT_OF_RANGE: real error"]


def run_quiet(script: str, verbose: str = "") -> subprocess.CompletedProcess:
    # The Makefile's defaults: TF_CPP_MIN_LOG_LEVEL=2 unless VERBOSE; no GPUs asked for.
    env = {**os.environ, "YT8M_TFX_VERBOSE": verbose, "TF_CPP_MIN_LOG_LEVEL": "2", "GPUS": ""}
    return subprocess.run([QUIET, sys.executable, "-c", script], capture_output=True, text=True,
                          env=env)


def test_only_tensorflows_start_up_notices_are_taken_out_and_the_exit_code_stays():
    script = (f"import sys; print('out'); print({'\n'.join(NOTICES + USERS_LINES)!r}, "
              "file=sys.stderr); sys.exit(3)")
    quiet = run_quiet(script)
    assert (quiet.returncode, quiet.stdout, quiet.stderr.splitlines()) == (3, "out\n", USERS_LINES)
    verbose = run_quiet(script, verbose="1")
    assert verbose.stderr.splitlines() == NOTICES + USERS_LINES


def test_importing_this_tensorflow_prints_nothing_under_it():
    result = run_quiet("import tensorflow as tf; tf.config.list_physical_devices()")
    assert (result.returncode, result.stderr) == (0, "")


def test_where_gpus_were_asked_for_the_lines_that_say_none_is_used_stay():
    script = f"import sys; print({'\n'.join(NOTICES)!r}, file=sys.stderr)"
    no_gpu = [NOTICES[2], NOTICES[3]]  # cudart_stub's "GPU will not be used", cuInit's failure
    for gpus, kept in (("", []), ("none", []), ("all", no_gpu), ("0,1", no_gpu)):
        env = {**os.environ, "YT8M_TFX_VERBOSE": "", "GPUS": gpus}
        result = subprocess.run([QUIET, sys.executable, "-c", script], capture_output=True,
                                text=True, env=env)
        assert result.stderr.splitlines() == kept, gpus
