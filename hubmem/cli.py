"""Command line: parse options, call the library, render. Nothing else lives here.

Heavy modules (huggingface_hub, transformers) are imported only when a command needs them, so
`hubmem --help` starts in well under 0.3 s.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from hubmem import errors

DEBUG_ENV = "HUBMEM_DEBUG"


class DefaultGroup(click.Group):
    """`hubmem REPO ...` means `hubmem estimate REPO ...`."""

    default_command = "estimate"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def handle_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn HubmemError into `Error: ...` + its exit code; anything else into exit 1 (traceback on demand)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except errors.HubmemError as e:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(f"Error: {e}", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except Exception as e:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(
                f"Error: internal error: {type(e).__name__}: {e} (set {DEBUG_ENV}=1 for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--format and --units, shared by every command that prints results."""
    fn = click.option(
        "--units",
        callback=lambda ctx, param, value: "GiB" if value.lower() == "gib" else "GB",
        type=click.Choice(["GiB", "GB"], case_sensitive=False),
        default="GiB",
        show_default=True,
        help="GiB = 1024³ bytes, GB = 10⁹ bytes (tables only; JSON and CSV hold raw bytes).",
    )(fn)
    fn = click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "jsonl", "csv", "markdown"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(fn)
    return fn


def _memory(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> int | None:
    """click callback: '24GiB' / '80GB' -> bytes (a usage error, exit 2, when malformed)."""
    if value is None:
        return None
    from hubmem.fit.gpus import parse_memory

    try:
        return parse_memory(value)
    except (ValueError, TypeError) as e:
        raise click.BadParameter(str(e)) from e


def gpu_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--gpu, --num-gpus, --gpu-memory: the GPUs a fit verdict is asked about."""
    fn = click.option(
        "--gpu-memory",
        callback=_memory,
        help="Usable memory of a GPU not in the catalogue, e.g. 24GiB (instead of --gpu).",
    )(fn)
    fn = click.option(
        "--num-gpus",
        type=int,
        default=1,
        show_default=True,
        help="How many of them, split tensor-parallel (the overhead is paid on each). With --train: --gpus.",
    )(fn)
    fn = click.option(
        "--gpu",
        help="Verdict for this GPU (`hubmem gpus` lists names; any case, e.g. h100, a100-80gb, 4090); "
        "with --train, per regime on --gpus of them.",
    )(fn)
    return fn


def _parameter_count(
    ctx: click.Context | None, param: click.Parameter | None, value: str | None
) -> int | None:
    """click callback: '6e9', '6B', '1.5B', '350M' -> an integer parameter count."""
    if value is None:
        return None
    text = value.strip().upper()
    scale = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}.get(text[-1:], 1)
    try:
        number = float(text[:-1] if scale > 1 else text)
    except ValueError as e:
        raise click.BadParameter(f"'{value}' is not a parameter count (e.g. 6e9, 6B, 350M)") from e
    return round(number * scale)


TRAINING_OPTIONS = (
    "regimes",
    "optimizer",
    "micro_batch",
    "grad_checkpointing",
    "lora_rank",
    "lora_targets",
    "grad_dtype",
    "objective",
    "activation_rule",
    "gpus",
    "zero",
    "fsdp",
    "tp",
    "pp",
    "offload",
)


def training_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--train and what it takes: regime, optimizer, batch shape, LoRA, sharding and parallelism."""
    options = [
        click.option(
            "--train",
            type=click.Choice(["full", "lora", "qlora"]),
            help="Estimate training instead of inference: full fine-tuning, LoRA, or QLoRA (NF4 base).",
        ),
        click.option(
            "--regime",
            "regimes",
            multiple=True,
            type=click.Choice(["fp32", "bf16", "mixed", "int8"]),
            help="Training rows (repeatable). Default: fp32 bf16 mixed. int8 = the S0 article's all-1-byte rule.",
        ),
        click.option(
            "--optimizer",
            type=click.Choice(["adamw", "adamw-8bit", "sgd", "sgd-momentum", "adafactor"]),
            default="adamw",
            show_default=True,
            help="Optimizer states: AdamW 2 per param, 8-bit Adam 2 bytes, SGD momentum 1, SGD 0, Adafactor factored.",
        ),
        click.option(
            "--micro-batch", type=int, default=1, show_default=True, help="Sequences per GPU per step."
        ),
        click.option(
            "--grad-checkpointing",
            is_flag=True,
            help="Keep each layer's input only and recompute in backward.",
        ),
        click.option("--lora-rank", type=int, default=16, show_default=True, help="LoRA rank r."),
        click.option(
            "--lora-targets",
            default="q,k,v,o,gate,up,down",
            show_default=True,
            callback=lambda ctx, param, value: tuple(t.strip() for t in value.split(",") if t.strip()),
            help="Projections LoRA adapts (comma-separated from q,k,v,o,gate,up,down). MLA (DeepSeek V2/V3): "
            "q = q_a_proj + q_b_proj (or q_proj), k and v = kv_a_proj_with_mqa + kv_b_proj, o = o_proj.",
        ),
        click.option(
            "--grad-dtype",
            type=click.Choice(["fp32", "16bit"]),
            default="fp32",
            show_default=True,
            help="Gradients in the mixed regime: fp32 (torch.autocast, HF Trainer) or 16bit (DeepSpeed, Megatron).",
        ),
        click.option(
            "--objective",
            type=click.Choice(["causal-lm", "classifier", "logits-sum"]),
            default="causal-lm",
            show_default=True,
            help="Loss: causal-LM cross-entropy (fp32 b·s·V buffers), a classification head, or logits.sum().",
        ),
        click.option(
            "--activations",
            "activation_rule",
            type=click.Choice(["korthikanti", "simple"]),
            default="korthikanti",
            show_default=True,
            help="Activation rule: Korthikanti et al. 2022 (generalised) or the S0 article's (h + i)·s·L·bytes.",
        ),
        click.option(
            "--gpus", type=int, help="GPUs in total = tp × pp × data-parallel replicas (default: tp × pp)."
        ),
        click.option(
            "--zero",
            type=click.Choice(["0", "1", "2", "3"]),
            default="0",
            show_default=True,
            help="DeepSpeed ZeRO stage.",
        ),
        click.option(
            "--fsdp",
            type=click.Choice(["full", "grad-op"]),
            help="PyTorch FSDP sharding (full = ZeRO-3, grad-op = ZeRO-2).",
        ),
        click.option("--tp", type=int, default=1, show_default=True, help="Tensor-parallel size."),
        click.option("--pp", type=int, default=1, show_default=True, help="Pipeline-parallel stages (1F1B)."),
        click.option(
            "--offload",
            type=click.Choice(["optimizer", "params"]),
            help="Move optimizer states + master weights (and with 'params' the weights) to host RAM.",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hubmem")
def main() -> None:
    """How much GPU memory will a Hugging Face model need? Reads config.json and safetensors
    headers, never the weights.

    \b
    hubmem Qwen/Qwen2.5-7B-Instruct            same as: hubmem estimate Qwen/Qwen2.5-7B-Instruct
    hubmem ./local-snapshot --seq-len 8192
    hubmem gpus                                the GPU catalogue used for "fits on"
    """


@main.command()
@click.argument("repo")
@click.option("--revision", help="Branch, tag or commit (default: main). Also REPO@REVISION.")
@click.option("--token", help="Hub token (default: HF_TOKEN or the saved login).")
@click.option(
    "--seq-len", type=int, help="Tokens per sequence (prompt + generated). Default: the model's max context."
)
@click.option("--batch", type=int, default=1, show_default=True, help="Concurrent sequences.")
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    type=click.Choice(["fp32", "bf16", "fp16", "fp8", "int8", "int4", "stored"]),
    help="Rows to show (repeatable). Default: fp32 bf16 fp8 int8 int4, + 'stored' for quantized checkpoints.",
)
@click.option(
    "--kv-dtype",
    type=click.Choice(["auto", "fp32", "bf16", "fp16", "fp8", "int8", "fp8_ds_mla"]),
    default="auto",
    show_default=True,
    help="KV cache dtype; auto = each row's compute dtype (16-bit for quantized rows). "
    "fp8_ds_mla: vLLM's 656-byte FP8 MLA latent (DeepSeek MLA models only).",
)
@click.option(
    "--state-dtype",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="SSM / linear-attention state dtype (Mamba, Jamba, Qwen3-Next, Falcon-H1); "
    "auto = each row's compute dtype, as vLLM's --mamba-ssm-cache-dtype auto.",
)
@click.option(
    "--encoder-len",
    type=int,
    help="Encoder-decoder models: encoder tokens (frames), fixing the cross-attention KV. "
    "Default: the model's source length (Whisper 1500, T5 n_positions, BART max_position_embeddings).",
)
@click.option(
    "--image-tokens",
    type=int,
    default=0,
    show_default=True,
    help="Multimodal models: image tokens (per image × images) added to --seq-len for KV and activations.",
)
@click.option(
    "--attn",
    type=click.Choice(["sdpa", "eager"]),
    default="sdpa",
    show_default=True,
    help="Attention implementation: eager materialises the b·a·s² score matrix, sdpa/flash does not.",
)
@click.option(
    "--overhead",
    default="1GiB",
    show_default=True,
    callback=_memory,
    help="CUDA context + framework reserve per GPU, e.g. 1GiB, 1.3GB, 500MiB.",
)
@click.option(
    "--all-logits", is_flag=True, help="Keep logits for every position (b·s·V·4), not just the last."
)
@click.option(
    "--serving-factor",
    type=float,
    help="Rule of thumb instead of KV/activation terms: total = weights × FACTOR (seed S4 uses 1.2).",
)
@click.option(
    "--params",
    "parameters",
    callback=_parameter_count,
    help="Replace the parameter count (e.g. 6e9, 7B) keeping config.json's dimensions (the seeds' round models).",
)
@training_options
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for each Hub response."
)
@click.option("--explain", is_flag=True, help="Print every term with its inputs, formula and source.")
@gpu_options
@output_options
@handle_errors
def estimate(
    repo: str,
    revision: str | None,
    token: str | None,
    seq_len: int | None,
    batch: int,
    precisions: tuple[str, ...],
    kv_dtype: str,
    state_dtype: str,
    encoder_len: int | None,
    image_tokens: int,
    attn: str,
    overhead: int,
    all_logits: bool,
    serving_factor: float | None,
    parameters: int | None,
    train: str | None,
    timeout: float,
    explain: bool,
    gpu: str | None,
    num_gpus: int,
    gpu_memory: int | None,
    fmt: str,
    units: str,
    **training: Any,
) -> None:
    """Estimate inference memory for REPO (a Hub repo id or a local folder) at each precision,
    or with --train the per-GPU training memory for each precision regime."""
    from hubmem.fit.verdicts import target, verdicts
    from hubmem.jobs.estimate import estimate as run_estimate
    from hubmem.output.render import render_estimate

    if train is not None and num_gpus != 1:
        raise errors.InvalidInputError("with --train, --gpus N sets the number of GPUs (tp × pp × replicas)")
    tgt = target(gpu, gpu_memory, 1 if train is not None else num_gpus)
    repo, revision = split_revision(repo, revision)
    train_settings = training_settings(
        train, training, attn=attn, overhead=overhead, batch=batch, precisions=precisions
    )
    est = run_estimate(
        repo,
        revision=revision,
        token=token,
        timeout=timeout,
        fetch_beside=True,
        seq_len=seq_len,
        batch=batch,
        kv_dtype=kv_dtype,
        attn=attn,
        overhead_bytes=overhead,
        precisions=list(precisions) or None,
        all_logits=all_logits,
        serving_factor=serving_factor,
        parameters=parameters,
        train=train_settings,
        train_gpu=(tgt.name, tgt.usable_bytes) if tgt is not None and train is not None else None,
        encoder_len=encoder_len,
        image_tokens=image_tokens,
        state_dtype=state_dtype,
    )
    for warning in est.warnings:
        click.echo(f"Warning: {warning}", err=True)
    fit = verdicts(est, tgt) if tgt is not None and train is None else None
    click.echo(render_estimate(est, fmt, units, explain, fit), nl=False)


def training_settings(train: str | None, options: dict[str, Any], **shared: Any) -> Any:
    """TrainingSettings from the --train options; an error when they are given without --train."""
    ctx = click.get_current_context()
    given = [
        name
        for name in (*TRAINING_OPTIONS, "batch", "precisions", "precision")
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    ]
    if train is None:
        extra = [n for n in given if n in TRAINING_OPTIONS]
        if extra:
            flag = "--" + extra[0].replace("_", "-").replace("regimes", "regime").replace(
                "activation-rule", "activations"
            )
            raise errors.InvalidInputError(f"{flag} applies to training: add --train full|lora|qlora")
        return None
    if "batch" in given:
        raise errors.InvalidInputError("--batch is for inference; with --train use --micro-batch")
    if "precisions" in given or "precision" in given:
        raise errors.InvalidInputError(
            "--precision is for inference; with --train use --regime fp32|bf16|mixed|int8"
        )
    from hubmem.memory.training import DEFAULT_REGIMES, TrainingSettings

    return TrainingSettings(
        mode=train,
        optimizer=options["optimizer"],
        micro_batch=options["micro_batch"],
        grad_checkpointing=options["grad_checkpointing"],
        attn=shared["attn"],
        lora_rank=options["lora_rank"],
        lora_targets=options["lora_targets"],
        grad_dtype=options["grad_dtype"],
        objective=options["objective"],
        activation_rule=options["activation_rule"],
        gpus=options["gpus"],
        zero=int(options["zero"]),
        fsdp=options["fsdp"],
        tp=options["tp"],
        pp=options["pp"],
        offload=options["offload"],
        overhead_bytes=shared["overhead"],
        regimes=tuple(dict.fromkeys(options["regimes"])) or DEFAULT_REGIMES,
    )


def split_revision(repo: str, revision: str | None) -> tuple[str, str | None]:
    """'org/name@rev' -> ('org/name', 'rev'); an explicit --revision wins over the suffix."""
    if "@" in repo and not os.path.exists(repo):
        repo, _, suffix = repo.partition("@")
        if revision is None:
            revision = suffix or None
    return repo, revision


@main.command()
@output_options
def gpus(fmt: str, units: str) -> None:
    """List the GPU catalogue: names, aliases, memory and the source of each figure."""
    from hubmem.fit.gpus import catalogue_rows
    from hubmem.output.render import render_rows

    rows = catalogue_rows()
    if fmt in ("json", "jsonl", "csv"):
        headers = [
            "key",
            "name",
            "memory_bytes",
            "usable_bytes",
            "vendor",
            "aliases",
            "source",
            "usable_source",
        ]
        data = [[r[h] if h != "aliases" else " ".join(r["aliases"]) for h in headers] for r in rows]
        numeric: tuple[int, ...] = ()
    else:
        headers = ["key", "name", f"memory {units}", f"usable {units}", "vendor", "aliases", "source"]
        div = 1024**3 if units == "GiB" else 10**9
        data = [
            [
                r["key"],
                r["name"],
                f"{r['memory_bytes'] / div:,.1f}",
                f"{r['usable_bytes'] / div:,.2f}",
                r["vendor"],
                ", ".join(r["aliases"]),
                r["source"],
            ]
            for r in rows
        ]
        numeric = (2, 3)
    click.echo(render_rows(headers, data, fmt, numeric=numeric), nl=False)
    if fmt in ("table", "markdown"):
        click.echo(
            "usable = what torch reports as the device's total (total_memory), measured or by the rule "
            "in usable_source (--format json); fit verdicts compare with it.",
            err=True,
        )


def exit_now(code: int) -> None:
    """Flush and leave at once. A plain exit would wait for the requests still in flight: they run on
    huggingface_hub / concurrent.futures threads that the interpreter joins at exit (up to --timeout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# Options `audit` and `check` take from `estimate`, the same click.Option objects (one definition).
SHARED_MODEL_OPTIONS = (
    "token",
    "seq_len",
    "batch",
    "kv_dtype",
    "attn",
    "overhead",
    "all_logits",
    "serving_factor",
    "timeout",
)
PRECISION_CHOICE = click.Choice(["auto", "fp32", "bf16", "fp16", "fp8", "int8", "int4", "stored"])
PRECISION_HELP = (
    "Precision to judge. auto: the checkpoint as stored when quantized, fp32 for a float32 config, else bf16."
)


def borrow_options(command: click.Command, source: click.Command, names: tuple[str, ...]) -> None:
    """Give `command` the options called `names` of `source`, before its output options."""
    borrowed = [p for p in source.params if p.name in names]
    at = next((i for i, p in enumerate(command.params) if p.name == "fmt"), len(command.params))
    command.params[at:at] = borrowed


# `audit --train` and `check --train` judge one regime: mixed precision with fp32 master weights unless
# --regime says otherwise (what the HF Trainer's bf16=True runs).
DEFAULT_TRAINING_REGIME = "mixed"


def _one_regime_training(
    train: str | None, kwargs: dict[str, Any], options: dict[str, Any], num_gpus: int, tgt: Any, what: str
) -> None:
    """Move the --train options out of `kwargs` into `options` (estimate_snapshot's train, train_gpu)
    for commands that judge a single regime; exit 3 on a combination they cannot show."""
    trained = {name: kwargs.pop(name) for name in TRAINING_OPTIONS}
    if train is not None:
        if num_gpus != 1:
            raise errors.InvalidInputError(
                "with --train, --gpus N sets the number of GPUs (tp × pp × replicas)"
            )
        if len(trained["regimes"]) > 1:
            raise errors.InvalidInputError(f"{what} shows one training regime: pass --regime once")
        trained["regimes"] = trained["regimes"] or (DEFAULT_TRAINING_REGIME,)
    settings = training_settings(train, trained, attn=options["attn"], overhead=options["overhead_bytes"])
    if settings is not None:
        options.update(train=settings, train_gpu=(tgt.name, tgt.usable_bytes) if tgt else None)


def _model_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """estimate_snapshot's options out of the borrowed CLI options."""
    options = {k: kwargs.pop(k) for k in SHARED_MODEL_OPTIONS if k not in ("token", "timeout")}
    options["overhead_bytes"] = options.pop("overhead")
    return options


@main.command()
@click.argument("repos", nargs=-1)
@click.option(
    "-f",
    "--file",
    "files",
    multiple=True,
    help="Read repo ids from FILE: one per line (REPO or REPO@REVISION), # comments, blank lines; - is stdin.",
)
@click.option(
    "-j",
    "--jobs",
    type=int,
    default=16,  # hubmem.jobs.audit.DEFAULT_JOBS (tests/test_audit.py keeps them equal)
    show_default=True,
    help="Repos fetched at once (Linux: on threads in forked helpers, one per 8 jobs, at most one per CPU).",
)
@click.option("--precision", type=PRECISION_CHOICE, default="auto", show_default=True, help=PRECISION_HELP)
@click.option(
    "--sort",
    "sort_key",
    help="Order rows by a JSON column (total, params, download, ...); -COLUMN: descending.",
)
@training_options
@gpu_options
@output_options
@handle_errors
def audit(
    repos: tuple[str, ...],
    files: tuple[str, ...],
    jobs: int,
    precision: str,
    sort_key: str | None,
    train: str | None,
    gpu: str | None,
    num_gpus: int,
    gpu_memory: int | None,
    fmt: str,
    units: str,
    **kwargs: Any,
) -> None:
    """Audit many repos at once: one row each, in input order (REPO[@REVISION] arguments, -f FILE, - for stdin).

    An id that fails (missing, gated, malformed, timeout) becomes an error row and the others go on;
    the exit code is 30 when any failed. Ctrl-C prints the rows that finished and exits 130.
    With --train each row is the per-GPU training memory of one regime (--regime, default mixed).
    """

    from hubmem.fit import verdicts as fit
    from hubmem.hub import fetch as hub
    from hubmem.jobs import audit as audit_mod
    from hubmem.output.render import render_audit

    token, timeout = kwargs.pop("token"), kwargs.pop("timeout")
    options = _model_options(kwargs)
    tgt = fit.target(gpu, gpu_memory, num_gpus)
    _one_regime_training(train, kwargs, options, num_gpus, tgt, "an audit row")
    refs = audit_mod.read_ids(repos, files, sys.stdin)

    def fetch(ref: str) -> hub.RepoSnapshot:
        repo, revision = split_revision(ref, None)
        return hub.fetch(repo, revision=revision, token=token, timeout=timeout)

    def evaluate(ref: str, fetched: Any) -> audit_mod.AuditRow:
        return audit_mod.audit_row(ref, fetched, precision=precision, target=tgt, options=options)

    bar = audit_mod.progress_bar(len(refs))
    with bar:
        result = audit_mod.run_audit(refs, fetch, evaluate, jobs=jobs, on_done=lambda _row: bar.update())
    rows = audit_mod.sort_rows(result.rows, sort_key) if sort_key else result.rows
    click.echo(render_audit(rows, fmt, units, tgt), nl=False)
    if result.interrupted:
        click.echo(f"Interrupted: {len(result.rows)} of {result.total} repos finished.", err=True)
        exit_now(130)
    if result.failed:
        names = ", ".join(r.ref for r in result.failed[:5]) + (", …" if len(result.failed) > 5 else "")
        raise errors.BatchFailedError(f"{len(result.failed)} of {result.total} repos failed: {names}")


@main.command()
@click.argument("repo")
@click.option("--revision", help="Branch, tag or commit (default: main). Also REPO@REVISION.")
@click.option("--precision", type=PRECISION_CHOICE, default="auto", show_default=True, help=PRECISION_HELP)
@click.option(
    "--cache-dir", help="Where the weights would be downloaded (default: HF_HUB_CACHE, i.e. $HF_HOME/hub)."
)
@training_options
@gpu_options
@output_options
@handle_errors
def check(
    repo: str,
    revision: str | None,
    precision: str,
    cache_dir: str | None,
    train: str | None,
    gpu: str | None,
    num_gpus: int,
    gpu_memory: int | None,
    fmt: str,
    units: str,
    **kwargs: Any,
) -> None:
    """Before pulling REPO: will it fit on the GPUs, and is there disk for the download?

    Exit 0: ready to pull; 40: will not fit on the GPUs; 41: fits, but not enough disk where the
    Hugging Face cache lives; other codes: errors (see the README). With --train: the per-GPU
    training memory of one regime (--regime, default mixed) on --gpus of them.
    """
    from hubmem.fit import verdicts as fit
    from hubmem.hub import disk
    from hubmem.jobs.estimate import estimate as run_estimate
    from hubmem.jobs.estimate import normalise_precision
    from hubmem.output.render import render_check

    token, timeout = kwargs.pop("token"), kwargs.pop("timeout")
    options = _model_options(kwargs)
    tgt = fit.target(gpu, gpu_memory, num_gpus)
    if tgt is None:
        raise errors.InvalidInputError("check needs --gpu NAME or --gpu-memory SIZE")
    _one_regime_training(train, kwargs, options, num_gpus, tgt, "check")
    repo, revision = split_revision(repo, revision)
    chosen = None if precision == "auto" or train is not None else [normalise_precision(precision)]
    est = run_estimate(
        repo, revision=revision, token=token, timeout=timeout, fetch_beside=True, precisions=chosen, **options
    )
    for warning in est.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if train is not None:
        verdict: Any = None
        fits = est.training_fit[est.training_rows[0].regime]["fits"]
    else:
        verdict = fit.verdict(est, fit.default_precision(est) if chosen is None else chosen[0], tgt)
        fits = verdict.fits
    files = disk.files_to_download(est.weight_files) if est.source != "local" else {}
    plan = disk.plan_download(est.repo_id, est.sha, files, disk.cache_dir(cache_dir))
    outcome = errors.WillNotFitError if not fits else errors.NotEnoughDiskError if not plan.enough else None
    click.echo(render_check(est, verdict, plan, outcome, fmt, units), nl=False)
    if outcome is not None:
        sys.exit(outcome.exit_code)


borrow_options(audit, estimate, SHARED_MODEL_OPTIONS)
borrow_options(check, estimate, SHARED_MODEL_OPTIONS)


if __name__ == "__main__":  # pragma: no cover
    main()
