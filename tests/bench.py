"""`make bench`: HTTP round trips and wall time per model against the fake Hub with injected latency.

Reports, per fixture model: requests and wall time of hubmem.hub.fetch with a cold cache, the same with
the metadata cached (a second run), and with the single-request sharded-header endpoint switched off;
then the full CLI's wall time and the start-up time of `hubmem --help`. Medians over --repeat runs.
Numbers depend on this machine's load: compare ratios, not absolute times.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakehub import FakeHub  # noqa: E402

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "repos"
MODELS = ["openai-community/gpt2", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B"]


def use_cache_dir(home: str) -> None:
    from huggingface_hub import constants

    constants.HF_HOME = home
    constants.HF_HUB_CACHE = constants.HUGGINGFACE_HUB_CACHE = os.path.join(home, "hub")


def timed_fetch(hub: FakeHub, repo: str, home: str) -> tuple[float, int]:
    from hubmem import hub as hub_mod

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    hub = FakeHub(FIXTURES, latency_ms=args.latency_ms).start()
    home = tempfile.mkdtemp()
    os.environ.update(
        HF_ENDPOINT=hub.url, HF_HOME=home, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1"
    )
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ.pop("HF_TOKEN", None)

    print(f"fake Hub at {hub.url}, {args.latency_ms:.0f} ms per request, median of {args.repeat}")
    print(
        f"{'model':<28} {'cold req':>8} {'cold s':>7} {'cached req':>10} {'cached s':>8} {'no-endpoint req':>15} {'s':>6}"
    )
    for repo in MODELS:
        cold_t, cold_n = median_fetch(hub, repo, args.repeat, warm=False)
        warm_t, warm_n = median_fetch(hub, repo, args.repeat, warm=True)
        hub.sharded_endpoint = False
        off_t, off_n = median_fetch(hub, repo, args.repeat, warm=False)
        hub.sharded_endpoint = True
        print(f"{repo:<28} {cold_n:>8} {cold_t:>7.3f} {warm_n:>10} {warm_t:>8.3f} {off_n:>15} {off_t:>6.3f}")

    env = dict(os.environ)
    help_t = cli_time(["--help"], env, max(args.repeat, 10))
    with tempfile.TemporaryDirectory() as cli_home:
        env["HF_HOME"] = cli_home
        full_t = cli_time(["meta-llama/Llama-3.1-8B", "--format", "json"], env, args.repeat)
    print(f"hubmem --help start-up: {help_t:.3f} s (median of {max(args.repeat, 10)})")
    print(f"hubmem meta-llama/Llama-3.1-8B (CLI, end to end, transformers import included): {full_t:.3f} s")
    hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
