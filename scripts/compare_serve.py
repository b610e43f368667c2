"""hubmem's vLLM start-up plan against published start-up logs (fixtures/reference/vllm_logs.csv):
`python -m scripts.compare_serve` prints, per log, the weights per GPU, the KV token capacity and the
verdict, hubmem's and the log's, with the error. Pure: fixture headers, no Hub."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from hubmem.fit.gpus import find_gpu
from hubmem.hub.fetch import RepoSnapshot
from hubmem.jobs.serve import engine_options, plan_for
from hubmem.model.architecture import parse_architecture
from hubmem.runtimes import vllm as rt
from hubmem.units import GiB

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "fixtures" / "reference" / "vllm_logs.csv"


@dataclass(frozen=True)
class Compared:
    row: dict
    weights: int | None  # hubmem's weights per GPU (None: config-only fixture)
    kv_tokens: int | None  # hubmem's prediction end to end
    starts: bool | None
    tokens_from_logged_budget: int | None  # the engine's block arithmetic on the log's own KV memory
    # requested − the log's weights − hubmem's profile peak − non-torch memory: hubmem's budget terms
    # other than the weights, against the log's "Available KV cache memory" (None: not both logged)
    kv_memory_from_logged_weights: int | None = None
    activation_peak: int | None = None  # hubmem's profile peak (against a log's "torch peak memory increase")

    @property
    def weights_error(self) -> float | None:
        logged = _logged_weights(self.row)
        if self.weights is None or logged is None:
            return None
        return self.weights / logged - 1

    @property
    def tokens_error(self) -> float | None:
        if self.kv_tokens is None:
            return None
        return self.kv_tokens / int(self.row["logged_kv_tokens"]) - 1

    @property
    def kv_memory_error_gib(self) -> float | None:
        """hubmem's available KV memory (given the log's weights) − the log's, in GiB."""
        if self.kv_memory_from_logged_weights is None:
            return None
        return self.kv_memory_from_logged_weights / GiB - float(self.row["logged_available_kv_gib"])

    @property
    def activation_error(self) -> float | None:
        if self.activation_peak is None or not self.row.get("logged_peak_activation_gib"):
            return None
        return self.activation_peak / GiB / float(self.row["logged_peak_activation_gib"]) - 1

    @property
    def block_math_error(self) -> float | None:
        if self.tokens_from_logged_budget is None:
            return None
        return self.tokens_from_logged_budget / int(self.row["logged_kv_tokens"]) - 1


def rows() -> list[dict]:
    with LOGS.open() as f:
        return list(csv.DictReader(f))


def _snapshot(fixture: str) -> tuple[RepoSnapshot, bool]:
    name = fixture.replace("/", "__", 1)
    repo = ROOT / "fixtures" / "repos" / name
    if (repo / "layout.json").is_file():
        layout = json.loads((repo / "layout.json").read_text())
        headers = {
            f: {t[0]: (t[1], tuple(t[2])) for t in spec["tensors"]} for f, spec in layout["files"].items()
        }
        return RepoSnapshot(
            fixture, None, None, json.loads((repo / "config.json").read_text()), {}, headers
        ), True
    config = json.loads((ROOT / "fixtures" / "configs" / f"{name}.json").read_text())
    return RepoSnapshot(fixture, None, None, config, {}, {}), False


def _options(row: dict) -> dict:
    out: dict = {
        "gpu_memory_utilization": float(row["gpu_memory_utilization"]),
        "tensor_parallel_size": int(row["tp"]),
        "pipeline_parallel_size": int(row["pp"]),
        "kv_cache_dtype": row["kv_cache_dtype"] or "auto",
    }
    for name in ("max_model_len", "max_num_batched_tokens", "max_num_seqs", "block_size"):
        if row.get(name):
            out[name] = int(row[name])
    for name in ("quantization", "sampler", "mxfp4_backend"):
        if row.get(name):
            out[name] = row[name]
    return out


def _logged_weights(row: dict) -> int | None:
    """The weights the log prints, or the ones its row assumes from another log of the same checkpoint."""
    value = row["logged_weights_gib"] or row.get("assumed_weights_gib")
    return round(float(value) * GiB) if value else None


def _memory_given_logged_weights(row: dict, plan: rt.ServePlan) -> int | None:
    logged = _logged_weights(row)
    if logged is None or not row["logged_available_kv_gib"]:
        return None
    return plan.worst.kv_budget + plan.worst.weights - logged


def compare(row: dict) -> Compared:
    snapshot, has_headers = _snapshot(row["fixture"])
    arch = parse_architecture(snapshot.config)
    try:
        gpu = find_gpu(row["gpu"])
    except ValueError:  # an accelerator outside the catalogue: the log's own total
        spec = rt.GpuSpec(row["gpu"], None, round(float(row["gpu_total_gib"]) * GiB), None)
    else:
        total = round(float(row["gpu_total_gib"]) * GiB) if row["gpu_total_gib"] else gpu.usable_bytes
        spec = rt.GpuSpec(gpu.name, gpu.key, total, gpu.compute_capability)
    if not row["logged_kv_tokens"]:  # a weights-only row (perhaps with the log's available KV memory)
        from hubmem.model.tensors import count_tensors

        linear = count_tensors(snapshot.headers, snapshot.config).linear_params
        plan = plan_for(snapshot, arch, linear, spec, engine_options(None, _options(row)))
        starts = plan.starts if row["logged_starts"] else None
        memory = _memory_given_logged_weights(row, plan)
        return Compared(row, plan.worst.weights, None, starts, None, memory, plan.worst.activation_peak)
    budget = round(float(row["logged_available_kv_gib"]) * GiB)
    if row["engine"] == "sglang":
        # SGLang's pool is budget // cell_size (model_runner.profile_max_num_token)
        from hubmem.runtimes import sglang

        cell = sglang.cell_size(arch, int(row["tp"]), 2 if row["kv_cache_dtype"] in ("", "auto") else 1)
        weights = None
        if has_headers:  # "Load weight end. ... mem usage=X GB": this rank's weights as SGLang loads them
            given = {"tp": int(row["tp"])}
            if row["gpu_memory_utilization"]:
                given["mem_fraction_static"] = float(row["gpu_memory_utilization"])
            weights = plan_for(snapshot, arch, 0, spec, engine_options(None, given, "sglang")).worst.weights
        return Compared(row, weights, None, None, budget // cell)
    options = engine_options(None, _options(row))
    weights = tokens = starts = memory = peak = None
    if has_headers:
        from hubmem.model.tensors import count_tensors

        plan = plan_for(
            snapshot, arch, count_tensors(snapshot.headers, snapshot.config).linear_params, spec, options
        )
        weights, tokens, starts = plan.worst.weights, plan.kv_tokens, plan.starts
        memory = _memory_given_logged_weights(row, plan)
        peak = plan.worst.activation_peak
    # the block arithmetic alone, on the log's available memory (what the engine itself had)
    tp = options.tensor_parallel_size
    length = options.max_model_len or arch.max_context or 2048
    groups = rt.kv_groups(
        arch,
        rt.layer_kinds(arch),
        tp=tp,
        kv_bytes=2 if options.kv_cache_dtype == "auto" else 1,
        kv_dtype=options.kv_cache_dtype,
        state_bytes=(2, 2),
        block_size=options.block_size or rt.DEFAULT_BLOCK_SIZE,
        max_model_len=length,
        batched=options.max_num_batched_tokens or 2048,
    )
    from_log = rt.token_capacity(groups, rt.num_blocks(groups, budget))
    if peak is None and row.get("logged_peak_activation_gib"):  # a config-only fixture: the peak alone
        e = 4 if options.dtype == "float32" else 2
        peak, _ = rt.activation_peak(
            arch,
            tokens=options.max_num_batched_tokens or 2048,
            num_reqs=options.max_num_seqs or 256,
            tp=tp,
            e=e,
            vocab_padded=-(-arch.vocab_size // 64) * 64,
            sampler=options.sampler,
        )
    return Compared(row, weights, tokens, starts, from_log, memory, peak)


def comparison() -> list[Compared]:
    return [compare(r) for r in rows()]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x * 100:+.1f} %"


def table(results: list[Compared]) -> str:
    from hubmem.output.tables import render_rows

    out = []
    for c in results:
        r = c.row
        setting = (
            f"{r['engine']}, {r['tp']}× {r['gpu']}"
            + (f", util {r['gpu_memory_utilization']}" if r["gpu_memory_utilization"] else "")
            + (f", len {int(r['max_model_len']):,}" if r["max_model_len"] else "")
            + "".join(f", {k} {r[k]}" for k in ("quantization", "sampler", "mxfp4_backend") if r.get(k))
        )
        out.append(
            [
                f"[{r['id']}]({r['source'].split(' ')[0]})",
                r["model_in_log"],
                setting,
                r["logged_weights_gib"]
                or (f"({r['assumed_weights_gib']}, assumed)" if r.get("assumed_weights_gib") else ""),
                "" if c.weights is None else f"{c.weights / GiB:.4f}",
                _pct(c.weights_error),
                f"{int(r['logged_kv_tokens']):,}" if r["logged_kv_tokens"] else "",
                "" if c.kv_tokens is None else f"{c.kv_tokens:,}",
                _pct(c.tokens_error),
                ""
                if c.tokens_from_logged_budget is None
                else f"{c.tokens_from_logged_budget:,} ({_pct(c.block_math_error)})",
                ""
                if c.activation_error is None
                else f"{r['logged_peak_activation_gib']} / {c.activation_peak / GiB:.2f} ({_pct(c.activation_error)})",
                f"{r['logged_available_kv_gib']}" if r["logged_available_kv_gib"] else "",
                ""
                if c.kv_memory_from_logged_weights is None
                else f"{c.kv_memory_from_logged_weights / GiB:.2f} ({c.kv_memory_error_gib:+.2f})",
                r["logged_starts"] + ("" if c.starts is None else f" / {'yes' if c.starts else 'no'}"),
                "known gap: " + r["known_gap"].split(":")[0] if r["known_gap"] else "",
            ]
        )
    return render_rows(
        [
            "log", "model", "setting", "weights GiB (log)", "hubmem", "error", "KV tokens (log)", "hubmem",
            "error", "from the log's KV memory", "profile peak GiB (log / hubmem)", "KV GiB (log)", "hubmem, given the log's weights (GiB off)",
            "starts (log / hubmem)", "note",
        ],
        out,
        "markdown",
    )  # fmt: skip


if __name__ == "__main__":
    print(table(comparison()), end="")
