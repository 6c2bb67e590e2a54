"""The downloader against a local HTTP server on 127.0.0.1 serving a plan and shards, with a
corrupt shard and a connection that drops mid-file."""

import hashlib
import http.server
import json
import os
import threading

import pytest

from data_tools.download import main, select_shard

PARTITION = "2/video/train"
SHARDS = {f"train{i:04d}.tfrecord": os.urandom(300_000 + i) for i in range(6)}
CORRUPT = "train0004.tfrecord"  # the plan's MD5 never matches what is served
DROPPED = "train0002.tfrecord"  # the first response stops halfway


class Server(http.server.ThreadingHTTPServer):
    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[tuple[str, str | None]] = []
        self.dropped = False


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 — http.server's name
        self.server.requests.append((self.path, self.headers.get("Range")))
        name = self.path.rsplit("/", 1)[-1]
        if self.path == f"/{PARTITION}/download_plan.json":
            plan = {"files": {n: {"md5": hashlib.md5(b"x" if n == CORRUPT else d).hexdigest()}
                              for n, d in SHARDS.items()}}
            return self._send(200, json.dumps(plan).encode())
        if not self.path.startswith(f"/{PARTITION}/") or name not in SHARDS:
            return self._send(404, b"not found")
        data, start = SHARDS[name], 0
        if self.headers.get("Range"):
            start = int(self.headers["Range"].removeprefix("bytes=").rstrip("-"))
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if name == DROPPED and not self.server.dropped:
            self.server.dropped = True
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.connection.close()  # the rest never comes
            return
        self.wfile.write(body)

    def _send(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    server = Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def run(server, output_dir, *flags):
    return main(["--partition", PARTITION, "--output_dir", str(output_dir),
                 "--base_url", f"http://127.0.0.1:{server.server_address[1]}",
                 "--retries", "2", *flags])


def test_downloads_verify_resume_and_never_leave_partial_files(server, tmp_path, capsys):
    assert run(server, tmp_path) == 1  # the corrupt shard fails
    out, err = capsys.readouterr()
    assert "5 downloaded, 0 already present, 1 failed" in out
    assert f"error: {CORRUPT}: failed after 3 attempts (MD5 mismatch)" in err
    for name, data in SHARDS.items():
        if name != CORRUPT:
            assert (tmp_path / name).read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == sorted(n for n in SHARDS if n != CORRUPT)
    # The dropped transfer resumed with a Range request from where it stopped.
    ranges = [r for path, r in server.requests if path.endswith(DROPPED)]
    assert ranges[0] is None and ranges[1] == f"bytes={len(SHARDS[DROPPED]) // 2}-"

    # A rerun downloads nothing that is already intact.
    server.requests.clear()
    assert run(server, tmp_path) == 1
    assert "0 downloaded, 5 already present, 1 failed" in capsys.readouterr().out
    assert all(path.endswith((CORRUPT, "download_plan.json")) for path, _ in server.requests)


def test_shards_split_the_plan_disjointly(server, tmp_path, capsys):
    parts = [set(select_shard(list(SHARDS), (i, 3))) for i in (1, 2, 3)]
    assert set().union(*parts) == set(SHARDS) and sum(map(len, parts)) == len(SHARDS)
    run(server, tmp_path, "--shard", "2,3")
    assert set(os.listdir(tmp_path)) == parts[1] - {CORRUPT}


def test_unreachable_plan_is_one_line(tmp_path, capsys):
    assert main(["--partition", PARTITION, "--output_dir", str(tmp_path),
                 "--base_url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot read the download plan http://127.0.0.1:9/2/video/")
    assert len(err.splitlines()) == 1


def test_bad_partition_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--partition", "2018/video", "--output_dir", str(tmp_path)])
    assert "--partition must look like 2/video/train" in capsys.readouterr().err
