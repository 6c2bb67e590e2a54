#!/usr/bin/env bash
# The pipeline image: built and run with docker where a daemon answers, else podman (installed
# from Debian's packages when missing and run as root). Called by the Makefile:
#   tools/container.sh build IMAGE UV_VERSION
#       builds the Dockerfile as IMAGE. Where no container registry answers, its base image is
#       made here from Debian's packages (debootstrap) and tagged as the base it stands in for.
#   tools/container.sh run IMAGE [--engine-api] -- COMMAND…
#       runs COMMAND in a container of IMAGE with this work tree mounted read-write at its own
#       path (its parent folder read-only, for data beside it; more with YT8M_TFX_MOUNTS).
#       --engine-api: COMMAND may start containers of its own (tests/containers.py).
#   tools/container.sh exists IMAGE
#       exits 0 if the engine has IMAGE.
#   tools/container.sh with-engine-api -- COMMAND…
#       runs COMMAND here with YT8M_TFX_ENGINE_SOCKET set to the engine's API socket.
set -euo pipefail

readonly CONTAINER_SOCKET=/run/yt8m-tfx-engine.sock
readonly HOST_CA=/etc/ssl/certs/ca-certificates.crt
ENGINE=()

say() { echo "$*" >&2; }

install_podman() {
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    say "error: no container engine: install docker or podman, or run on a host with glibc >= 2.39"
    exit 1
  fi
  say "no container engine found: installing podman and runc from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null
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

# detect_engine, installing podman (and runc) first where they are missing and we may.
find_engine() {
  if ! detect_engine; then
    install_podman
    detect_engine
  elif [[ ${ENGINE[0]} == podman ]] && ! command -v runc >/dev/null && [[ $(id -u) == 0 ]] \
      && command -v apt-get >/dev/null; then
    install_podman  # for runc
    detect_engine
  fi
}

# The base image (the Dockerfile's first FROM), pulled, or built here when no registry answers:
# debian:SUITE-slim is Debian's SUITE at variant minbase, from Debian's own packages.
ensure_base() {
  local base suite root
  base=$(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile | head -1)
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

build() {
  local image=$1 uv_version=$2 log=build/image-build.log start=$SECONDS
  local args=(build --network host --build-arg "UV_VERSION=$uv_version" -t "$image")
  find_engine
  ensure_base
  if [[ -s $HOST_CA ]]; then args+=(--secret "id=ca-certificates,src=$HOST_CA"); fi
  mkdir -p build
  if ! DOCKER_BUILDKIT=1 "${ENGINE[@]}" "${args[@]}" . >"$log" 2>&1; then
    tail -40 "$log" >&2
    say "error: building $image failed (whole log: $log)"
    exit 1
  fi
  say "image $image ready in $((SECONDS - start)) s (${ENGINE[0]}; log: $log)"
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

run() {
  local image=$1 api=
  shift
  if [[ ${1:-} == --engine-api ]]; then api=1; shift; fi
  [[ ${1:-} == -- ]] && shift
  local tree parent
  tree=$(pwd)
  parent=$(dirname "$tree")
  find_engine
  mkdir -p build/tmp
  local args=(run --rm --network host --ulimit nofile=10000:10000 --ulimit nproc=4096:4096
              -v "$tree:$tree" -w "$tree" -e TMPDIR="$tree/build/tmp" -e YT8M_TFX_IMAGE="$image"
              -e CI -e TERM -e YT8M_TFX_VERBOSE)
  if [[ $parent != / ]]; then args+=(-v "$parent:$parent:ro"); fi
  for path in ${YT8M_TFX_MOUNTS:-}; do args+=(-v "$path:$path"); done
  if [[ -s $HOST_CA ]]; then
    args+=(-v "$HOST_CA:/run/host-ca-certificates.crt:ro" -e SSL_CERT_FILE=/run/host-ca-certificates.crt)
  fi
  if [[ -t 0 && -t 1 ]]; then args+=(-it); fi
  # Docker runs as root: files the container writes in the tree stay the user's. (Rootless
  # podman maps the container's root to the user already.)
  if [[ ${ENGINE[0]} == docker && $(id -u) != 0 ]]; then
    args+=(-u "$(id -u):$(id -g)" -e HOME="$tree/build/tmp")
  fi
  if [[ -n $api ]]; then
    start_engine_api
    args+=(-v "$SOCKET:$CONTAINER_SOCKET" -e YT8M_TFX_ENGINE_SOCKET="$CONTAINER_SOCKET")
  fi
  "${ENGINE[@]}" "${args[@]}" "$image" "$@"
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

exists() {  # installs nothing: without an engine there is no image
  detect_engine && "${ENGINE[@]}" image inspect "$1" >/dev/null 2>&1
}

case ${1:-} in
  build) shift; build "$@" ;;
  exists) shift; exists "$@" ;;
  run) shift; run "$@" ;;
  with-engine-api) shift; with_engine_api "$@" ;;
  *) say "usage: $0 build IMAGE UV_VERSION | exists IMAGE | run IMAGE [--engine-api] -- COMMAND…"
     say "       $0 with-engine-api -- COMMAND…"; exit 2 ;;
esac
