#!/bin/bash
# Prepares .gpubench/ (ignored by git) for a run on a machine with an NVIDIA GPU and the CUDA toolkit but no Rust
# toolchain: the whisper.cpp sources that whisper-rs-sys vendors (the engine Candor links), the Q8_0 tiny.en model
# (fits a 64 MiB transfer; `models/fetch.py fetch whisper-tiny.en-q8_0`), a real-speech clip as raw f32, and the
# driver. There, `bash .gpubench/run.sh` builds whisper.cpp with CUDA for sm_90 and prints one stream's decode
# time by window and the throughput of 1-64 streams at once, on the GPU and then on the CPU.
set -euo pipefail
cd "$(dirname "$0")/../../.."
models=${CANDOR_MODELS_DIR:-models/cache}
source=$(ls -d ~/.cargo/registry/src/*/whisper-rs-sys-*/whisper.cpp | tail -1)
grep -qx '/.gpubench/' .git/info/exclude || echo '/.gpubench/' >> .git/info/exclude
rm -rf .gpubench && mkdir .gpubench
cp -r "$source" .gpubench/whisper.cpp
cp "$models/ggml-tiny.en-q8_0.bin" .gpubench/
python3 - "$models/speech-set/jfk.wav" .gpubench/jfk.f32 <<'PY'
import array, sys, wave
with wave.open(sys.argv[1]) as w:
    pcm = array.array("h", w.readframes(w.getnframes()))
array.array("f", (s / 32768.0 for s in pcm)).tofile(open(sys.argv[2], "wb"))
PY
cp pipelines/benches/gpu/whisper_cuda.c pipelines/benches/gpu/run.sh .gpubench/
du -sh .gpubench
