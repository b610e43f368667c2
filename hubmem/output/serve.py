"""`hubmem serve`: the engine's start-up plan per GPU, the KV pool, the concurrency and the verdict."""

from __future__ import annotations

from typing import Any

from hubmem.jobs.serve import SERVE_COLUMNS, ServeCheck, ServeResult
from hubmem.output.tables import RowStream, document, human, render_rows

COUNTS = ("kv_blocks", "kv_tokens")  # terms that count blocks or tokens, not bytes


def _gib(n: int, units: str) -> str:
    return f"{human(n, units)} {units}"


def render_serve(result: ServeResult, fmt: str = "table", units: str = "GiB", explain: bool = False) -> str:
    if fmt in ("json", "jsonl"):
        return document(result.to_dict(), fmt)
    p = result.plan
    o, st = p.options, p.worst
    if fmt == "csv":
        head = [
            "repo_id",
            "engine",
            "gpu",
            "num_gpus",
            "tp",
            "pp",
            "max_model_len",
            "weights",
            "activation_peak",
            "non_torch",
            "cuda_graphs",
            "kv_budget",
            "num_blocks",
            "kv_tokens",
            "max_concurrency",
            "starts",
            "reason",
        ]
        row = [
            result.repo_id,
            p.engine,
            p.gpu.name,
            p.num_gpus,
            o.tensor_parallel_size,
            o.pipeline_parallel_size,
            p.max_model_len,
            st.weights,
            st.activation_peak,
            st.non_torch,
            st.cuda_graphs,
            st.kv_budget,
            p.num_blocks,
            p.kv_tokens,
            round(p.max_concurrency, 2),
            p.starts,
            p.reason,
        ]
        return render_rows(head, [row], "csv")
    sha = f" ({result.sha[:7]})" if result.sha else ""
    layout = f"TP {o.tensor_parallel_size} × PP {o.pipeline_parallel_size}"
    lines = [
        (
            "repo",
            f"{result.repo_id}{sha} · {result.parameters:,} parameters · {result.architecture.attention_pattern()}",
        ),
        (
            "engine",
            f"{p.version} · {p.num_gpus}× {p.gpu.name} ({layout}) · {_gib(p.gpu.total_bytes, units)} each",
        ),
    ]
    if p.engine == "sglang":
        so: Any = o
        pool = p.kv_tokens * st.kv_bytes_per_token
        if [g.kind for g in st.groups] == ["full", "swa"]:  # SGLang's SWAKVPool: two pools
            full, swa = st.groups
            pool = (
                p.kv_tokens * full.page_bytes + int(p.kv_tokens * so.swa_full_tokens_ratio) * swa.page_bytes
            )
        state = st.state_bytes_per_sequence * (so.max_mamba_cache_size or 0)
        lines += [
            (
                "settings",
                f"--context-length {p.max_model_len:,} · --mem-fraction-static {so.mem_fraction_static} · "
                f"--chunked-prefill-size {so.chunked_prefill_size:,} · --cuda-graph-max-bs {so.cuda_graph_max_bs} · "
                f"--max-running-requests {so.max_running_requests} · --kv-cache-dtype {so.kv_cache_dtype}",
            ),
            (
                "per GPU",
                f"static {_gib(st.requested, units)} = weights {human(st.weights, units)} + "
                + (f"Mamba state {human(state, units)} + " if state else "")
                + "KV pool "
                f"{human(max(st.kv_budget, 0), units)}; the rest of the free memory is left for activations "
                "and CUDA graphs",
            ),
            (
                "KV cache",
                f"KV Cache is allocated. #tokens: {p.kv_tokens:,} ({st.kv_bytes_per_token:,} B/token), "
                + (
                    f"KV size: {pool / (1 << 30):.2f} GB"
                    if result.architecture.mla is not None
                    else f"K size: {pool // 2 / (1 << 30):.2f} GB"
                ),
            ),
            *(("", note) for note in p.notes),
            ("", f"requests of {p.max_model_len:,} tokens the pool holds at once: {p.max_concurrency:.2f}×"),
        ]
    else:
        lines += vllm_lines(result, units)
    verdict = "starts" if p.starts else f"refuses: {p.reason}"
    lines.append(("verdict", verdict))
    if p.suggestions:
        lines.append(("try", " · ".join(p.suggestions)))
    if result.fewest:
        lines.append(("fewest", result.fewest))
    width = max(len(k) for k, _ in lines)
    out = "".join(f"{k:<{width}}  {v}".rstrip() + "\n" for k, v in lines)
    if fmt == "markdown":
        out = "```\n" + out + "```\n"
    if explain:
        out += "\n" + "".join(
            f"{t.name:<16} {human(t.bytes, units) + ' ' + units if t.name not in COUNTS else f'{t.bytes:,}'}\n"
            f"{'':<16} = {t.formula}\n{'':<16} source: {t.source}\n"
            for t in p.terms
        )
        if p.defaults:
            out += (
                "defaults: "
                + "; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in p.defaults.items())
                + "\n"
            )
    return out


def vllm_lines(result: ServeResult, units: str) -> list[tuple[str, str]]:
    p = result.plan
    o, st = p.options, p.worst
    lines = [
        (
            "settings",
            f"--max-model-len {p.max_model_len:,} · --max-num-batched-tokens {o.max_num_batched_tokens:,} · "
            f"--max-num-seqs {o.max_num_seqs} · --gpu-memory-utilization {o.gpu_memory_utilization} · "
            f"--kv-cache-dtype {o.kv_cache_dtype} · --block-size {o.block_size}"
            + (" · --enforce-eager" if o.enforce_eager else ""),
        ),
        (
            "per GPU",
            f"requested {_gib(st.requested, units)} = weights {human(st.weights, units)} + profile peak "
            f"{human(st.activation_peak, units)} + non-torch {human(st.non_torch, units)} + KV "
            f"{human(max(st.kv_budget, 0), units)}"
            + ("" if st.kv_budget >= 0 else f" (short by {human(-st.kv_budget, units)})"),
        ),
        (
            "",
            "CUDA graphs: none (--enforce-eager)"
            if o.enforce_eager
            else f"CUDA graphs ~{_gib(st.cuda_graphs, units)} "
            + ("inside the budget" if o.cuda_graph_in_budget else "outside the requested share"),
        ),
    ]
    if st.groups:
        per_token = f"{st.kv_bytes_per_token:,} B/token" if st.kv_bytes_per_token else ""
        state = f"{st.state_bytes_per_sequence:,} B state/sequence" if st.state_bytes_per_sequence else ""
        lines.append(
            (
                "KV cache",
                f"{p.num_blocks:,} blocks · GPU KV cache size: {p.kv_tokens:,} tokens"
                + (f" ({', '.join(x for x in (per_token, state) if x)})" if per_token or state else ""),
            )
        )
        lines.append(
            ("", f"maximum concurrency for {p.max_model_len:,} tokens per request: {p.max_concurrency:.2f}×")
        )
    else:
        lines.append(("KV cache", "none (no layer keeps a KV cache)"))
    return lines


def render_serve_check(check: ServeCheck, fmt: str = "table", units: str = "GiB") -> str:
    """`hubmem check --engine`: the plan, the download against free disk, the outcome and exit code."""
    if fmt in ("json", "jsonl"):
        return document(check.to_dict(), fmt)
    if fmt == "csv":
        return render_serve(check.serve, fmt, units)
    out = render_serve(check.serve, "table", units)
    d = check.disk
    lines = [
        (
            "disk",
            f"download {human(d.needed_bytes, units)} {units} · free {human(d.free_bytes, units)} {units} at {d.cache_dir}",
        ),
        ("outcome", f"{check.outcome_text} (exit {check.exit_code})"),
    ]
    body = out + "".join(f"{k:<8}  {v}\n" for k, v in lines)
    return "```\n" + body + "```\n" if fmt == "markdown" else body


def serve_row_stream(fmt: str) -> RowStream:
    """json/jsonl/csv text of `audit --engine` rows, one at a time."""
    return RowStream(list(SERVE_COLUMNS), fmt, lambda r: list(r.fields().values()))


def render_serve_audit(rows: list[Any], fmt: str = "table", units: str = "GiB") -> str:
    """`hubmem audit --engine`: one row per repo with the engine's verdict, KV tokens and concurrency."""
    if fmt in ("json", "jsonl", "csv"):
        return render_rows(list(SERVE_COLUMNS), [list(r.fields().values()) for r in rows], fmt)
    headers = [
        "repo",
        "params",
        "GPUs",
        "max-model-len",
        f"weights/GPU {units}",
        "KV tokens",
        "max concurrency",
        "starts",
    ]
    table = []
    for r in rows:
        f = r.fields()
        if not r.ok:
            table.append([f["repo"], "", "", "", "", "", "", f"error {f['exit_code']}: {f['error']}"])
            continue
        table.append(
            [
                f["repo"],
                f"{f['params']:,}",
                f"{f['num_gpus']}× {f['gpu']} (TP {f['tp']} × PP {f['pp']})",
                f"{f['max_model_len']:,}",
                human(f["weights"], units),
                f"{f['kv_tokens']:,}",
                f"{f['max_concurrency']:.2f}×",
                "yes" if f["starts"] else f"no: {f['reason']}",
            ]
        )
    return render_rows(headers, table, fmt, numeric=(1, 3, 4, 5, 6))
