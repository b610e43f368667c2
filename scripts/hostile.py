"""`make fuzz`'s second half: issue 11's catalogue of hostile input, hostile servers and killed parents,
each case a real `hubmem` process against the fake Hub (tests/fakehub.py, hostile modes included) or a
local folder, every run given the fake Hub's test token in one of its forms (as is, or with a trailing
newline, carriage return or space).

Per case: the exit code it must end with (a documented one), exactly one line on stderr unless it
succeeds, its peak RSS (the child's own VmHWM) under 300 MB, its wall time under 60 s (else a
hang, killed), and the token in no form in stdout, stderr or any file written under $HF_HOME; and
nothing written outside $HF_HOME/hubmem/. Then the parent kills: `hubmem audit` with its forked fetch
helpers blocked in their requests, the parent alone killed with TERM, HUP and KILL; no helper may
outlive it by 2 s.

    python -m scripts.hostile            (from the repository root)

prints one line per case and the totals, and exits 1 if any case broke the bar.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hubmem.errors import exit_code_table
from tests.fakehub import TEST_TOKEN, FakeHub

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "repos"
RSS_LIMIT = 300 * 1024**2
WALL_LIMIT = 60.0
SURVIVAL_LIMIT = 2.0
TOKEN_FORMS = ["{}", "{}\n", "{}\r", "{} "]
SECRET_PARTS = (TEST_TOKEN, TEST_TOKEN.removeprefix("hf_"))  # no run may print either
DOCUMENTED = {code for code, _, _ in exit_code_table()}
TINY = "test/tiny"


@dataclass
class Case:
    name: str
    args: list[str]
    code: int
    setup: Callable[[FakeHub], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    token: bool = True  # pass --token (in the case's form)
    unprivileged: bool = False  # run without root's power to read any file (a mode-000 file is unreadable)


@dataclass
class Outcome:
    case: Case
    code: int | None
    stderr: str
    stdout: str
    rss: int
    wall: float
    problems: list[str]


def tiny_config() -> dict:
    return json.loads((FIXTURES / "test__tiny" / "config.json").read_text())


def tiny_weights() -> bytes:
    from hubmem.dtypes import SAFETENSORS_BITS

    layout = json.loads((FIXTURES / "test__tiny" / "layout.json").read_text())
    header, offset = {}, 0
    for name, dtype, shape in layout["files"]["model.safetensors"]["tensors"]:
        n = 1
        for d in shape:
            n *= d
        size = n * SAFETENSORS_BITS[dtype] // 8
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    return safetensors(header, offset)


def safetensors(header: dict, data: int) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + bytes(data)


def local_cases(base: Path) -> list[Case]:
    """Local folders: hostile config.json values, safetensors headers and paths."""
    made: list[Case] = []

    def folder(name: str, config: dict | str | None = None, weights: bytes | None = None) -> str:
        path = base / name
        path.mkdir()
        text = config if isinstance(config, str) else json.dumps(tiny_config() if config is None else config)
        (path / "config.json").write_text(text)
        (path / "model.safetensors").write_bytes(tiny_weights() if weights is None else weights)
        return str(path)

    def mutated(**changes: object) -> dict:
        return {**tiny_config(), **changes}

    configs = {
        "model_type is a list": mutated(model_type=["llama"]),
        "text_config is a list": mutated(text_config=[1]),
        "num_hidden_layers 10**30": mutated(num_hidden_layers=10**30),
        "num_hidden_layers 100,000,000": mutated(num_hidden_layers=100_000_000),
        "num_hidden_layers 2,147,483,648": mutated(num_hidden_layers=2_147_483_648),
        "num_key_value_heads -8": mutated(num_key_value_heads=-8),
        "head_dim -64": mutated(head_dim=-64),
        "intermediate_size -1": mutated(intermediate_size=-1),
        "max_position_embeddings -4096": mutated(max_position_embeddings=-4096),
        "hidden_size 1.5": mutated(hidden_size=1.5),
        "vocab_size NaN": mutated(vocab_size=float("nan")),
    }
    for i, (name, config) in enumerate(configs.items()):
        made.append(Case(f"config: {name}", [folder(f"c{i}", config)], 14))
    nested = '{"model_type": "llama", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    made.append(Case("config: 100,000 nested lists", [folder("nested", nested)], 14))
    made.append(
        Case(
            "check a T4, negative KV heads",
            ["check", folder("t4", mutated(num_key_value_heads=-8)), "--gpu", "t4"],
            14,
        )
    )

    def entry(offsets: list[int], shape: list[int] | None = None) -> dict:
        return {"dtype": "F32", "shape": shape or [4], "data_offsets": offsets}

    headers = {
        "offsets beyond the file": safetensors({"w": entry([0, 16])}, 8),
        "overlapping tensors": safetensors({"w": entry([0, 16]), "v": entry([8, 24])}, 24),
        "a shape of 1e30 elements": safetensors({"w": entry([0, 16], [10**15, 10**15])}, 16),
        "no tensors": safetensors({"__metadata__": {}}, 0),
        "bytes not elements x dtype": safetensors({"w": entry([0, 12])}, 12),
    }
    for i, (name, weights) in enumerate(headers.items()):
        made.append(Case(f"header: {name}", [folder(f"h{i}", None, weights)], 16))
    (base / "prefix").mkdir()
    (base / "prefix" / "config.json").write_text(json.dumps(tiny_config()))
    (base / "prefix" / "model.safetensors").write_bytes(struct.pack("<Q", 2**40))
    made.append(Case("header: length prefix of 1 TiB", [str(base / "prefix")], 18))

    escape = Path(folder("escape"))
    (escape / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "../../etc/passwd"}})
    )
    made.append(Case("local index naming ../../etc/passwd", [str(escape)], 16))
    made.append(Case("hubmem / (not a model folder)", ["/"], 13))

    plain = folder("plain")
    for value in ("inf", "nan", "1e400", "-7B"):
        made.append(Case(f"--params {value}", [plain, "--params", value], 3))
    for value in ("-1", "nan", "0", "inf"):
        made.append(Case(f"--serving-factor {value}", [plain, "--serving-factor", value], 3))
    for option, value in (("--seq-len", "-1"), ("--batch", "0"), ("--timeout", "nan"), ("--timeout", "-1")):
        made.append(Case(f"{option} {value}", [plain, option, value], 3))
    made.append(Case("--overhead inf", [plain, "--overhead", "infGiB"], 3))
    regular = base / "regular-file"
    regular.write_text("not a folder")
    made.append(
        Case(
            "check --cache-dir a regular file",
            ["check", TINY, "--gpu", "h100", "--cache-dir", str(regular)],
            3,
        )
    )
    made.append(Case("audit -j 1000000", ["audit", TINY, "-j", "1000000"], 3))
    made.append(Case("--token ''", [TINY, "--token", ""], 3, token=False))
    made.append(Case("--token with inner space", [TINY, "--token", f"{TEST_TOKEN} x"], 3, token=False))
    made.append(Case("HF_HOME a regular file", [TINY], 4, env={"HF_HOME": str(regular)}))
    made.append(Case("HF_HOME /dev/null", [TINY], 4, env={"HF_HOME": "/dev/null"}))
    made.append(Case("repo id with a newline", ["te\nst/tiny"], 3))
    made.append(Case("revision ../../x", [TINY, "--revision", "../../x"], 3))
    made.append(Case("REPO@../../x", [f"{TINY}@../../../../tmp/x"], 3))
    for name in ("config.json", "model.safetensors"):
        unreadable = Path(folder(f"unreadable-{name}"))
        (unreadable / name).chmod(0)
        made.append(Case(f"unreadable {name} (mode 000, as a user)", [str(unreadable)], 4, unprivileged=True))
    made += gguf_cases(base)
    return made


def gguf_cases(base: Path) -> list[Case]:
    """Local GGUF files with hostile keys (tests/gguf_fixtures.py writes them with the gguf package),
    llama.cpp options and serve options that `make fuzz` found wanting."""
    from tests import gguf_fixtures as g

    spec = g.llama32_3b()
    tensors = g.typed_tensors(spec, "Q4_K_M")

    def gguf(name: str, **values: tuple) -> str:
        return g.sparse_file(base / f"{name}-Q4_K_M.gguf", g.with_llama_keys(spec, **values), tensors)

    good = gguf("good")
    made = [
        Case("GGUF: a 64-bit (u64) key", [gguf("u64", context_length=(8192, "u64"))], 0),
        Case("GGUF: key_length NaN", [gguf("nan", attention__key_length=(float("nan"), "f32"))], 15),
        Case("GGUF: value_length a list", [gguf("list", attention__value_length=([1, 2], "arr"))], 15),
        Case("GGUF: a value with a newline", [gguf("nl", feed_forward_length=("a\nb", "str"))], 15),
        Case("GGUF: -ts inf,1", [good, "--tensor-split", "inf,1", "--num-gpus", "2"], 3),
        Case("GGUF: -c 10**30", [good, "--ctx-size", str(10**30)], 3),
        Case("GGUF: --parallel 0", [good, "--parallel", "0"], 3),
        Case("serve: --gpu-memory-utilization nan", ["serve", TINY, "--gpu", "h100", "--gpu-memory-utilization", "nan"], 3),
        Case("serve: --max-model-len -5", ["serve", TINY, "--gpu", "h100", "--max-model-len", "-5"], 3),
        Case("serve: SGLang on a 2 GiB GPU", ["serve", TINY, "--engine", "sglang", "--gpu-memory", "2GiB"], 19),
        Case("serve: --tensor-parallel-size 1000000", ["serve", TINY, "--gpu", "h100", "--tensor-parallel-size", "1000000"], 19),
    ]  # fmt: skip
    return made


def hub_cases() -> list[Case]:
    """The fake Hub misbehaving, and repos whose answers carry hostile content."""
    tiny = json.loads((FIXTURES / "test__tiny" / "layout.json").read_text())

    def fault(*calls: tuple[str, tuple, dict]) -> Callable[[FakeHub], None]:
        def setup(hub: FakeHub) -> None:
            for method, args, kwargs in calls:
                getattr(hub, method)(*args, **kwargs)

        return setup

    def repo(repo_id: str, **kwargs: object) -> tuple[str, tuple, dict]:
        return ("add_repo", (repo_id,), {"layout": tiny, "config": tiny_config(), **kwargs})

    return [
        Case(
            "server ignores Range (2.47 GB file)",
            ["meta-llama/Llama-3.2-1B"],
            0,
            fault(("hostile", ("model.safetensors", "ignore-range"), {"method": "GET"})),
        ),
        Case(
            "endless model_info",
            [TINY],
            20,
            fault(("hostile", ("/api/models/test/tiny", "endless"), {"method": "GET"})),
        ),
        Case(
            "endless config.json",
            [TINY],
            20,
            fault(("hostile", ("resolve/main/config.json", "endless"), {"method": "GET"})),
        ),
        Case(
            "endless header probe",
            [TINY],
            0,
            fault(("hostile", ("model.safetensors", "endless"), {"method": "GET"})),
        ),
        Case(
            "endless sharded answer",
            ["Qwen/Qwen2.5-7B"],
            20,
            fault(("hostile", ("safetensors-metadata", "endless"), {})),
        ),
        # repos never fetched before: a cached copy would answer instead (exit 0 with a warning)
        Case(
            "config.json one byte every 0.5 s, --timeout 1",
            ["acme/drip", "--timeout", "1"],
            21,
            fault(
                repo("acme/drip"),
                (
                    "hostile",
                    ("acme/drip/resolve/main/config.json", "drip"),
                    {"method": "GET", "interval": 0.5},
                ),
            ),
        ),
        Case(
            "status line and headers one byte every 0.2 s, --timeout 1",
            ["acme/dripheaders", "--timeout", "1"],
            21,
            fault(
                repo("acme/dripheaders"),
                (
                    "hostile",
                    ("acme/dripheaders/resolve/main/config.json", "drip-headers"),
                    {"method": "GET", "interval": 0.2},
                ),
            ),
        ),
        Case(
            "silent Hub, --timeout 1",
            ["acme/silent", "--timeout", "1"],
            21,
            fault(
                repo("acme/silent"),
                ("hang", ("/api/models/acme/silent", 30), {}),
            ),
        ),
        Case(
            "400 from the sharded endpoint",
            ["Qwen/Qwen2.5-7B"],
            0,
            fault(("fail", ("safetensors-metadata", 400), {"times": None})),
        ),
        Case(
            "500 on every model_info",
            [TINY],
            20,
            fault(("fail", ("/api/models/test/tiny", 500), {"times": None})),
        ),
        Case(
            "malformed index of several lines",
            ["acme/badindex"],
            16,
            fault(
                repo(
                    "acme/badindex",
                    files={
                        "model.safetensors.index.json": b"<html>\n<body>\nnot an index\n</body>\n</html>\n"
                    },
                    hub={"sharded_endpoint": False},
                )
            ),
        ),
        Case(
            "server echoes the token in its error",
            ["acme/echo"],
            20,
            fault(
                repo("acme/echo"),
                (
                    "fail",
                    ("/acme/echo", 500),
                    {"times": None, "headers": {"X-Error-Message": f"Authorization: Bearer {TEST_TOKEN}"}},
                ),
            ),
        ),
        Case(
            "config.json naming the token",
            ["acme/named", "--explain"],
            0,
            fault(
                (
                    "add_repo",
                    ("acme/named",),
                    {"layout": tiny, "config": {**tiny_config(), "model_type": TEST_TOKEN}},
                ),
            ),
        ),
        Case(
            "audit of good, missing, gated and echoing repos",
            ["audit", TINY, "nobody/nothing", "acme/gated", "acme/echo", "--format", "json"],
            30,
            fault(
                repo("acme/gated", hub={"gated": "manual", "token": "hf_someone_else"}),
                repo("acme/echo"),
                (
                    "fail",
                    ("/acme/echo", 500),
                    {"times": None, "headers": {"X-Error-Message": f"token {TEST_TOKEN}"}},
                ),
            ),
        ),
        Case(
            "audit of 12 repos whose file lists each time out once, --timeout 1",
            ["audit", *(f"acme/load{i:02d}" for i in range(12)), "--timeout", "1", "--format", "csv"],
            0,
            fault(
                *(repo(f"acme/load{i:02d}") for i in range(12)),
                *(("hang", (f"/api/models/acme/load{i:02d}", 3), {"times": 1}) for i in range(12)),
            ),
        ),
        Case(
            "refs/pr/1 online",
            [TINY.replace("tiny", "prs"), "--revision", "refs/pr/1"],
            0,
            fault(repo("test/prs", hub={"revisions": ["refs/pr/1"]})),
        ),
        Case(
            "refs/pr/1 offline, cached by the run before",
            ["test/prs", "--revision", "refs/pr/1"],
            0,
            None,
            {"HF_HUB_OFFLINE": "1"},
        ),
    ]


def measured_cli(report: Path) -> list[str]:
    """The command running `hubmem` that writes its peak RSS in bytes to `report`.PID: VmHWM of
    /proc/self/status (the high-water mark of the process's memory), every 20 ms from a thread and once
    more when it ends (sys.exit, or os._exit as `hubmem audit` leaves). That thread running, hubmem
    forks no fetch helper (hubmem.hub.batch.helper_count: never from a process with a thread, as on one
    CPU), so what a run reads is held by the measured process. (wait4's ru_maxrss would not do: Linux
    carries the parent's peak across fork and exec, so a child of a 400 MB pytest worker "peaks" at
    400 MB.)"""
    code = (
        "import os, sys, threading, time\n"
        "def peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        kib = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))\n"
        f"    path = {str(report)!r} + '.' + str(os.getpid())\n"
        "    tmp = path + '.' + str(threading.get_ident())\n"  # written whole, then renamed: atomic
        "    with open(tmp, 'w') as out:\n"
        "        out.write(str(kib * 1024))\n"
        "    os.replace(tmp, path)\n"
        "def sample():\n"
        "    while True:\n"
        "        peak()\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=sample, daemon=True).start()\n"
        "_exit = os._exit\n"
        "def leave(code):\n"
        "    peak()\n"
        "    _exit(code)\n"
        "os._exit = leave\n"
        "from hubmem.cli import main\n"
        "sys.argv[0] = 'hubmem'\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    peak()\n"
    )
    return [sys.executable, "-c", code]


def peak_of(report: Path) -> int:
    """The largest peak any process of a `measured_cli` run wrote (0: each was killed first)."""
    peaks = [0]
    for path in report.parent.glob(report.name + ".*"):
        if path.name.count(".") > 1:  # a sample being written
            continue
        try:
            peaks.append(int(path.read_text()))
        except ValueError:
            pass
    return max(peaks)


def run(case: Case, hub: FakeHub, home: Path, form: str) -> Outcome:
    args = [*case.args, "--token", form.format(TEST_TOKEN)] if case.token else case.args
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(home),
        "HF_TOKEN": "",
        "NO_COLOR": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **case.env,
    }
    env.pop("HF_HUB_OFFLINE", None) if "HF_HUB_OFFLINE" not in case.env else None
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory() as tmp,
    ):
        report = Path(tmp) / "peak"
        start = time.monotonic()
        from tests.test_paths import unprivileged

        extra = unprivileged() if case.unprivileged else {}
        proc = subprocess.Popen([*measured_cli(report), *args], env=env, stdout=out, stderr=err, **extra)
        timer = threading.Timer(WALL_LIMIT, proc.kill)
        timer.start()
        proc.wait()
        timer.cancel()
        wall = time.monotonic() - start
        rss = peak_of(report)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    problems = []
    code = None if wall >= WALL_LIMIT else proc.returncode
    if code is None:
        problems.append("hang (killed)")
    elif code != case.code:
        problems.append(f"exit {code}, expected {case.code}")
    if code not in DOCUMENTED:
        problems.append(f"undocumented exit {code}")
    if code not in (0, None) and stderr.count("\n") != 1:
        problems.append(f"{stderr.count(chr(10))} lines on stderr")
    if "Traceback" in stderr:
        problems.append("traceback")
    if rss > RSS_LIMIT:
        problems.append(f"peak RSS {rss / 1024**2:.0f} MiB")
    cached = (
        "".join(p.read_text(errors="replace") for p in home.rglob("*") if p.is_file())
        if home.is_dir()
        else ""
    )
    if any(part in text for part in SECRET_PARTS for text in (stdout, stderr, cached)):
        problems.append("the token is echoed")
    return Outcome(case, code, stderr, stdout, rss, wall, problems)


def parent_kills(hub: FakeHub, home: Path) -> list[tuple[str, float | None]]:
    """(signal, seconds the last helper outlived its parent, None: one still ran after 5 s)."""
    from tests.test_parent_death import alive, children, wait_for

    tiny = json.loads((FIXTURES / "test__tiny" / "layout.json").read_text())
    repos = [f"acme/slow{i}" for i in range(6)]
    for repo in repos:
        hub.add_repo(repo, layout=tiny, config=tiny_config())
    results = []
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGKILL):
        hub.reset()
        hub.hang("/acme/slow", 60)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(home),
            "HF_TOKEN": "",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "hubmem.cli", "audit", *repos, "--timeout", "50", "--token", TEST_TOKEN],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        helpers: set[int] = set()
        try:
            wait_for(lambda: hub.count(path="/acme/slow") >= 2, 60)
            helpers = children(proc.pid)
            os.kill(proc.pid, sig)
            killed = time.monotonic()
            proc.wait(timeout=10)
            gone = wait_for(lambda found=helpers: not any(alive(h) for h in found), 5, 0.01)
            results.append(
                (f"{sig.name}, {len(helpers)} helpers", time.monotonic() - killed if gone else None)
            )
        finally:
            for pid in helpers:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    hub.reset()
    return results


def main() -> int:
    failed = 0
    outcomes: list[Outcome] = []
    with FakeHub(FIXTURES, lazy=True) as hub, tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        home = base / "hf_home"
        home.mkdir()
        (base / "local").mkdir()
        cases = local_cases(base / "local") + hub_cases()
        before = sorted(p.name for p in base.iterdir())
        for i, case in enumerate(cases):
            hub.reset()
            if case.setup is not None:
                case.setup(hub)
            outcome = run(case, hub, home, TOKEN_FORMS[i % len(TOKEN_FORMS)])
            outcomes.append(outcome)
            mark = "ok  " if not outcome.problems else "FAIL"
            line = outcome.stderr.strip().splitlines()[0][:110] if outcome.stderr.strip() else "-"
            print(
                f"{mark} exit {outcome.code!s:>4} {outcome.rss / 1024**2:5.0f} MiB {outcome.wall:5.1f} s  "
                f"{case.name}: {line}{'  <- ' + '; '.join(outcome.problems) if outcome.problems else ''}",
                flush=True,
            )
        outside = sorted(set(p.name for p in base.iterdir()) - set(before))
        written = (
            sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file()) if home.is_dir() else []
        )
        strays = [p for p in written if not p.startswith("hubmem/")] + outside
        strays += [str(p) for p in (Path("/tmp/x"), ROOT / "x") if p.exists()]
        kills = parent_kills(hub, home)
    failed = sum(bool(o.problems) for o in outcomes)
    print(f"\n{len(outcomes)} cases: {len(outcomes) - failed} as required, {failed} not")
    print(
        f"peak RSS {max(o.rss for o in outcomes) / 1024**2:.0f} MiB (bar {RSS_LIMIT // 1024**2}); "
        f"longest run {max(o.wall for o in outcomes):.1f} s; token echoed in {sum('the token is echoed' in o.problems for o in outcomes)} runs; "
        f"files written outside $HF_HOME/hubmem/: {strays or 'none'}"
    )
    for name, survived in kills:
        print(
            f"parent killed with {name}: "
            + ("a helper still ran 5 s later" if survived is None else f"helpers gone {survived:.2f} s later")
        )
    bad_kills = sum(s is None or s > SURVIVAL_LIMIT for _, s in kills)
    return 1 if failed or strays or bad_kills else 0


if __name__ == "__main__":
    raise SystemExit(main())
