"""`make bench`: HTTP round trips and wall time per model against the fake Hub with injected latency.

Reports, per fixture model: requests and wall time of hubmem.hub.fetch.fetch with a cold cache, the same with
the metadata cached (a second run), and with the single-request sharded-header endpoint switched off;
then the full CLI's wall time and the start-up time of `hubmem --help`, and `hubmem serve`'s requests
beside the estimate's (the same: the plan reads the estimate's snapshot). Medians over --repeat runs.
Last, `hubmem audit` over 200 distinct repo ids (the fixture repos registered again and again under
new names), with the default --jobs (median of --audit-repeat runs) and with --jobs 1, and the requests
each single-file repo cost. Client CPU counts the audit's fetch helper processes too. Then the GGUF
repos: requests and bytes read per repo (scripts/gguf_bench.py).
Numbers depend on this machine's load: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hubmem.jobs.audit import DEFAULT_JOBS
from tests.fakehub import FakeHub, repo_id_from_dirname

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "repos"
MODELS = ["openai-community/gpt2", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B"]


def clean_environ() -> dict[str, str]:
    """os.environ for the processes a benchmark times: no token, not offline, and hubmem byte-compiled
    as pip compiles an installed package (an editable install compiles on first use, which
    PYTHONDONTWRITEBYTECODE, set on some machines, would repeat in every run: ~0.1 s a process)."""
    compileall.compile_dir(Path(__file__).resolve().parent.parent / "hubmem", quiet=1)
    drop = ("HF_HUB_OFFLINE", "HF_TOKEN", "PYTHONDONTWRITEBYTECODE")
    return {k: v for k, v in os.environ.items() if k not in drop}


def use_cache_dir(home: str) -> None:
    from huggingface_hub import constants

    constants.HF_HOME = home
    constants.HF_HUB_CACHE = constants.HUGGINGFACE_HUB_CACHE = os.path.join(home, "hub")


def timed_fetch(hub: FakeHub, repo: str, home: str) -> tuple[float, int]:
    from hubmem.hub import fetch as hub_mod

    use_cache_dir(home)
    hub.clear_log()
    start = time.perf_counter()
    hub_mod.fetch(repo)
    return time.perf_counter() - start, len(hub.requests)


def median_fetch(hub: FakeHub, repo: str, repeat: int, warm: bool) -> tuple[float, int]:
    times, counts = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as home:
            if warm:
                timed_fetch(hub, repo, home)
            t, n = timed_fetch(hub, repo, home)
        times.append(t)
        counts.append(n)
    return statistics.median(times), max(counts)


def cli_time(args: list[str], env: dict, repeat: int) -> float:
    exe = str(Path(sys.executable).with_name("hubmem"))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(
            [exe, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def serve_bench(hub: FakeHub, env: dict, repeat: int) -> None:
    """`hubmem serve` against `hubmem REPO`: the same requests (the plan reads the estimate's snapshot)."""
    print(f"{'serve vs estimate':<28} {'estimate req':>12} {'serve req':>9} {'serve s':>8}")
    for repo in MODELS[1:]:
        counts = []
        for args in ([repo, "--format", "json"], ["serve", repo, "--gpu", "h100", "--num-gpus", "8"]):
            with tempfile.TemporaryDirectory() as cli_home:
                hub.clear_log()
                cli_time(args, {**env, "HF_HOME": cli_home}, 1)
                counts.append(len(hub.requests))
        with tempfile.TemporaryDirectory() as cli_home:
            t = cli_time(
                ["serve", repo, "--gpu", "h100", "--num-gpus", "8"], {**env, "HF_HOME": cli_home}, repeat
            )
        print(f"{repo:<28} {counts[0]:>12} {counts[1]:>9} {t:>8.3f}")


def tensor_count(fixture: Path) -> int:
    return sum(len(f["tensors"]) for f in json.loads((fixture / "layout.json").read_text())["files"].values())


def register_copies(hub: FakeHub, count: int, sources: list[Path], org: str) -> tuple[list[str], set[str]]:
    """`count` distinct repo ids (org/...) cycling through `sources`; also returns the single-file ones."""
    ids, single = [], set()
    for i in range(count):
        src = sources[i % len(sources)]
        layout = json.loads((src / "layout.json").read_text())
        layout.pop("repo_id", None)
        files = {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}
        files.pop("layout.json")
        repo_id = f"{org}/{repo_id_from_dirname(src.name).split('/')[-1]}-{i}"
        hub.add_repo(repo_id, layout=layout, files=files)
        ids.append(repo_id)
        if not layout.get("index") and len(layout.get("files") or {}) == 1:
            single.add(repo_id)
    return ids, single


# Fixtures with more tensors than this (the MoE checkpoints: Qwen3-30B-A3B 18,867, Qwen3-Next 75,587,
# DeepSeek-V3 91,991) cost seconds of CPU each to parse and count; the "typical" set leaves them out.
TYPICAL_MAX_TENSORS = 5_000


def jobs_of(extra: list[str]) -> int:
    return int(extra[extra.index("--jobs") + 1]) if "--jobs" in extra else DEFAULT_JOBS


def network_bound(hub: FakeHub, ids: list[str], latency_ms: float, jobs: int) -> float:
    """The audit's wall time if the client cost nothing: every repo's sequential round trips (from the
    fake Hub's log of the last run) times the latency, `jobs` repos at a time, perfectly packed."""
    by_repo: dict[str, list] = {i: [] for i in ids}
    for r in hub.requests:
        m = re.search(r"/([^/?]+/[^/?]+)(?=/|\?|$)", r.url.removeprefix("/api/models").removeprefix("/cdn"))
        if m and m.group(1) in by_repo:
            by_repo[m.group(1)].append(r)
    return sum(hub.round_trips(rs) for rs in by_repo.values()) * latency_ms / 1000 / jobs


def audit_bench(hub: FakeHub, env: dict, count: int, latency_ms: float, repeat: int) -> None:
    """`hubmem audit` (the CLI in a subprocess, cold cache) over `count` ids: the typical fixtures with
    the default --jobs and with --jobs 1, then every fixture (MoE giants included) with the default."""
    every = sorted(d for d in FIXTURES.iterdir() if (d / "layout.json").is_file())
    typical = [d for d in every if tensor_count(d) <= TYPICAL_MAX_TENSORS]
    print(
        f"audit benchmark: typical set = {len(typical)} of {len(every)} fixtures (<= {TYPICAL_MAX_TENSORS:,} tensors)"
    )
    runs = [  # label, org, fixtures, extra arguments, runs (the median is reported), latency
        ("typical, default --jobs", "bench", typical, [], repeat, latency_ms),
        ("typical, default --jobs", "bench", typical, [], repeat, 0.0),  # latency-bound, not CPU-bound?
        ("typical, --jobs 1", "bench", typical, ["--jobs", "1"], 1, latency_ms),
        ("all fixtures, default --jobs", "bench-all", every, [], 1, latency_ms),
    ]
    root = str(Path(__file__).resolve().parent.parent)
    registered: dict[str, tuple[list[str], set[str]]] = {}
    with tempfile.TemporaryDirectory() as work:
        for label, org, sources, extra, runs_wanted, latency in runs:
            hub.latency_ms = latency
            if org not in registered:
                registered[org] = register_copies(hub, count, sources, org)
            ids, single = registered[org]
            listing = Path(work) / f"{org}.txt"
            listing.write_text("\n".join(ids) + "\n")
            walls, cpus = [], []
            for _ in range(runs_wanted):
                home = tempfile.mkdtemp(dir=work)  # a cold cache for every run
                hub.clear_log()
                cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "hubmem.cli",
                        "audit",
                        "-f",
                        str(listing),
                        "--format",
                        "jsonl",
                        *extra,
                    ],
                    env={**env, "HF_HOME": str(home), "PYTHONPATH": root},
                    capture_output=True,
                    text=True,
                    check=False,
                )
                walls.append(time.perf_counter() - start)
                cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the helper processes included
                cpus.append(
                    (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
                )
            rows = [json.loads(line) for line in done.stdout.splitlines()]
            ok = sum(r["status"] == "ok" for r in rows)
            bound = network_bound(hub, ids, latency, jobs_of(extra))
            per_repo: dict[str, int] = {}
            for r in hub.requests:
                for repo_id in single:
                    if f"/{repo_id}/" in r.path + "/":
                        per_repo[repo_id] = per_repo.get(repo_id, 0) + 1
            worst = max(per_repo.values(), default=0)
            spread = (
                f" (median of {runs_wanted}: {min(walls):.2f}–{max(walls):.2f} s)" if runs_wanted > 1 else ""
            )
            print(
                f"hubmem audit, {count} repos, {latency:.0f} ms latency, {label}: "
                f"{statistics.median(walls):.2f} s{spread}, client CPU {statistics.median(cpus):.2f} s, "
                f"load average {os.getloadavg()[0]:.1f}, {ok}/{len(rows)} ok, exit {done.returncode}, "
                f"{len(hub.requests)} requests, single-file repos: at most {worst} requests each ({len(single)} of them)"
            )
            if bound and latency:
                print(
                    f"  network bound {bound:.2f} s (each repo's sequential round trips × latency, "
                    f"{jobs_of(extra)} at a time): wall / bound {statistics.median(walls) / bound:.2f}; "
                    f"client CPU per repo {statistics.median(cpus) / count * 1000:.1f} ms"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--audit", type=int, default=200, help="repo ids in the audit benchmark (0: skip it)")
    parser.add_argument("--audit-only", action="store_true", help="skip the per-model measurements")
    parser.add_argument("--audit-repeat", type=int, default=5, help="runs of the default-jobs audit (median)")
    args = parser.parse_args()

    hub = FakeHub(FIXTURES, latency_ms=args.latency_ms).start()
    home = tempfile.mkdtemp()
    os.environ.update(
        HF_ENDPOINT=hub.url, HF_HOME=home, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1"
    )
    clean = clean_environ()
    os.environ.clear()
    os.environ.update(clean)

    print(f"fake Hub at {hub.url}, {args.latency_ms:.0f} ms per request, median of {args.repeat}")
    print(
        f"{'model':<28} {'cold req':>8} {'cold s':>7} {'cached req':>10} {'cached s':>8} {'no-endpoint req':>15} {'s':>6}"
    )
    for repo in [] if args.audit_only else MODELS:
        cold_t, cold_n = median_fetch(hub, repo, args.repeat, warm=False)
        warm_t, warm_n = median_fetch(hub, repo, args.repeat, warm=True)
        hub.sharded_endpoint = False
        off_t, off_n = median_fetch(hub, repo, args.repeat, warm=False)
        hub.sharded_endpoint = True
        print(f"{repo:<28} {cold_n:>8} {cold_t:>7.3f} {warm_n:>10} {warm_t:>8.3f} {off_n:>15} {off_t:>6.3f}")

    env = dict(os.environ)
    if not args.audit_only:
        help_t = cli_time(["--help"], env, max(args.repeat, 10))
        with tempfile.TemporaryDirectory() as cli_home:
            env["HF_HOME"] = cli_home
            full_t = cli_time(["meta-llama/Llama-3.1-8B", "--format", "json"], env, args.repeat)
        print(f"hubmem --help start-up: {help_t:.3f} s (median of {max(args.repeat, 10)})")
        print(
            f"hubmem meta-llama/Llama-3.1-8B (CLI, end to end, transformers import included): {full_t:.3f} s"
        )
        serve_bench(hub, env, args.repeat)
    if args.audit:
        audit_bench(hub, env, args.audit, args.latency_ms, args.audit_repeat)
    hub.stop()
    if not args.audit_only:  # GGUF repos: requests and bytes read per repo (scripts/gguf_bench.py)
        from scripts import gguf_bench

        print(f"\nGGUF header reads, cold cache, {args.latency_ms:.0f} ms per request:")
        print(gguf_bench.table(gguf_bench.reads(args.latency_ms), with_time=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
