"""`make bench` (part 2): the single-model CLI side by side with its peers against the fake Hub.

Each tool runs as a fresh process with an empty cache, interleaved (every repeat runs every tool on every
model, in a rotating order, so that the machine's load falls on all alike), `--latency-ms` per request:
- hubmem: `hubmem REPO --format json` (parameters, weights per precision, KV cache, activations);
- hf-mem 0.5.6 (bench-only dependency), through scripts/hfmem_loopback.py, plain and `--experimental`
  (which also reads config.json and estimates the KV cache, as hubmem does);
- huggingface_hub as a naive client would use it: `get_safetensors_metadata` + `hf_hub_download("config.json")`.
Per tool and model: requests, sequential round trips (FakeHub.round_trips), wall median/min/max, CPU,
peak RSS (the process's own and its waited-for children's: tests/measured.py), time from start to the first
request, time from the last answer to exit, and the wall ratio to hubmem. Then hubmem's rerun pinned to
a commit (warm cache) and `hubmem --help`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.bench import clean_environ
from tests.fakehub import FakeHub
from tests.measured import run_measured

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "repos"
MODELS = [
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B",
    "deepseek-ai/DeepSeek-V3",
]
NAIVE = """import sys
from huggingface_hub import get_safetensors_metadata, hf_hub_download
meta = get_safetensors_metadata(sys.argv[1])
hf_hub_download(sys.argv[1], "config.json")
print(sum(meta.parameter_count.values()))
"""
HUBMEM = str(Path(sys.executable).with_name("hubmem"))
TOOLS: dict[str, list[str]] = {
    "hubmem": [HUBMEM, "{repo}", "--format", "json"],
    "hf-mem": [sys.executable, "-m", "scripts.hfmem_loopback", "--model-id", "{repo}", "--json-output"],
    "hf-mem --experimental": [
        *[sys.executable, "-m", "scripts.hfmem_loopback", "--model-id", "{repo}", "--json-output"],
        "--experimental",
    ],
    "huggingface_hub (naive)": [sys.executable, "-c", NAIVE, "{repo}"],
}


@dataclass
class Run:
    wall: float
    cpu: float
    rss_mb: float
    requests: int
    round_trips: int
    first_request: float  # start -> first request's arrival
    after_last: float  # last answer -> exit
    code: int


def run_once(hub: FakeHub, argv: list[str], env: dict[str, str]) -> Run:
    hub.clear_log()
    m = run_measured(argv, env=env, cwd=ROOT)
    log = hub.requests
    return Run(
        wall=m.end - m.start,
        cpu=m.cpu,
        rss_mb=m.peak_rss / 2**20,
        requests=len(log),
        round_trips=hub.round_trips(),
        first_request=min((r.arrived for r in log), default=m.end) - m.start,
        after_last=m.end - max((r.answered for r in log), default=m.start),
        code=m.returncode,
    )


def cold(hub: FakeHub, tool: str, repo: str, env: dict[str, str]) -> Run:
    with tempfile.TemporaryDirectory() as home:
        argv = [a.format(repo=repo) for a in TOOLS[tool]]
        return run_once(hub, argv, {**env, "HF_HOME": home})


def report(model: str, runs: dict[str, list[Run]]) -> None:
    base = statistics.median(r.wall for r in runs["hubmem"])
    print(f"\n{model}")
    print(
        f"  {'tool':<24} {'req':>4} {'trips':>5} {'wall s (min-max)':>19} {'CPU s':>6} {'RSS MB':>7} "
        f"{'1st req s':>9} {'after s':>7} {'ratio':>6}"
    )
    for tool, rs in runs.items():
        wall = statistics.median(r.wall for r in rs)
        bad = sum(r.code != 0 for r in rs)
        print(
            f"  {tool:<24} {max(r.requests for r in rs):>4} {max(r.round_trips for r in rs):>5} "
            f"{wall:>7.2f} ({min(r.wall for r in rs):.2f}-{max(r.wall for r in rs):.2f}) "
            f"{statistics.median(r.cpu for r in rs):>6.2f} {statistics.median(r.rss_mb for r in rs):>7.0f} "
            f"{statistics.median(r.first_request for r in rs):>9.2f} "
            f"{statistics.median(r.after_last for r in rs):>7.2f} {wall / base:>6.2f}"
            + (f"  ({bad} runs failed)" if bad else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=MODELS)
    parser.add_argument("--tools", nargs="*", default=list(TOOLS))
    args = parser.parse_args()

    hub = FakeHub(FIXTURES, latency_ms=args.latency_ms).start()
    env = clean_environ()
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    env["PYTHONPATH"] = str(ROOT)
    print(
        f"peers against the fake Hub at {args.latency_ms:.0f} ms per request, cold cache, "
        f"median of {args.repeat} interleaved runs, load average {os.getloadavg()[0]:.1f}"
    )
    runs: dict[str, dict[str, list[Run]]] = {m: {t: [] for t in args.tools} for m in args.models}
    order = list(args.tools)
    for _ in range(args.repeat):
        for model in args.models:
            for tool in order:
                runs[model][tool].append(cold(hub, tool, model, env))
        order = order[1:] + order[:1]
    for model in args.models:
        report(model, runs[model])

    with tempfile.TemporaryDirectory() as home:
        repo = args.models[0]
        pinned = f"{repo}@{hub.sha(repo)}"
        warm_env = {**env, "HF_HOME": home}
        run_once(hub, [HUBMEM, pinned, "--format", "json"], warm_env)
        reruns = [run_once(hub, [HUBMEM, pinned, "--format", "json"], warm_env) for _ in range(args.repeat)]
        print(
            f"\nhubmem {pinned} rerun (metadata cached): {max(r.requests for r in reruns)} requests, "
            f"{statistics.median(r.wall for r in reruns):.2f} s"
        )
        helps = [run_once(hub, [HUBMEM, "--help"], warm_env) for _ in range(max(args.repeat, 10))]
        print(f"hubmem --help: {statistics.median(r.wall for r in helps):.3f} s")
    hub.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
