#!/bin/bash
# On the device: build the vendored whisper.cpp with CUDA for sm_90, link the bench, run it on the GPU and on the CPU.
cd "$(dirname "$0")"
export PATH=/usr/local/cuda/bin:$PATH
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
nvcc --version | tail -1
libdir() { find /usr/local /opt /usr/lib -name "$1" 2>/dev/null | grep -v stubs | head -1 | xargs -r dirname; }
CUDART=$(libdir 'libcudart.so*'); CUBLAS=$(libdir 'libcublas.so*'); echo "cudart in $CUDART, cublas in $CUBLAS"
export LD_LIBRARY_PATH=$CUDART:$CUBLAS:/usr/local/nvidia/lib64:$LD_LIBRARY_PATH
SECONDS=0
cmake -S whisper.cpp -B build -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=OFF -DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=OFF -DGGML_NATIVE=ON -DCMAKE_BUILD_TYPE=Release > $OUT/cmake.log 2>&1 || { tail -30 $OUT/cmake.log; exit 1; }
cmake --build build -j 16 > $OUT/build.log 2>&1 || { grep -m3 -A12 "error" $OUT/build.log; exit 1; }
echo "built in $SECONDS s"
g++ -O2 whisper_cuda.c -Iwhisper.cpp/include -Iwhisper.cpp/ggml/include -Wl,--start-group $(find build -name '*.a') -Wl,--end-group \
  -L$CUDART -L$CUBLAS -L/usr/local/cuda/lib64 -L/usr/local/cuda/lib64/stubs -L/usr/local/nvidia/lib64 \
  -lcudart -lcublas -lcublasLt -lcuda -lpthread -fopenmp -o bench 2>&1 | tail -20
./bench ggml-tiny.en-q8_0.bin jfk.f32 1 2>&1 | grep -v "^whisper_\|^ggml_\|^load_backend" | tee $OUT/gpu.txt
nvidia-smi --query-gpu=name --format=csv,noheader >> $OUT/gpu.txt
OMP_NUM_THREADS=1 ./bench ggml-tiny.en-q8_0.bin jfk.f32 0 2>&1 | grep -v "^whisper_\|^ggml_\|^load_backend" | tee $OUT/cpu.txt
