"""`hwtf.precision`: bfloat16 only where the host multiplies in it."""

import os

import pytest

from hwtf import precision


def test_auto_picks_bfloat16_only_with_a_gpu_or_native_cpu_support(tmp_path):
    assert precision.resolve("auto", flags={"avx2", "fma"}, gpus=0)[0] == "float32"
    assert precision.resolve("auto", flags={"avx512f", "avx512_bf16"}, gpus=0) == (
        "mixed_bfloat16", "the CPU has avx512_bf16")
    assert precision.resolve("auto", flags={"amx_bf16", "amx_tile"}, gpus=0)[0] == "mixed_bfloat16"
    assert precision.resolve("auto", flags=set(), gpus=1) == ("mixed_bfloat16", "1 GPU(s)")
    # What is asked for is kept, whatever the host.
    assert precision.resolve("mixed_bfloat16", flags=set(), gpus=0) == ("mixed_bfloat16", "as asked")
    assert precision.resolve("float32", flags={"amx_bf16"}, gpus=1) == ("float32", "as asked")
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve("float16")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu sse2 avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx2", "amx_bf16"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
    # This host's own answer is consistent with its flags.
    native, why = precision.native_bfloat16(gpus=0)
    assert native == bool(set(precision.BF16_CPU_FLAGS) & precision.cpu_flags()) and why


def test_host_names_the_cpu_or_the_gpus(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n")
    assert precision.cpu_model(str(cpuinfo)) == "AMD EPYC"
    assert precision.cpu_model(str(tmp_path / "missing"))  # the machine type, never empty
    cores = os.cpu_count()
    assert precision.host(gpus=[], cpuinfo=str(cpuinfo)) == f"AMD EPYC, {cores} CPU cores"
    assert precision.host(gpus=["NVIDIA H200"], cpuinfo=str(cpuinfo)) == f"NVIDIA H200 + {cores} CPU cores (AMD EPYC)"
