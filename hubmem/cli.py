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

from . import errors

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
        type=click.Choice(["table", "json", "csv", "markdown"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(fn)
    return fn


def _memory(ctx: click.Context | None, param: click.Parameter | None, value: str | None) -> int | None:
    """click callback: '24GiB' / '80GB' -> bytes (a usage error, exit 2, when malformed)."""
    if value is None:
        return None
    from .gpus import parse_memory

    try:
        return parse_memory(value)
    except (ValueError, TypeError) as e:
        raise click.BadParameter(str(e)) from e


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
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds to wait for each Hub response."
)
@click.option("--explain", is_flag=True, help="Print every term with its inputs, formula and source.")
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
    timeout: float,
    explain: bool,
    fmt: str,
    units: str,
) -> None:
    """Estimate inference memory for REPO (a Hub repo id or a local folder) at each precision."""
    from .estimate import estimate as run_estimate
    from .report import render_estimate

    repo, revision = split_revision(repo, revision)
    est = run_estimate(
        repo,
        revision=revision,
        token=token,
        timeout=timeout,
        seq_len=seq_len,
        batch=batch,
        kv_dtype=kv_dtype,
        attn=attn,
        overhead_bytes=overhead,
        precisions=list(precisions) or None,
        all_logits=all_logits,
        serving_factor=serving_factor,
        encoder_len=encoder_len,
        image_tokens=image_tokens,
        state_dtype=state_dtype,
    )
    for warning in est.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(render_estimate(est, fmt, units, explain), nl=False)


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
    from .gpus import catalogue_rows
    from .report import render_rows

    unit = units
    rows = catalogue_rows()
    if fmt in ("json", "csv"):
        headers = ["key", "name", "memory_bytes", "vendor", "aliases", "source"]
        data = [
            [r["key"], r["name"], r["memory_bytes"], r["vendor"], " ".join(r["aliases"]), r["source"]]
            for r in rows
        ]
    else:
        headers = ["key", "name", f"memory {unit}", "vendor", "aliases", "source"]
        div = 1024**3 if unit == "GiB" else 10**9
        data = [
            [
                r["key"],
                r["name"],
                f"{r['memory_bytes'] / div:,.1f}",
                r["vendor"],
                ", ".join(r["aliases"]),
                r["source"],
            ]
            for r in rows
        ]
    click.echo(render_rows(headers, data, fmt), nl=False)


if __name__ == "__main__":  # pragma: no cover
    main()
