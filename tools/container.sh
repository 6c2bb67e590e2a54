#!/usr/bin/env bash
# The environment image, the release image and the containers `make` runs its targets in:
# docker where a daemon answers, else podman (installed from Debian's packages when missing
# and run as root). Called by the Makefile, with ENV_REPO (the environment image's name) and
# UV_VERSION in the environment:
#   tools/container.sh env [--cuda]
#       prints the environment image (env.Dockerfile: the lock's venv, no sources), building
#       it first when missing. Its tag is a hash of env.Dockerfile, the locks, the custom ops
#       (trainer_module/ops/) and uv's version, so it is rebuilt only when what it installs
#       changes; the images it replaces are removed. --cuda: the variant with TensorFlow's
#       CUDA libraries (TAG-cuda).
#   tools/container.sh image IMAGE [--cuda]
#       builds the release image IMAGE (Dockerfile: the sources baked in) on the environment
#       image; the image IMAGE named before is removed when nothing else uses it.
#   tools/container.sh run [--engine-api] [--read NAME=PATH]… [--write-dir NAME=PATH]…
#                          [--write-file NAME=PATH]… [--flags "ARGS"] [--say NOTE] -- COMMAND…
#       runs COMMAND in a container of the environment image with this work tree mounted
#       read-write at its own path and on PYTHONPATH, and each path the target names at its
#       own path: --read read-only (refused when missing on this host: one line, exit 2),
#       --write-dir created here and mounted, --write-file its folder created and mounted;
#       path-valued flags in ARGS likewise (OUTPUT_*_FLAGS below). Nothing else is mounted.
#       The YT8M_TFX_*, TF_* and CUDA_* variables of the environment are passed on. NVIDIA
#       GPUs of this host are passed (GPUS=all by default, GPUS=none, GPUS=0,1) on the CUDA
#       environment image. SIGINT/SIGTERM stop the container and what runs in it.
#       --engine-api: COMMAND may start containers of its own (tests/containers.py).
#       --say: a line to print once the paths are checked, before the container starts.
#   tools/container.sh gpu-args ENGINE
#       prints the arguments that pass this host's GPUs to ENGINE (docker or podman), one a line.
#   tools/container.sh attached run ARGS…
#       ENGINE run ARGS… attached, stopped with this script (make serve's TF Serving).
#   tools/container.sh with-engine-api -- COMMAND…
#       runs COMMAND here with YT8M_TFX_ENGINE_SOCKET set to the engine's API socket.
set -euo pipefail

readonly CONTAINER_SOCKET=/run/yt8m-tfx-engine.sock
readonly HOST_CA=/etc/ssl/certs/ca-certificates.crt
# Flags whose value a program writes (a folder, or a file whose folder is mounted); every other
# flag whose value holds a '/' names a path that is read.
readonly OUTPUT_DIR_FLAGS=" pipeline_root serving_model_dir output_dir train_dir workdir "
readonly OUTPUT_FILE_FLAGS=" output output_file output_json csv_output_file metadata_path "
# What podman needs to pass NVIDIA GPUs: a CDI spec (github.com/cncf-tags/container-device-interface).
readonly CDI_HINT="podman needs NVIDIA's CDI spec to pass GPUs: install nvidia-container-toolkit and run 'nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml'"
ENGINE=()

say() { echo "$*" >&2; }
refuse() { say "error: $*"; exit 2; }

install_podman() {
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    say "error: no container engine: install docker or podman, or run on a host with glibc >= 2.39"
    exit 1
  fi
  say "no container engine found: installing podman and runc from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc catatonit debootstrap >/dev/null
}

# Sets ENGINE: docker where a daemon answers, else podman with the flags this host needs;
# fails when neither is installed.
detect_engine() {
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    ENGINE=(docker)
    return
  fi
  command -v podman >/dev/null || return 1
  ENGINE=(podman)
  # crun (podman's default) fails on some kernels' cgroups and rlimits; runc does not.
  if command -v runc >/dev/null; then ENGINE+=(--runtime runc); fi
  if [[ ! -d /run/systemd/system ]]; then ENGINE+=(--cgroup-manager cgroupfs); fi
}

# detect_engine, installing podman (with runc and catatonit, its --init) where they are
# missing and we may.
find_engine() {
  if ! detect_engine; then
    install_podman
    detect_engine
  elif [[ ${ENGINE[0]} == podman && $(id -u) == 0 ]] && command -v apt-get >/dev/null \
      && ! { command -v runc && { command -v catatonit || [[ -x /usr/libexec/podman/catatonit ]]; }; } \
      >/dev/null; then
    install_podman
    detect_engine
  fi
}

# The base image (env.Dockerfile's first FROM), pulled, or built here when no registry
# answers: debian:SUITE-slim is Debian's SUITE at variant minbase, from Debian's own packages.
ensure_base() {
  local base suite root
  base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' env.Dockerfile | head -1)
  if "${ENGINE[@]}" image inspect "$base" >/dev/null 2>&1 \
      || timeout 120 "${ENGINE[@]}" pull -q "$base" >/dev/null 2>&1; then
    return
  fi
  suite=${base#debian:}
  suite=${suite%-slim}
  if [[ $base != debian:* || $suite == "$base" ]]; then
    say "error: cannot pull $base and can build only debian:SUITE-slim bases here"
    exit 1
  fi
  command -v debootstrap >/dev/null || install_podman
  say "no container registry reachable: building $base here with debootstrap (Debian's packages)"
  root=$(mktemp -d)
  debootstrap --variant=minbase "$suite" "$root" http://deb.debian.org/debian >/dev/null
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "${ENGINE[@]}" import - "$base" >/dev/null 2>&1
  rm -rf "$root"
}

# ENGINE build ARGS… CONTEXT, its log in build/, its tail shown when it fails.
build_image() {
  local what=$1 log=build/$1-build.log start=$SECONDS
  shift
  local args=(build --network host)
  if [[ -s $HOST_CA ]]; then args+=(--secret "id=ca-certificates,src=$HOST_CA"); fi
  mkdir -p build
  if ! DOCKER_BUILDKIT=1 "${ENGINE[@]}" "${args[@]}" "$@" >"$log" 2>&1; then
    tail -40 "$log" >&2
    say "error: building the $what image failed (whole log: $log)"
    exit 1
  fi
  say "$what image ready in $((SECONDS - start)) s (${ENGINE[0]}; log: $log)"
}

image_id() { "${ENGINE[@]}" image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }

# The environment image's tag: what it installs, hashed.
env_tag() {
  local hash
  hash=$(cat env.Dockerfile requirements.lock requirements-cuda.lock trainer_module/ops/*.cc \
    <(echo "uv $UV_VERSION") \
    | sha256sum | cut -c1-12)
  echo "$ENV_REPO:$hash${1:+-cuda}"
}

# Removes the environment images of older locks or env.Dockerfiles (one a release image still
# stands on goes at that image's next build).
remove_stale_envs() {
  local old
  for old in $("${ENGINE[@]}" images --format '{{.Repository}}:{{.Tag}}' "$ENV_REPO"); do
    old=${old#localhost/}
    if [[ ${old%-cuda} != "$(env_tag)" ]]; then "${ENGINE[@]}" rmi "$old" >/dev/null 2>&1 || true; fi
  done
}

# Prints the environment image (with --cuda the CUDA one), built first when missing.
ensure_env() {
  local cuda=${1:-} tag context
  tag=$(env_tag "$cuda")
  find_engine
  if "${ENGINE[@]}" image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; return; fi
  if ! "${ENGINE[@]}" image inspect "$(env_tag)" >/dev/null 2>&1; then
    # A new environment: the older ones and their build cache (the CUDA variant keeps the
    # cache its environment was built with).
    remove_stale_envs
    "${ENGINE[@]}" image prune -f --filter label=io.github.yt8m-tfx.image >/dev/null 2>&1 || true
  fi
  ensure_base
  context=$(mktemp -d)
  cp env.Dockerfile requirements.lock requirements-cuda.lock trainer_module/ops/*.cc "$context"
  say "building the environment image $tag (once per change of the locks, the ops or env.Dockerfile)"
  build_image environment --build-arg "UV_VERSION=$UV_VERSION" -f "$context/env.Dockerfile" \
    --target "env${cuda:+-cuda}" -t "$tag" "$context"
  rm -rf "$context"
  echo "$tag"
}

# The release image IMAGE on the environment image; the one it replaces is removed.
release_image() {
  local image=$1 cuda=${2:-} env old args=()
  find_engine
  env=$(ensure_env "$cuda")
  old=$(image_id "$image")
  # podman keeps no intermediate images: each would be left behind by the next build.
  if [[ ${ENGINE[0]} == podman ]]; then args+=(--layers=false); fi
  build_image release "${args[@]}" --build-arg "ENV_IMAGE=$env" -t "$image" .
  if [[ -n $old && $old != "$(image_id "$image")" ]]; then
    "${ENGINE[@]}" rmi "$old" >/dev/null 2>&1 || true
    remove_stale_envs
  fi
}

# Lines of `nvidia-smi -L` (one per GPU of this host); empty without a driver.
host_gpus() { { command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null; } | grep '^GPU ' || true; }

# The arguments that pass the GPUs GPUS names (all by default, none, or indices 0,1) to
# engine $1: docker's --gpus (NVIDIA Container Toolkit), podman's CDI devices.
gpu_args() {
  local engine=$1 wanted=${GPUS:-} devices device
  [[ $wanted == none ]] && return
  if [[ -z $(host_gpus) ]]; then
    if [[ -n $wanted ]]; then
      refuse "GPUS=$wanted: this host has no NVIDIA GPU ('nvidia-smi -L' lists none)"
    fi
    return
  fi
  wanted=${wanted:-all}
  if [[ $engine == docker ]]; then
    if [[ $wanted == all ]]; then echo --gpus; echo all
    else echo --gpus; echo "\"device=$wanted\""; fi
    return
  fi
  devices=$({ command -v nvidia-ctk >/dev/null && nvidia-ctk cdi list 2>/dev/null; } \
    | grep -o 'nvidia.com/gpu=[^ ]*' || true)
  if ! grep -qx "nvidia.com/gpu=all" <<<"$devices"; then
    if [[ -n ${GPUS:-} ]]; then refuse "GPUS=$wanted: $CDI_HINT"; fi
    say "note: $CDI_HINT; running on the CPU"
    return
  fi
  for device in ${wanted//,/ }; do echo --device; echo "nvidia.com/gpu=$device"; done
}

# An absolute, normalised PATH (relative ones are taken from the work tree).
absolute() {
  local path=$1
  [[ $path == "~"* ]] && path=$HOME${path:1}
  [[ $path != /* ]] && path=$TREE/$path
  realpath -m -s "$path"
}

# Adds to MOUNTS what NAME=PATH needs, as ROLE (read, dir or file); paths in the work tree and
# object-store URLs need none.
mount_for() {
  local role=$1 name=${2%%=*} path=${2#*=} host
  [[ -z $path || $path == *://* ]] && return
  host=$(absolute "$path")
  [[ $host == "$TREE" || $host == "$TREE"/* ]] && return
  case $role in
    read)
      # A glob is mounted from its folder (the part before the first wildcard).
      while [[ $host == *[*?[]* ]]; do host=$(dirname "$host"); done
      [[ -e $host ]] || refuse "$name=$path: no such file or directory on this host"
      MOUNTS+=("$host:$host:ro") ;;
    dir)
      mkdir -p "$host" || refuse "$name=$path: cannot create this folder"
      MOUNTS+=("$host:$host") ;;
    file)
      mkdir -p "$(dirname "$host")" || refuse "$name=$path: cannot create its folder"
      MOUNTS+=("$(dirname "$host"):$(dirname "$host")") ;;
  esac
}

# mount_for each path-valued --flag=VALUE / --flag VALUE of ARGS.
mount_flags() {
  local words=() i word name value
  read -r -a words <<<"$1"
  for ((i = 0; i < ${#words[@]}; i++)); do
    word=${words[i]}
    [[ $word == --* ]] || continue
    name=${word#--}
    if [[ $name == *=* ]]; then value=${name#*=}; name=${name%%=*}
    elif ((i + 1 < ${#words[@]})) && [[ ${words[i + 1]} != --* ]]; then value=${words[i + 1]}
    else continue; fi
    if [[ $OUTPUT_DIR_FLAGS == *" $name "* ]]; then mount_for dir "--$name=$value"
    elif [[ $OUTPUT_FILE_FLAGS == *" $name "* ]]; then mount_for file "--$name=$value"
    elif [[ $value == */* ]]; then mount_for read "--$name=$value"; fi
  done
}

# Runs ENGINE ARGS… with the container named NAME, attached; SIGINT/SIGTERM here (a terminal's
# ^C, or a signal to make's process group) stop the container before this script exits.
run_attached() {
  local name=$1 pid status=0
  shift
  stop() {
    trap '' INT TERM
    "${ENGINE[@]}" stop -t 10 "$name" >/dev/null 2>&1 || true
    "${ENGINE[@]}" rm -f "$name" >/dev/null 2>&1 || true
    wait "$pid" 2>/dev/null || true
    exit "$1"
  }
  trap 'stop 130' INT
  trap 'stop 143' TERM
  # In the background so that the traps run at once; its standard input is still ours.
  "${ENGINE[@]}" "$@" <&0 &
  pid=$!
  wait "$pid" || status=$?
  trap - INT TERM
  return "$status"
}

run() {
  local api= flags= cuda= gpu=() name env note=
  TREE=$(pwd)
  MOUNTS=("$TREE:$TREE")
  while [[ $# -gt 0 && $1 != -- ]]; do
    case $1 in
      --engine-api) api=1 ;;
      --read) mount_for read "$2"; shift ;;
      --write-dir) mount_for dir "$2"; shift ;;
      --write-file) mount_for file "$2"; shift ;;
      --flags) flags=$2; shift ;;
      --say) note=$2; shift ;;
      *) say "usage: $0 run [--engine-api] [--read|--write-dir|--write-file NAME=PATH]… [--flags ARGS] -- COMMAND…"; exit 2 ;;
    esac
    shift
  done
  [[ ${1:-} == -- ]] && shift
  mount_flags "$flags"
  find_engine
  local gpu_lines
  gpu_lines=$(gpu_args "${ENGINE[0]}")
  [[ -n $gpu_lines ]] && mapfile -t gpu <<<"$gpu_lines" && cuda=--cuda
  env=$(ensure_env "$cuda")
  if [[ -n $note ]]; then say "$note ($env${gpu[*]:+, ${gpu[*]}})"; fi
  name=yt8m-tfx-$$-$RANDOM
  # Each run's temporary files in a folder of its own, removed when it ends (and, if it was
  # killed, when a later run starts): each time a Beam component runs, TFX leaves a 52 MB copy
  # of itself there (dependency_utils.build_ephemeral_package), and Beam its temp folders.
  local tmp stale
  for stale in build/tmp/runs/*; do
    if [[ -d $stale ]] && ! "${ENGINE[@]}" container inspect "${stale##*/}" >/dev/null 2>&1; then
      rm -rf "$stale"
    fi
  done
  tmp=build/tmp/runs/$name
  mkdir -p "$tmp"
  local args=(run --rm --init --name "$name" --network host
              --ulimit nofile=10000:10000 --ulimit nproc=4096:4096
              -w "$TREE" -e TMPDIR="$TREE/$tmp" -e PYTHONPATH="$TREE" -e CI -e TERM
              -e YT8M_TFX_CONTAINER="$name"
              "${gpu[@]}")
  # The mounts, one per folder: the read-write ones first, so that they win over read-only.
  local mount seen=" "
  add_mount() {
    if [[ $seen != *" ${1%%:*} "* ]]; then seen+="${1%%:*} "; args+=(-v "$1"); fi
  }
  for mount in "${MOUNTS[@]}"; do if [[ $mount != *:ro ]]; then add_mount "$mount"; fi; done
  for mount in "${MOUNTS[@]}"; do if [[ $mount == *:ro ]]; then add_mount "$mount"; fi; done
  local variable
  for variable in $(compgen -e); do
    if [[ $variable =~ ^(YT8M_TFX_|TF_|CUDA_) ]]; then args+=(-e "$variable"); fi
  done
  if [[ -s $HOST_CA ]]; then
    args+=(-v "$HOST_CA:/run/host-ca-certificates.crt:ro" -e SSL_CERT_FILE=/run/host-ca-certificates.crt)
  fi
  if [[ -t 0 && -t 1 ]]; then args+=(-it); fi
  # Docker runs as root: files the container writes in the tree stay the user's. (Rootless
  # podman maps the container's root to the user already.)
  if [[ ${ENGINE[0]} == docker && $(id -u) != 0 ]]; then
    args+=(-u "$(id -u):$(id -g)" -e HOME="$TREE/build/tmp")
  fi
  if [[ -n $api ]]; then
    start_engine_api
    args+=(-v "$SOCKET:$CONTAINER_SOCKET" -e YT8M_TFX_ENGINE_SOCKET="$CONTAINER_SOCKET")
  fi
  local status=0
  run_attached "$name" "${args[@]}" "$env" "$@" || status=$?
  rm -rf "$tmp"
  return "$status"
}

# Starts the engine's API service (podman) or finds the daemon's socket (docker); sets SOCKET.
start_engine_api() {
  if [[ ${ENGINE[0]} == docker ]]; then
    SOCKET=/var/run/docker.sock
    if [[ ${DOCKER_HOST:-} == unix://* ]]; then SOCKET=${DOCKER_HOST#unix://}; fi
    return
  fi
  SOCKET=$(mktemp -u /tmp/yt8m-tfx-engine.XXXXXX.sock)
  "${ENGINE[@]}" system service --time=0 "unix://$SOCKET" &
  API_PID=$!
  trap 'kill "$API_PID" 2>/dev/null; rm -f "$SOCKET"' EXIT
  for _ in $(seq 100); do [[ -S $SOCKET ]] && return; sleep 0.1; done
  say "error: the podman API service did not start"
  exit 1
}

with_engine_api() {
  [[ ${1:-} == -- ]] && shift
  if [[ -z ${YT8M_TFX_ENGINE_SOCKET:-} ]]; then
    find_engine
    start_engine_api
    export YT8M_TFX_ENGINE_SOCKET=$SOCKET
  fi
  "$@"
}

case ${1:-} in
  env) shift; ensure_env "$@" ;;
  image) shift; release_image "$@" ;;
  run) shift; run "$@" ;;
  gpu-args) shift; gpu_args "$@" ;;
  attached) shift; find_engine; name=yt8m-tfx-$$-$RANDOM; run_attached "$name" "$1" --name "$name" "${@:2}" ;;
  with-engine-api) shift; with_engine_api "$@" ;;
  *) say "usage: $0 env [--cuda] | image IMAGE [--cuda] | gpu-args ENGINE | attached run ARGS…"
     say "       $0 run [--engine-api] [--read|--write-dir|--write-file NAME=PATH]… [--flags ARGS] -- COMMAND…"
     say "       $0 with-engine-api -- COMMAND…"; exit 2 ;;
esac
