#!/usr/bin/env bash
# Builds `candor` with every model on the GPU (`--features gpu-whisper`: ONNX Runtime's CUDA provider and
# whisper.cpp's CUDA backend). The CUDA toolkit comes from registry packages (scripts/cuda-toolkit.txt,
# hash-checked), arranged once as a toolkit root under $CANDOR_CUDA_DIR. Long: ggml-cuda is about 150 CUDA
# files (half an hour and more on two cores), so it is not part of the test command, which checks the `gpu`
# feature only. CANDOR_CUDA_ARCHS picks the GPU generations (default 90: H100/H200; "80;90" for A100 too).
#
# The binary needs the CUDA 13 runtime libraries (libcudart, libcublas, libcublasLt) and the NVIDIA driver
# (libcuda) where it runs; with no device there, it decodes on the CPU and /readyz says so.
set -euo pipefail
cd "$(dirname "$0")/.."

cuda_dir=${CANDOR_CUDA_DIR:-$HOME/.cache/candor/cuda-13.0}
root=$cuda_dir/nvidia/cu13
if [ ! -x "$root/bin/nvcc" ]; then
    echo "==> the CUDA toolkit from registry packages, into $cuda_dir"
    mkdir -p "$cuda_dir/wheels"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --require-hashes \
        --platform manylinux_2_27_x86_64 --platform manylinux2014_x86_64 --python-version 3.11 \
        -r scripts/cuda-toolkit.txt -d "$cuda_dir/wheels"
    for wheel in "$cuda_dir"/wheels/*.whl; do
        python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$cuda_dir"
    done
    chmod +x "$root"/bin/* "$root"/nvvm/bin/*
    # A toolkit root as CMake and the linker expect it: unversioned library names, lib64, and link-time stubs
    # for the driver (the real libcuda.so.1 comes with the NVIDIA driver) and for culibos (only static cuBLAS
    # needs it; whisper-rs-sys asks for it regardless). Every stub call answers CUDA_ERROR_NO_DEVICE (100), so
    # the binary run against the stubs behaves as on a machine without a GPU.
    for lib in cudart cublas cublasLt; do ln -sf "lib$lib.so.13" "$root/lib/lib$lib.so"; done
    ln -sfn lib "$root/lib64"
    mkdir -p "$root/lib/stubs"
    {
        grep -ohE 'CUDAAPI (cu[A-Za-z0-9_]+)\(' "$root"/include/cuda.h | sed -E 's/CUDAAPI (.*)\(/\1/'
        grep -ohE '^#define +cu[A-Za-z0-9_]+ +cu[A-Za-z0-9_]+_v[0-9]+' "$root"/include/cuda.h | awk '{print $3}'
    } | sort -u | sed 's/.*/int &(void) { return 100; }/' > "$root/lib/stubs/cuda_stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$root/lib/stubs/cuda_stub.c"
    ln -sf libcuda.so "$root/lib/stubs/libcuda.so.1"
    ar rcs "$root/lib/stubs/libculibos.a"
fi

export PATH=$root/bin:$PATH CUDACXX=$root/bin/nvcc CUDAToolkit_ROOT=$root CUDA_PATH=$root
export CUDAARCHS=${CANDOR_CUDA_ARCHS:-90}
export LIBRARY_PATH=$root/lib:$root/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
echo "==> cargo build --release --features gpu-whisper (CUDA architectures $CUDAARCHS)"
cargo build --release --locked --features gpu-whisper --bin candor
echo "==> built: ${CARGO_TARGET_DIR:-target}/release/candor"
