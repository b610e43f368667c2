"""`make demo`: serve the bundled fixture repos on 127.0.0.1 and run the real `hubmem` CLI against them.

The machine this runs on may have no route to the Hub, so the fake Hub stands in for it: same HTTP API,
same huggingface_hub code path (HF_ENDPOINT points at it). Against the real Hub, drop HF_ENDPOINT.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fakehub import FakeHub

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "repos"
DEMO_REPO = "Qwen/Qwen2.5-7B-Instruct"


def main() -> int:
    args = sys.argv[1:] or [DEMO_REPO, "--seq-len", "32768"]
    hubmem = Path(sys.executable).with_name("hubmem")
    with FakeHub(FIXTURES, lazy=True).start() as hub, tempfile.TemporaryDirectory() as home:
        from tests import gguf_fixtures

        gguf_fixtures.register(
            hub, full_tokenizer=True
        )  # e.g. `make demo ARGS=bartowski/Llama-3.2-3B-Instruct-GGUF`
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": home, "HF_HUB_DISABLE_TELEMETRY": "1"}
        env.pop("HF_HUB_OFFLINE", None)
        print(f"$ HF_ENDPOINT={hub.url} hubmem {' '.join(args)}", file=sys.stderr, flush=True)
        code = subprocess.call([str(hubmem), *args], env=env)
        print(report(hub.requests), file=sys.stderr)
        return code


def report(requests: list) -> str:
    """'(N HTTP requests; B bytes of weight files served: H of safetensors headers, T of tensor data)': the
    bytes each GET's reply carried from a weight file, as the fake Hub logs them (Range span lengths);
    tensor data is what lies past a safetensors or GGUF header (a header probe of 100,001 bytes, or the last read of a growing GGUF read, reaches into it)."""
    served = sum(r.weight_file_bytes for r in requests)
    data = sum(r.tensor_bytes for r in requests)
    return (
        f"({len(requests)} HTTP requests; {served:,} bytes of weight files served: "
        f"{served - data:,} of headers (safetensors, GGUF), {data:,} of tensor data)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
