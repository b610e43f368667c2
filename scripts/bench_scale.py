"""`make bench`, audits at Hub scale: `hubmem audit --db` run twice over unchanged repos, an `--author`
listing of 1,000 repos, and the peak memory of a 2,000-repo audit streamed into a database; against the
fake Hub with --latency-ms per request. Requests are counted by the fake Hub; wall times depend on this
machine's load (compare ratios, not absolute times).

Targets (issue 15): the second run of the 200-repo audit makes at most 1 request per repo (ids from a
file) or 1 per 100 repos (ids from a listing that names commits), in at most 25 % of the first run's
wall time; the 2,000-repo run peaks under 300 MB of RSS.

    python -m scripts.bench_scale [--latency-ms 50] [--repos 200] [--listing 1000] [--rss-repos 2000]
                                  [--parts rss,file,author,listing]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench import FIXTURES, TYPICAL_MAX_TENSORS, clean_environ, register_copies, tensor_count
from tests.fakehub import FakeHub

ROOT = str(Path(__file__).resolve().parent.parent)


def audit(hub: FakeHub, env: dict, args: list[str]) -> tuple[float, int, int, str]:
    """`hubmem audit ARGS` in a subprocess: (wall seconds, requests, exit code, last stderr line)."""
    hub.clear_log()
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "hubmem.cli", "audit", *args, "--format", "jsonl"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    lines = done.stderr.strip().splitlines()
    return wall, len(hub.requests), done.returncode, lines[-1] if lines else ""


def twice(hub: FakeHub, env: dict, label: str, args: list[str], repos: int, work: str) -> None:
    db = tempfile.mktemp(suffix=".sqlite", dir=work)
    first = audit(hub, env, [*args, "--db", db])
    second = audit(hub, env, [*args, "--db", db])
    print(
        f"{label}: first run {first[0]:.2f} s, {first[1]} requests (exit {first[2]}); "
        f"second run {second[0]:.2f} s ({second[0] / first[0]:.0%} of the first), {second[1]} requests "
        f"= {second[1] / repos:.3f} per repo; {second[3]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--listing", type=int, default=1000)
    parser.add_argument("--rss-repos", type=int, default=2000)
    parser.add_argument(
        "--parts", default="rss,file,author,listing", help="which measurements to run (comma-separated)"
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))

    every = sorted(d for d in FIXTURES.iterdir() if (d / "layout.json").is_file())
    typical = [d for d in every if tensor_count(d) <= TYPICAL_MAX_TENSORS]
    hub = FakeHub(latency_ms=args.latency_ms).start()
    print(f"fake Hub at {hub.url}, {args.latency_ms:.0f} ms per request; {len(typical)} typical fixtures")
    with tempfile.TemporaryDirectory() as work:
        env = {
            **clean_environ(),
            "HF_ENDPOINT": hub.url,
            "HF_HOME": os.path.join(work, "home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "PYTHONPATH": ROOT,
        }

        if "rss" in parts:  # first: ru_maxrss of the children is the largest of every child waited for so far
            ids, _ = register_copies(hub, args.rss_repos, typical, "huge")
            listing = Path(work) / "ids.txt"
            listing.write_text("\n".join(ids) + "\n")
            env["HF_HOME"] = os.path.join(work, "home-4")
            wall, requests, code, last = audit(
                hub, env, ["-f", str(listing), "--db", os.path.join(work, "rss.sqlite")]
            )
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB, the largest process so far
            print(
                f"audit --db, {args.rss_repos} repos streamed into the database: {wall:.2f} s, {requests} "
                f"requests, exit {code}, peak RSS {peak / 1024:.0f} MiB (the largest process); {last}"
            )
        env["HF_HOME"] = os.path.join(work, "home-1")
        ids, _ = register_copies(hub, args.repos, typical, "bench")
        listing = Path(work) / "ids.txt"
        listing.write_text("\n".join(ids) + "\n")
        if "file" in parts:
            twice(
                hub,
                env,
                f"audit --db, {args.repos} repos from -f FILE",
                ["-f", str(listing)],
                args.repos,
                work,
            )
        env["HF_HOME"] = os.path.join(work, "home-2")  # a cold metadata cache again
        if "author" in parts:
            twice(
                hub,
                env,
                f"audit --db, {args.repos} repos from --author",
                ["--author", "bench"],
                args.repos,
                work,
            )
        if "listing" not in parts:
            hub.stop()
            return 0

        from hubmem.hub.listing import ListingQuery, list_repos

        register_copies(hub, args.listing, typical, "big")
        os.environ["HF_ENDPOINT"] = hub.url
        from huggingface_hub import constants

        constants.ENDPOINT = hub.url
        hub.clear_log()
        start = time.perf_counter()
        listed = list_repos(ListingQuery(author="big"))
        wall = time.perf_counter() - start
        pages = len([r for r in hub.requests if r.path == "/api/models"])
        print(
            f"--author listing of {len(listed)} repos: {pages} requests ({hub.page_size} a page), {wall:.2f} s, "
            f"{sum(1 for item in listed if item.sha)} with their commit"
        )
        env["HF_HOME"] = os.path.join(work, "home-3")
        twice(
            hub,
            env,
            f"audit --db, {args.listing} repos from --author",
            ["--author", "big"],
            args.listing,
            work,
        )

    hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
