"""Downloads a partition of the official YouTube-8M dataset, like the official download.py
(`curl data.yt8m.org/download.py | partition=2/video/train mirror=us python`), but parallel,
resumable and verified.

    python -m data_tools.download --partition=2/video/train --mirror=us \
        --output_dir=/data/yt8m/2018/video/train [--shard=1,100]

The partition's download plan lists every file with its MD5. A file appears under its final
name only once its MD5 matches; interrupted downloads continue from their `.partial` bytes
(HTTP Range) on the next attempt or the next run. `--shard=i,N` takes the i-th of N disjoint
subsets (by MD5 of the file name, as the official script does).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

PARTITION = re.compile(r"^\d+/(video|frame)/(train|validate|test)$")
MIRRORS = ("us", "eu", "asia")
CHUNK_BYTES = 1 << 20


class DownloadError(Exception):
    """A file that could not be downloaded intact; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Settings:
    base_url: str  # …/<partition>
    output_dir: str
    retries: int = 5
    backoff_seconds: float = 1.0
    timeout_seconds: float = 60.0


def plan_url(base_url: str) -> str:
    return f"{base_url}/download_plan.json"


def fetch_plan(settings: Settings) -> dict[str, str]:
    """File name → MD5 of the partition."""
    try:
        with urllib.request.urlopen(plan_url(settings.base_url),
                                    timeout=settings.timeout_seconds) as response:
            plan = json.load(response)
        return {name: entry["md5"] for name, entry in plan["files"].items()}
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as error:
        raise DownloadError(f"cannot read the download plan {plan_url(settings.base_url)}: "
                            f"{getattr(error, 'reason', error)}") from None


def select_shard(names: list[str], shard: tuple[int, int] | None) -> list[str]:
    """The `shard=(i, n)` subset: names whose MD5, as an integer, is i-1 modulo n."""
    if shard is None:
        return sorted(names)
    index, count = shard
    return sorted(n for n in names
                  if int(hashlib.md5(n.encode()).hexdigest(), 16) % count == index - 1)


def md5_of(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_into(url: str, partial: str, timeout: float) -> None:
    """Appends the bytes of `url` missing from `partial` (a Range request when it has some).
    Raises ConnectionError when the server sends less than it announced."""
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        # A server that ignores Range sends everything again: start over.
        mode = "ab" if have and response.status == 206 else "wb"
        announced = response.headers.get("Content-Length")
        received = 0
        with open(partial, mode) as out:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
        if announced is not None and received < int(announced):
            raise ConnectionError(f"connection closed after {received} of {announced} bytes")


def download_file(name: str, md5: str, settings: Settings) -> str:
    """Downloads one file; returns "present" or "downloaded", raises DownloadError."""
    final = os.path.join(settings.output_dir, name)
    if os.path.exists(final) and md5_of(final) == md5:
        return "present"
    partial = final + ".partial"
    reason = ""
    for attempt in range(settings.retries + 1):
        if attempt:
            time.sleep(settings.backoff_seconds * 2 ** (attempt - 1))
        try:
            _fetch_into(f"{settings.base_url}/{name}", partial, settings.timeout_seconds)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = str(getattr(error, "reason", error)) or type(error).__name__
            continue  # keep the partial bytes: the next attempt resumes
        if md5_of(partial) == md5:
            os.replace(partial, final)
            return "downloaded"
        reason = "MD5 mismatch"
        os.remove(partial)  # corrupt: start from scratch
    raise DownloadError(f"{name}: failed after {settings.retries + 1} attempts ({reason})")


def download_partition(settings: Settings, shard: tuple[int, int] | None = None,
                       workers: int = 4, progress: bool = True) -> dict[str, list[str]]:
    """Downloads the partition's files in parallel; returns names by outcome
    ("downloaded", "present", "failed": with reasons)."""
    from tqdm import tqdm

    plan = fetch_plan(settings)
    names = select_shard(list(plan), shard)
    os.makedirs(settings.output_dir, exist_ok=True)
    outcomes: dict[str, list[str]] = {"downloaded": [], "present": [], "failed": []}
    with concurrent.futures.ThreadPoolExecutor(workers) as pool, \
            tqdm(total=len(names), unit=" files", desc="downloading", disable=not progress,
                 file=sys.stderr) as bar:
        futures = {pool.submit(download_file, n, plan[n], settings): n for n in names}
        for future in concurrent.futures.as_completed(futures):
            try:
                outcomes[future.result()].append(futures[future])
            except DownloadError as error:
                outcomes["failed"].append(str(error))
            bar.update(1)
    return outcomes


def parse_shard(value: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+),(\d+)", value)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise argparse.ArgumentTypeError(f"--shard must be i,N with 1 <= i <= N, got {value!r}")
    return int(match[1]), int(match[2])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partition", required=True,
                        help="<version>/<video|frame>/<train|validate|test>, e.g. 2/video/train")
    parser.add_argument("--mirror", choices=MIRRORS, default="us")
    parser.add_argument("--shard", type=parse_shard, help="i,N: the i-th of N subsets")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--base_url", help="default: http://<mirror>.data.yt8m.org/<partition>")
    args = parser.parse_args(argv)
    if not PARTITION.match(args.partition):
        parser.error(f"--partition must look like 2/video/train, got {args.partition!r}")
    settings = Settings(
        base_url=(args.base_url or f"http://{args.mirror}.data.yt8m.org").rstrip("/")
        + f"/{args.partition}",
        output_dir=args.output_dir, retries=args.retries)
    try:
        outcomes = download_partition(settings, args.shard, args.workers)
    except DownloadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(outcomes['downloaded'])} downloaded, {len(outcomes['present'])} already "
          f"present, {len(outcomes['failed'])} failed, in {args.output_dir}")
    for failure in outcomes["failed"]:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if outcomes["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
