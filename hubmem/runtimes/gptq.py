"""GPTQ and AWQ 4-bit checkpoints through transformers ≥ 5, whose GPTQ and AWQ integrations hand the
Linear layers to GPTQModel (`hf_select_quant_linear_v2`, backend "auto"): which kernel runs on which GPU,
and what each keeps on the device beyond the packed weights. Pure rules, no torch. (transformers
integrations/awq.py `replace_with_awq_linear` and GPTQConfig's `select_quant_linear` both call
`gptqmodel.utils.importer.hf_select_quant_linear_v2` with the config's `backend`, "auto" unless set.)

Read at ModelCloud/GPTQModel 7.3.4 (commit f4c327a), `gptqmodel/nn_modules/qlinear/*.py`:

- Selection (`utils/importer.py`: the valid kernel of highest `SUPPORTS_FORMATS` priority). GPTQ:
  swordfish 101 (Blackwell: `utils/swordfish.py` capabilities 10.0 / 10.3 / 11.0), machete 100 (Hopper
  only: `utils/machete.py` `_MACHETE_REQUIRED_COMPUTE_CAPABILITY = (9, 0)`), Marlin 90 (`utils/marlin.py`
  `_marlin_capability_supported`: CC ≥ 7.5; `SUPPORTS_SYM = [True]`), exllamav2 80 (any CUDA GPU).
  AWQ (GEMM format): machete_awq 100 (9.0), marlin_awq 90 (CC ≥ 8.0, `marlin_awq.py` validate_device),
  exllamav2_awq 80.
- Stored layout (GPTQ `QuantLinear`): qweight in·out/8 int32, qzeros groups·out/8 int32, scales
  groups·out fp16, g_idx in int32 (every GPTQ checkpoint stores it). AWQ: the same without g_idx.
- `post_init` per kernel, with GPTQConfig's defaults desc_act False and sym True:
  Marlin (`marlin.py`): a workspace `marlin_make_workspace_new`: torch.zeros(max(SMs × 1, 128), int32)
  per Linear; g_idx and g_idx_sort_indices become empty (`marlin_make_empty_g_idx`) unless desc_act
  (then the sorted g_idx + its sort indices, in int32 each); qzeros become empty (sym).
  machete (`machete.py`): g_idx kept (sorted, + input_perm in int32, with desc_act); sym: qzeros empty;
  asymmetric (AWQ): qzeros become fp16 −scales·zeros, groups·out × 2 bytes.
  swordfish (`swordfish.py`): g_idx kept unless desc_act (then emptied, + input_perm); sym: qzeros empty.
  exllamav2 (`exllamav2.py`): qweight, qzeros, scales and g_idx kept as loaded; one scratch per device
  (`utils/model.py` `gptqmodel_post_init`): the max over Linears of `scratch_space_fixed()` = temp_dq
  in·out·2 + 128 + temp_fwd out·max_input_len·max_batch_size·4 + 128, GPTQ at its defaults 2048 × 8;
  AWQ at max_input_length 2048 × AWQ_BATCH_SIZE (environment, default 1).
  marlin_awq (`marlin_awq.py`): the workspace per Linear; zero points repacked to the same size.
"""

from __future__ import annotations

from dataclasses import dataclass

from hubmem.choices import GPTQ_KERNELS
from hubmem.errors import InvalidInputError

AWQ_KERNELS = ("auto", "machete", "marlin", "exllamav2")
KERNELS = GPTQ_KERNELS  # every name either method takes (awq has no swordfish)
SOURCE = "GPTQModel 7.3.4 nn_modules/qlinear (marlin.py, machete.py, swordfish.py, exllamav2.py, *_awq.py)"
MARLIN_MIN_BLOCKS = 128  # utils/marlin.py marlin_make_workspace_new: max(sms * max_blocks_per_sm, 128)
DEFAULT_SMS = MARLIN_MIN_BLOCKS  # SM count assumed: the floor holds for every GPU with at most 128 SMs
EXL2_MAX_INPUT_LEN = 2048  # scratch_space_fixed(max_input_len=2048, ...)
EXL2_GPTQ_BATCH = 8  # GPTQ: scratch_space_fixed() at its max_batch_size=8
EXL2_AWQ_BATCH = 1  # AWQ: int(os.getenv("AWQ_BATCH_SIZE", 1))
NO_CC_KERNEL = "marlin"  # auto without --gpu: the kernel of every CC 8.0-8.9 / 12.x card (A100, L4, 4090)


def select_kernel(method: str, capability: tuple[int, int] | None, kernel: str = "auto") -> str:
    """The kernel GPTQModel's auto selection runs for a 4-bit group-128 `method` checkpoint ("gptq",
    sym; "awq", zero point) on a GPU of `capability` (None: no GPU named, Marlin assumed)."""
    allowed = GPTQ_KERNELS if method == "gptq" else AWQ_KERNELS
    if kernel not in allowed:
        raise InvalidInputError(f"--gptq-kernel '{kernel}' does not run {method} ({', '.join(allowed)})")
    if kernel != "auto":
        return kernel
    if capability is None:
        return NO_CC_KERNEL
    if method == "gptq" and capability[0] in (10, 11):
        return "swordfish"
    if capability == (9, 0):
        return "machete"
    if capability >= ((7, 5) if method == "gptq" else (8, 0)):
        return "marlin"
    return "exllamav2"


@dataclass(frozen=True)
class KernelBuffers:
    """What a kernel keeps beside qweight and scales, in bytes (see the module docstring)."""

    kernel: str
    g_idx: int  # g_idx (and its sort indices / input permutation) after post_init
    qzeros: int  # zero points after post_init
    workspace: int  # Marlin's per-Linear workspaces, or exllamav2's one scratch per device
    formula: str

    @property
    def total(self) -> int:
        return self.g_idx + self.qzeros + self.workspace


def kernel_buffers(
    method: str,
    kernel: str,
    linear_shapes: dict[tuple[int, int], int],
    *,
    desc_act: bool = False,
    sms: int = DEFAULT_SMS,
    group: int = 128,
) -> KernelBuffers:
    """g_idx, qzeros and workspace bytes of every block Linear (`linear_shapes`: (out, in) -> count) once
    `kernel` has post-initialised a `method` checkpoint (GPTQ sym, AWQ with zero points)."""
    linears = sum(linear_shapes.values())
    inputs = sum(cols * n for (_, cols), n in linear_shapes.items())
    group_rows = sum(rows * -(-cols // group) * n for (rows, cols), n in linear_shapes.items())
    packed_zeros = group_rows // 2  # 4-bit zeros, 8 per int32
    has_g_idx = method == "gptq"
    g_idx = inputs * 4 if has_g_idx else 0
    if kernel == "marlin":
        blocks = max(sms, MARLIN_MIN_BLOCKS)
        ws = linears * blocks * 4
        kept = 2 * g_idx if desc_act and has_g_idx else 0
        zeros = packed_zeros if method == "awq" else 0
        return KernelBuffers(
            kernel,
            kept,
            zeros,
            ws,
            f"Marlin workspace {linears:,} Linears × max({sms}, 128) int32 = {ws:,}"
            + (
                f"; desc_act: g_idx + sort indices 2 × Σin {inputs:,} × 4 = {kept:,}"
                if kept
                else "; g_idx emptied"
            )
            + ("; zero points repacked" if zeros else "; qzeros emptied (sym)"),
        )
    if kernel in ("machete", "swordfish"):
        # machete with desc_act: the sorted g_idx + input_perm; swordfish: g_idx, or input_perm instead
        keep = g_idx * 2 if desc_act and kernel == "machete" else g_idx
        zeros = group_rows * 2 if method == "awq" else 0
        return KernelBuffers(
            kernel,
            keep,
            zeros,
            0,
            f"{kernel}: g_idx Σin {inputs:,} × 4"
            + (" × 2 (sorted + input_perm)" if desc_act and kernel == "machete" else "")
            + (" (input_perm; g_idx emptied)" if desc_act and kernel == "swordfish" else "")
            + f" = {keep:,}"
            + (
                f"; zeros as fp16 −scales·zeros {group_rows:,} × 2 = {zeros:,}"
                if zeros
                else "; qzeros emptied (sym)"
            ),
        )
    batch = EXL2_GPTQ_BATCH if method == "gptq" else EXL2_AWQ_BATCH
    scratch = max(
        (rows * cols * 2 + 128 + rows * EXL2_MAX_INPUT_LEN * batch * 4 + 128 for rows, cols in linear_shapes),
        default=0,
    )
    return KernelBuffers(
        kernel,
        g_idx,
        packed_zeros,
        scratch,
        f"exllamav2: g_idx Σin {inputs:,} × 4 = {g_idx:,}, qzeros {packed_zeros:,} kept; scratch "
        f"max(in·out·2 + 128 + out·{EXL2_MAX_INPUT_LEN}·{batch}·4 + 128) = {scratch:,}",
    )
