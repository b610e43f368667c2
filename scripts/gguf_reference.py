"""hubmem's GGUF figures against published llama.cpp logs (fixtures/reference/llamacpp_logs.json): the
README's "GGUF repos" reference table (`make docs`) and tests/test_gguf_reference.py. Each row runs the
CLI (`--format json`) on the fixture repo of the logged model file with the logged settings."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "fixtures" / "reference" / "llamacpp_logs.json"
UNITS = {"MiB": 1024**2, "GiB": 1024**3, "B": 10**9, "count": 1}
FLAGS = {
    "ctx_size": "-c", "parallel": "-np", "ubatch_size": "-ub", "flash_attn": "-fa", "n_gpu_layers": "-ngl",
    "runtime": "--runtime", "batch_size": "-b", "cache_type_k": "-ctk", "cache_type_v": "-ctv",
    "kv_unified": "-kvu", "reserve_outputs": "--reserve-outputs", "kq_mask": "--kq-mask",
    "ngl_output": "--ngl-output",
}  # fmt: skip

Invoke = Callable[[list[str]], str]


def entries() -> list[dict]:
    return json.loads(LOGS.read_text())["entries"]


# quantity -> hubmem's figure from one JSON row of `hubmem REPO --quant Q --format json`
VALUES: dict[str, Callable[[dict], float | dict]] = {
    "kv": lambda row: row["kv_bytes"],
    "compute": lambda row: max(g["compute"] for g in row["gpus"]),
    "weights": lambda row: row["weights_bytes"],
    "params": lambda row: row["parameters"],
    "repeating_params": lambda row: row["repeating_parameters"],
    "tensor_types": lambda row: row["tensors_by_type"],
    "gpu_weights": lambda row: row["gpus"][0]["weights"],
    "gpu_kv": lambda row: row["gpus"][0]["kv"],
    "gpu_compute": lambda row: row["gpus"][0]["compute"],
    "gpu_total": lambda row: row["gpus"][0]["weights"] + row["gpus"][0]["kv"] + row["gpus"][0]["compute"],
    "host_weights": lambda row: row["host"]["weights"],
    "host_kv": lambda row: row["host"]["kv"],
    "host_compute": lambda row: row["host"]["compute"],
    "host_total": lambda row: row["host"]["weights"] + row["host"]["kv"] + row["host"]["compute"],
}


def hubmem_value(row: dict, quantity: str) -> float | dict:
    return VALUES[quantity](row)


def comparison(invoke: Invoke) -> list[dict]:
    """One dict per entry: the entry, hubmem's value in the entry's unit, the error in %."""
    out = []
    for e in entries():
        args = [e["repo"], "--quant", e["quant"], "--format", "json"]
        for k, v in e["settings"].items():
            args += [FLAGS[k]] if v is True else [FLAGS[k], str(v)]  # a flag such as -kvu takes no value
        (row,) = json.loads(invoke(args))["rows"]
        value = hubmem_value(row, e["quantity"])
        if isinstance(value, dict):
            error = 0.0 if value == e["published"] else float("inf")
            out.append({**e, "hubmem": value, "error_pct": error})
            continue
        mine = value / UNITS[e["unit"]]
        out.append({**e, "hubmem": mine, "error_pct": (mine - e["published"]) / e["published"] * 100})
    return out


def table(rows: list[dict]) -> str:
    from hubmem.output.tables import render_rows

    def show(v: float | dict, digits: int) -> str:
        if isinstance(v, dict):
            return ", ".join(f"{k} {n}" for k, n in sorted(v.items()))
        return f"{v:,.{digits + 2}f}" if digits else f"{v:,}"

    body = [
        [
            f"{r['repo'].split('/')[1]} {r['quant']}",
            r["quantity"]
            + (
                " ("
                + " ".join(FLAGS[k] if v is True else f"{FLAGS[k]} {v}" for k, v in r["settings"].items())
                + ")"
                if r["settings"]
                else ""
            ),
            f"{show(r['published'], r['digits'])} {r['unit']}"
            if r["unit"] != "count"
            else show(r["published"], 0),
            f"{show(r['hubmem'], r['digits'])} {r['unit']}" if r["unit"] != "count" else show(r["hubmem"], 0),
            f"{r['error_pct']:+.2f} %" if r["error_pct"] != float("inf") else "differs",
            f"±{r['tolerance_pct']} %" + (" (known miss)" if r.get("known_miss") else ""),
            r["source"].split(" ")[0],
        ]
        for r in rows
    ]
    return render_rows(
        ["model file", "quantity", "published (llama.cpp log)", "hubmem", "error", "allowed", "source"],
        body,
        "markdown",
    )


def main() -> int:
    from scripts.compare_measured import with_fake_hub

    sys.stdout.write(with_fake_hub(lambda invoke: table(comparison(invoke))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
