#!/usr/bin/env bash
# What `make` does on a host whose glibc is older than the lock needs, where each target runs
# in a container of the environment image (tools/container.sh). `make test` runs this on such a
# host before the suite (which itself runs in a container and cannot start one with a mount).
# Each check is a user's command, on real shards copied to a folder outside the clone's parent:
#   - a path named in the environment or on the command line is seen at its own path, read-only
#     where only read; a missing one is refused in one line, exit 2, before any container;
#   - both official layouts work as DATA_ROOT; `make infer` writes OUTPUT outside the tree;
#   - nothing is mounted that was not named; the YT8M_TFX_*, TF_*, CUDA_* variables pass;
#   - an edited module runs at once, with no image built;
#   - SIGTERM or SIGINT to `make serve`'s process group stops its container and frees the port;
#   - each run's temporary files go with it.
# Prints one line per check and "N passed, N failed"; exits 1 if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
readonly TREE=$PWD CONTAINER=tools/container.sh PORT=18501
OUTSIDE=$(mktemp -d /tmp/yt8m-tfx-outside.XXXXXX)
passed=0 failed=0

check() {  # check NAME COMMAND…: counts and reports COMMAND's success
  local name=$1
  shift
  if "$@"; then passed=$((passed + 1)); echo "ok: $name"
  else failed=$((failed + 1)); echo "FAILED: $name"; fi
}

ENGINE=podman
if docker info >/dev/null 2>&1; then ENGINE=docker; fi
engine() { "$ENGINE" "$@"; }
our_containers() { engine ps -q --filter name=yt8m-tfx- | wc -l; }
answers() {  # answers PORT: an HTTP GET of the model's status gets 200
  { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
  printf 'GET /v1/models/yt8m HTTP/1.0\r\n\r\n' >&3
  head -1 <&3 | grep -q ' 200 '
  local status=$?
  exec 3>&-
  return $status
}
port_free() { ! { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null; }

cleanup() {
  engine ps -q --filter name=yt8m-tfx- | xargs -r "$ENGINE" rm -f >/dev/null 2>&1
  rm -rf "$OUTSIDE"
}
trap cleanup EXIT

# Real shards outside the clone's parent: train/ + validate/, and the official flat layout.
mkdir -p "$OUTSIDE/data/train" "$OUTSIDE/data/validate" "$OUTSIDE/flat"
cp data/sample/video/train/validate000[0-1].tfrecord "$OUTSIDE/data/train/"
cp data/sample/video/validate/validate0048.tfrecord "$OUTSIDE/data/validate/"
cp data/sample/video/train/validate0000.tfrecord "$OUTSIDE/flat/train0000.tfrecord"
cp data/sample/video/validate/validate0048.tfrecord "$OUTSIDE/flat/validate0000.tfrecord"

refused_missing_data_root() {  # (make's own "make: *** … Error 2" line aside)
  local out code
  out=$(DATA_ROOT=/nonexistent make --no-print-directory run-local 2>&1 >/dev/null)
  code=$?
  out=$(grep -vE '^make(\[[0-9]+\])?: \*\*\* ' <<<"$out")
  [[ $code == 2 && $out == "error: DATA_ROOT=/nonexistent: no such file or directory on this host" ]] \
    || { echo "  exit $code: $out"; return 1; }
}
check "DATA_ROOT=/nonexistent make run-local: one line, exit 2, no container" refused_missing_data_root

validates() {  # validates MAKE-ARGS…: make validate-data reads the shards named
  local out
  out=$(make --no-print-directory validate-data "$@" 2>&1) || { echo "$out" | tail -3; return 1; }
  grep -q "$OUTSIDE" <<<"$out" || { echo "$out" | tail -3; return 1; }
}
check "make validate-data DATA_ROOT=<outside>" validates "DATA_ROOT=$OUTSIDE/data"
check "DATA_ROOT=<outside> make validate-data" env "DATA_ROOT=$OUTSIDE/data" bash -c \
  "$(declare -f validates); OUTSIDE=$OUTSIDE validates"
check "make validate-data DATA_ROOT=<the official flat layout>" validates "DATA_ROOT=$OUTSIDE/flat"

mounts_only_what_is_named() {
  local mounts expected
  mounts=$(ENV_REPO=$ENV_REPO UV_VERSION=$UV_VERSION $CONTAINER run \
    --read "DATA_ROOT=$OUTSIDE/data" --write-file "OUTPUT=$OUTSIDE/out/p.csv" \
    --flags "--model=MoeModel --warm_start_from=$OUTSIDE/flat --output_file=$OUTSIDE/out/q.csv" \
    -- cat /proc/self/mountinfo) \
    || return 1
  # Each mount point (field 5) and whether it is read-only (field 6), without what every
  # container has: its root, /proc, /dev, /sys, and the engine's own /etc and /run files.
  mounts=$(awk '{split($6, o, ","); print $5, o[1]}' <<<"$mounts" \
    | grep -vE '^/ |^/(proc|dev|sys)(/| )|^/etc/(hosts|hostname|resolv.conf) |^/run/(\.containerenv|secrets|podman-init) |^/sbin/docker-init ' \
    | sort)
  expected=$(printf '%s\n' "$TREE rw" "$OUTSIDE/data ro" "$OUTSIDE/out rw" "$OUTSIDE/flat ro"
    if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then echo "/run/host-ca-certificates.crt ro"; fi)
  diff <(echo "$mounts") <(sort <<<"$expected") | sed 's/^/  /'
  [[ ${PIPESTATUS[0]} == 0 ]]
}
check "a container mounts the tree and the named paths only (read-only where read)" \
  mounts_only_what_is_named

environment_passes() {
  local out
  out=$(YT8M_TFX_PROBE=a TF_PROBE=b CUDA_PROBE=c ENV_REPO=$ENV_REPO UV_VERSION=$UV_VERSION \
    $CONTAINER run -- env) || return 1
  grep -qx YT8M_TFX_PROBE=a <<<"$out" && grep -qx TF_PROBE=b <<<"$out" \
    && grep -qx CUDA_PROBE=c <<<"$out"
}
check "YT8M_TFX_*, TF_* and CUDA_* variables reach the container" environment_passes

edits_run_without_a_build() {
  local before after out module=trainer_module/vocabulary.py
  before=$(engine images -a -q | wc -l)
  cp "$module" "$OUTSIDE/vocabulary.py"
  echo "EDITED_HERE = 'yes'" >>"$module"
  out=$(ENV_REPO=$ENV_REPO UV_VERSION=$UV_VERSION $CONTAINER run -- \
    python -c "import trainer_module.vocabulary as v; print(v.EDITED_HERE)" 2>/dev/null)
  cp "$OUTSIDE/vocabulary.py" "$module"
  after=$(engine images -a -q | wc -l)
  [[ $out == yes && $before == "$after" ]] || { echo "  $out; images $before -> $after"; return 1; }
}
check "an edited module runs at once; no image is built" edits_run_without_a_build

# A briefly trained model outside the tree, to infer with and to serve.
ENV_REPO=$ENV_REPO UV_VERSION=$UV_VERSION $CONTAINER run \
  --read "DATA_ROOT=$OUTSIDE/data" --write-dir "MODEL_BASE=$OUTSIDE/model" -- \
  python -c "
from trainer_module.reader import list_files
from trainer_module.train import train_and_export
from trainer_module.training_config import TrainingConfig
train_and_export(TrainingConfig(batch_size=64), list_files('$OUTSIDE/data/train/*.tfrecord'),
                 list_files('$OUTSIDE/data/validate/*.tfrecord'), train_steps=10,
                 export_dir='$OUTSIDE/model/1', log_dir='$OUTSIDE/model_logs')" >/dev/null 2>&1

infers_outside() {
  make --no-print-directory infer "INPUT=$OUTSIDE/data/validate/*.tfrecord" \
    "OUTPUT=$OUTSIDE/predictions/p.csv" "MODEL_BASE=$OUTSIDE/model" >/dev/null 2>&1
  [[ $(head -1 "$OUTSIDE/predictions/p.csv" 2>/dev/null) == VideoId,LabelConfidencePairs ]]
}
check "make infer INPUT=<outside> OUTPUT=<outside>/p.csv writes it there" infers_outside

stops_on() {  # stops_on SIGNAL: make serve in a process group of its own, no terminal
  local pid waited=0
  # Job control: its own process group, and SIGINT not ignored (bash ignores it in the
  # background jobs of a script without it, and so would everything they start).
  set -m
  make --no-print-directory serve "MODEL_BASE=$OUTSIDE/model" PORT=$PORT \
    </dev/null >"$OUTSIDE/serve.log" 2>&1 &
  pid=$!
  set +m
  until answers $PORT; do
    sleep 1; waited=$((waited + 1))
    ((waited < 180)) || { echo "  never served"; tail -5 "$OUTSIDE/serve.log"; return 1; }
  done
  kill -s "$1" -- "-$pid"
  sleep 15
  port_free $PORT && [[ $(our_containers) == 0 ]] \
    || { echo "  after $1: port $PORT free? $(port_free $PORT && echo yes || echo no);" \
           "containers: $(our_containers)"; return 1; }
}
check "SIGTERM to make serve's process group stops its container, frees the port" stops_on TERM
check "SIGINT to make serve's process group stops its container, frees the port" stops_on INT

temporary_files_removed() {  # after make serve was stopped above: its folder goes now
  local dir left
  dir=$(ENV_REPO=$ENV_REPO UV_VERSION=$UV_VERSION $CONTAINER run -- \
    bash -c 'touch "$TMPDIR/file"; echo "$TMPDIR"') || return 1
  left=$(for d in build/tmp/runs/*; do
    [[ -d $d ]] && ! engine container inspect "${d##*/}" >/dev/null 2>&1 && echo "$d"; done)
  [[ $dir == "$TREE"/build/tmp/runs/yt8m-tfx-* && ! -e $dir && -z $left ]] \
    || { echo "  TMPDIR $dir; left: ${left:-none}"; return 1; }
}
check "each run's TMPDIR is its own, removed when it ends or, if stopped, by the next run" \
  temporary_files_removed

echo "$passed passed, $failed failed"
((failed == 0))
