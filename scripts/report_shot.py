"""`make docs`: the demo audit's HTML report (the README's audit command, with --html) and a screenshot of
it in headless chromium, docs/audit-report.png, which the README shows. Against the fake Hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.docs import AUDIT_EXAMPLE
from tests.fakehub import FakeHub

ROOT = Path(__file__).resolve().parent.parent
SHOT = ROOT / "docs" / "audit-report.png"


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("report_shot: chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    hub = FakeHub(ROOT / "fixtures" / "repos", lazy=True).start()
    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "report.html"
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.url,
            "HF_HOME": work,
            "PYTHONPATH": str(ROOT),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        subprocess.run(
            [sys.executable, "-m", "hubmem.cli", "audit", *AUDIT_EXAMPLE, "--gpu", "h100", "--seq-len", "8192", "--html", str(page)],
            env=env, stdout=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        hub.stop()
        SHOT.parent.mkdir(exist_ok=True)
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=15000", "--window-size=1200,1500",
             f"--screenshot={SHOT}", page.as_uri()],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120,
        )  # fmt: skip
    print(f"wrote {SHOT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
