"""What data-parallel communication keeps on each GPU: PyTorch DDP's gradient buckets and NCCL's
per-channel FIFO buffers. Pure: counts and settings in, bytes out (hubmem.memory.training adds the terms).

PyTorch DDP (torch 2.x `torch/nn/parallel/distributed.py` DistributedDataParallel, c10d `reducer.cpp`):
the Reducer packs every parameter that requires grad into buckets (`bucket_cap_mb` 25 MiB, the first
`_DEFAULT_FIRST_BUCKET_BYTES` 1 MiB) and allocates each bucket's flat gradient tensor when DDP is built
(`initialize_buckets`: one `at::empty` per bucket over its parameters). With `gradient_as_bucket_view=False`
(the default) `param.grad` stays its own tensor and is copied into the bucket for the all-reduce, so the
buckets are a second copy of all trainable gradients, in the parameters' dtype; the docstring: True "can
reduce peak memory usage, where the saved memory size will be equal to the total gradients size". Bucket
sizes change how the copy is cut, not its total. ZeRO and FSDP replace DDP (their own buckets:
hubmem.runtimes.sharded_training); one replica (TP / PP only) has nothing to all-reduce.

NCCL (src/init.cc `computeBuffSizes`, NCCL 2.x): every channel's connection to a peer has one FIFO per
protocol: LL `DEFAULT_LL_BUFFSIZE` = 8 lines/thread × 512 threads × 8 steps × 16 B = 524,288; LL128
`DEFAULT_LL128_BUFFSIZE` = 120 elements/thread × 640 threads × 8 steps × 8 B = 4,915,200; Simple
`NCCL_BUFFSIZE` (DEFAULT_BUFFSIZE 1 << 22) = 4,194,304 (1 MiB on ARM CPUs). A ring channel gives each GPU
one receiving connection, whose FIFOs live on that GPU (P2P read moves only the Simple one to the sender):
9,633,792 B per ring channel. The number of channels is NCCL's topology search (more for NVLink than PCIe;
NVIDIA/nccl#986: "memory usage is linearly tied to the number of channels"; 32 channels per GPU pair on
8× H100 in NVIDIA/nccl#1685), so it is an option (`--nccl-channels`, 0 = not counted: the overhead
figure covers it) rather than a guess. Trees, CollNet/NVLS and send/recv add connections not modelled.
"""

from __future__ import annotations

LL_BUFFSIZE = 8 * 512 * 8 * 16  # NCCL_LL_LINES_PER_THREAD × NCCL_LL_MAX_NTHREADS × NCCL_STEPS × 16 B line
LL128_BUFFSIZE = 120 * 640 * 8 * 8  # NCCL_LL128_ELEMS_PER_THREAD × NCCL_LL128_MAX_NTHREADS × STEPS × 8 B
SIMPLE_BUFFSIZE = 1 << 22  # NCCL_BUFFSIZE default
PER_CONNECTION = LL_BUFFSIZE + LL128_BUFFSIZE + SIMPLE_BUFFSIZE  # 9,633,792
DDP_SOURCE = (
    "torch/nn/parallel/distributed.py DistributedDataParallel (gradient_as_bucket_view=False, "
    "bucket_cap_mb 25); c10d reducer.cpp initialize_buckets"
)
NCCL_SOURCE = "NCCL src/init.cc computeBuffSizes (DEFAULT_LL_BUFFSIZE, DEFAULT_LL128_BUFFSIZE, NCCL_BUFFSIZE)"


def ddp_bucket_bytes(gradient_bytes: int, replicas: int, *, bucket_view: bool, sharded: bool) -> int:
    """DDP's bucket copy of the gradients (`gradient_bytes` on this GPU): all of them again, unless there
    is one replica, ZeRO / FSDP shards instead of DDP, or gradient_as_bucket_view makes grads views."""
    if replicas < 2 or sharded or bucket_view:
        return 0
    return gradient_bytes


def nccl_bytes(channels: int, world: int) -> int:
    """NCCL's ring FIFOs on one GPU: one receiving connection per channel, 3 protocols each (0 for one GPU)."""
    return channels * PER_CONNECTION if world > 1 else 0
