"""`hubmem GGUF-REPO`: one row per quant file under llama.cpp's memory model, the best file for a
GPU, and with --explain every term of the llama.cpp plan."""

from __future__ import annotations

from typing import Any

from hubmem.errors import InvalidInputError
from hubmem.jobs.gguf import GGUFCheckResult, GGUFEstimate
from hubmem.output.tables import document, human, render_rows
from hubmem.units import UNIT_NOTES, round_up


def render_gguf(est: GGUFEstimate, fmt: str = "table", units: str = "GiB", explain: bool = False) -> str:
    if explain and fmt not in ("table", "markdown"):
        raise InvalidInputError("--explain prints text: use --format table or markdown")
    if fmt in ("json", "jsonl"):
        return document(est.to_dict(), fmt)
    o = est.options
    tgt = est.target
    if fmt == "csv":
        headers = ["quant", "file_bytes", "parameters", "bits_per_weight", "weights_bytes", "kv_bytes",
                   "compute_bytes", "vram_bytes", "host_ram_bytes", "n_ctx", "n_gpu_layers", "fits", "max_gpu_layers", "max_ctx_size"]  # fmt: skip
        csv_rows: list[list[Any]] = [
            [r.model.quant, r.model.file_bytes, r.model.parameters, round(r.model.bits_per_weight, 4),
             r.model.tensor_bytes, r.plan.kv_bytes, max((d.compute for d in r.plan.gpus), default=0),
             r.plan.vram, r.plan.host.total, r.plan.n_ctx, r.plan.n_gpu_layers, r.fits, r.max_gpu_layers, r.max_ctx_size]
            for r in est.rows
        ]  # fmt: skip
        return render_rows(headers, csv_rows, "csv")
    headers = ["quant", f"file {units}", "bpw", f"weights {units}", f"KV {units}", f"compute {units}",
               f"VRAM/GPU {units}", f"host RAM {units}"]  # fmt: skip
    fitting = tgt is not None and o.fit
    if tgt is not None:
        headers += ["fits", "max -ngl", "max -c"] + (["--fit"] if fitting else [])
    rows: list[list[Any]] = []
    for r in est.rows:
        p = r.plan
        gpu = max(p.gpus, key=lambda d: d.total)
        row = [
            r.model.quant + (" (+mmproj)" if r.model.projector else ""),
            "?" if r.model.file_bytes is None else human(r.model.file_bytes, units),
            f"{r.model.bits_per_weight:.2f}",
            human(r.model.tensor_bytes, units),
            human(p.kv_bytes, units),
            human(gpu.compute, units),
            human(p.vram, units),
            human(p.host.total, units),
        ]
        if tgt is not None:
            n_layer = r.model.architecture.num_layers
            row += [
                "yes" if r.fits else "no",
                "-"
                if r.max_gpu_layers is None
                else ("all" if r.max_gpu_layers > n_layer else str(r.max_gpu_layers)),
                "-" if r.max_ctx_size is None else f"{r.max_ctx_size:,}",
            ]
            if fitting:
                row.append(_fit_text(r.fit_notes))
        rows.append(row)
    first = est.rows[0] if est.rows else None
    lines = []
    if first is not None:
        m, a = first.model, first.model.architecture
        # as asked (--fit may lower it per file on a target: its column says so)
        ctx = (
            first.plan.n_ctx
            if not fitting
            else round_up(o.ctx_size or m.context_length or 4096, 256 if o.flash else 32)
        )
        lines.append(
            f"{est.repo_id}: {len(est.rows)} GGUF model file(s), {m.gguf_arch} — {m.parameters / 1e9:,.2f}B params"
            + (f" ({m.active_parameters / 1e9:,.2f}B active)" if a.moe else "")
            + f", {a.num_layers} layers, h {a.hidden_size}, heads {a.num_heads}/{a.num_kv_heads}, "
            f"head dim {a.head_dim}, context {a.max_context or '?'}, {a.attention_pattern()}"
        )
        ngl = "all" if o.n_gpu_layers is None or o.n_gpu_layers < 0 else str(o.n_gpu_layers)
        lines.append(
            f"{o.preset}: -c {ctx:,} -np {o.parallel} -ngl {ngl} -ctk {o.cache_type_k} -ctv {o.cache_type_v} "
            f"-fa {o.flash_attn} -ub {min(o.ubatch_size, o.batch_size)}"
            + (" --swa-full" if o.swa_full else "") + (" -nkvo" if o.no_kv_offload else "")
            + (f" --reserve-outputs {o.reserve_outputs}" if o.reserve_outputs != "ubatch" else "")
            + (f" --kq-mask {o.kq_mask}" if o.kq_mask != "f32" else "")
            + (f" --ngl-output {o.ngl_output}" if o.ngl_output != "extra" else "")
            + (f" -ts {','.join(f'{x:g}' for x in o.tensor_split)}" if o.tensor_split else "")
            + (f" on {est.num_gpus} GPUs" if est.num_gpus > 1 else "")
            + (f" --fit on -fitt {o.fit_target // 1024**2}" if fitting else "")
        )  # fmt: skip
        lines.append("")
    lines.append(render_rows(headers, rows, fmt, numeric=(1, 2, 3, 4, 5, 6, 7)).rstrip("\n"))
    lines.append(
        f"{UNIT_NOTES[units]}; VRAM = weights of the offloaded layers (+ output layer, a tied model's as a copy of token_embd) + their KV + compute buffer "
        f"+ {human(o.overhead, units)} {units} CUDA context, on the fullest GPU; host RAM = token_embd and "
        "layers kept on the CPU" + (" (mmap: page cache)" if o.mmap else "") + "."
    )
    if tgt is not None:
        verdict = (
            f"best file for {tgt.describe()} ({human(tgt.usable_bytes, units)} {units} usable) at -c {first.plan.n_ctx:,}: {est.best}"
            if est.best and first
            else f"no file fits {tgt.describe()} fully offloaded at this context; see max -ngl / max -c"
        )
        lines += ["", verdict]
    if explain and first is not None:
        lines += ["", f"llama.cpp plan for {first.model.quant} (hubmem.runtimes.llamacpp cites each rule):"]
        lines += [f"  {name}: {text}" for name, text in first.plan.terms]
        bt = ", ".join(f"{k} {human(v, units)}" for k, v in first.model.bytes_by_type.items())
        lines.append(f"  weights by type ({units}): {bt}")
    return "\n".join(lines) + "\n"


def _fit_text(notes: tuple[str, ...]) -> str:
    """A row's --fit changes, short: "-ngl 19", "-c 131,072 -> 12,288", or "-" for none."""
    changed = [n.removeprefix("--fit: ") for n in notes if "->" in n or " of " in n]
    return "; ".join(changed) or "-"


def render_gguf_check(result: GGUFCheckResult, fmt: str = "table", units: str = "GiB") -> str:
    """`hubmem check` on a GGUF repo: the judged quant file on the GPUs, its download, the outcome."""
    if fmt in ("json", "jsonl", "csv"):
        if fmt == "csv":
            d = result.to_dict()
            flat = {k: v for k, v in d.items() if not isinstance(v, dict)}
            flat.update({f"fit_{k}": v for k, v in d["fit"].items() if not isinstance(v, dict | list)})
            flat.update({f"disk_{k}": v for k, v in d["disk"].items() if not isinstance(v, dict)})
            return render_rows(list(flat), [list(flat.values())], "csv")
        return document(result.to_dict(), fmt)
    est, row, plan = result.estimate, result.row, result.disk
    tgt = est.target
    assert tgt is not None
    p = row.plan
    n_layer = row.model.architecture.num_layers
    lines = [
        f"{est.repo_id}{f' ({est.sha[:7]})' if est.sha else ''}: {row.model.quant} ({', '.join(row.model.paths)})",
        f"  llama.cpp   -c {p.n_ctx:,} -np {est.options.parallel} -ngl {'all' if p.n_gpu_layers > n_layer else p.n_gpu_layers}"
        f" -ctk {est.options.cache_type_k} -ctv {est.options.cache_type_v} -fa {est.options.flash_attn}",
        f"  gpus        {tgt.describe()} · {human(tgt.usable_bytes, units)} {units} usable each",
        f"  memory      {human(p.vram, units)} {units} on the fullest GPU: {'fits' if row.fits else 'does not fit'}"
        + (
            ""
            if row.max_gpu_layers is None or row.fits
            else f" (largest -ngl that fits: {row.max_gpu_layers})"
        ),
        f"  host RAM    {human(p.host.total, units)} {units}",
        f"  download    {len(plan.to_pull)} file(s), {human(plan.needed_bytes, units)} {units} to pull "
        f"into {plan.cache_dir}: {human(plan.free_bytes, units)} {units} free",
        f"  outcome     {result.outcome_text} (exit {result.exit_code})",
    ]
    return "\n".join(lines) + "\n"
