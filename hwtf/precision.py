"""Which precision to compute in: bfloat16 only where the hardware has it.

Mixed bfloat16 is a lever only on hardware that multiplies in bfloat16: a GPU,
or a CPU with AMX or AVX-512 BF16. Elsewhere TensorFlow emulates it, and the
same Graves-size training step took 23.6 s in mixed bfloat16 against 3.5 s in
float32 (`python benchmarks/train_step.py --length=200`, an AMD EPYC host of
this project's machine without AVX-512, 2026-12-01), where an Intel host with
AMX ran it 1.4x faster in bfloat16. `--precision=auto` picks for the host.
"""

from __future__ import annotations

POLICIES = ("float32", "mixed_bfloat16")  # what a model computes in
PRECISIONS = ("auto", *POLICIES)  # what a user may ask for
# CPU flags (Linux's /proc/cpuinfo) of native bfloat16 matrix products.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags; empty where the file cannot be read."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def cpu_model(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's model name ("AMD EPYC"); the machine type where unknown."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.machine() or "unknown CPU"


def host(gpus: list[str] | None = None, cpuinfo: str = "/proc/cpuinfo") -> str:
    """This host in a phrase, for a run's record of where each stint trained:
    "AMD EPYC, 2 CPU cores" or "NVIDIA H200 + 16 CPU cores (Intel ...)"."""
    import os

    cores = f"{os.cpu_count()} CPU cores"
    if gpus is None:
        import tensorflow as tf

        gpus = [tf.config.experimental.get_device_details(d).get("device_name", d.name)
                for d in tf.config.list_physical_devices("GPU")]
    if gpus:
        return f"{', '.join(gpus)} + {cores} ({cpu_model(cpuinfo)})"
    return f"{cpu_model(cpuinfo)}, {cores}"


def native_bfloat16(flags: set[str] | None = None, gpus: int | None = None) -> tuple[bool, str]:
    """Whether this host multiplies in bfloat16 natively, and why (a phrase)."""
    if gpus is None:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
    if gpus:
        return True, f"{gpus} GPU(s)"
    flags = cpu_flags() if flags is None else flags
    have = [f for f in BF16_CPU_FLAGS if f in flags]
    if have:
        return True, f"the CPU has {', '.join(have)}"
    return False, f"no GPU, and the CPU has none of {', '.join(BF16_CPU_FLAGS)}"


def resolve(precision: str, **host) -> tuple[str, str]:
    """`(policy, reason)`: `precision` itself, or for `"auto"` mixed_bfloat16
    where `native_bfloat16()` and float32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision, "as asked"
    native, why = native_bfloat16(**host)
    return ("mixed_bfloat16" if native else "float32"), why
