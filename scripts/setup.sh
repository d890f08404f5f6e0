#!/usr/bin/env bash
# Installs what building and testing restmq needs, offline-safe (only the crates.io, Debian and
# npm registries are used; see TOOLCHAIN.md): Chromium + chromedriver, redis-server, nginx, and
# nats-server and beanstalkd (the benchmark's durable peers, for its test) (apt),
# the wasm32 target, Trunk, wasm-bindgen-cli and wasm-opt (binaryen, into .tools/).
#
# Idempotent and quiet: every step checks first, so a warm machine runs it in well under a
# second. Run from anywhere; it works in the repository root. Needs root (or sudo) for apt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PWD/.tools/node_modules/.bin:$PATH"

TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.129 # must equal the `=` pin in web/Cargo.toml
BINARYEN_VERSION=132.0.0     # Trunk.toml pins wasm_opt = "version_132"

say() { echo "setup: $*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
command -v redis-server >/dev/null || need+=(redis-server)
[ -x /usr/sbin/nginx ] || need+=(nginx)
[ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ -x /usr/bin/beanstalkd ] || need+=(beanstalkd)
command -v npm >/dev/null || need+=(npm)
command -v gzip >/dev/null || need+=(gzip)
if ((${#need[@]})); then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { say "need root or sudo to install: ${need[*]}"; exit 1; }
        sudo=(sudo)
    fi
    say "apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -q >/dev/null
    "${sudo[@]}" apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Rust toolchain pieces -------------------------------------------------------------------
command -v cargo >/dev/null || { say "cargo not found: install Rust with rustup first"; exit 1; }
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# A debug build of Trunk is ~3x faster to install and no slower at use.
if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
    say "cargo install trunk $TRUNK_VERSION (a few minutes)"
    cargo install --quiet --locked --debug trunk --version "$TRUNK_VERSION"
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    say "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
    cargo install --quiet --locked wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# --- wasm-opt (Debian's binaryen is too old for current rustc output) ---------------------------
wasm_opt=.tools/node_modules/.bin/wasm-opt
if [ "$("$wasm_opt" --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ]; then
    say "npm install binaryen@$BINARYEN_VERSION into .tools/"
    npm install --silent --prefix .tools --no-fund --no-audit "binaryen@$BINARYEN_VERSION" >/dev/null
fi
