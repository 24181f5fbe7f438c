#!/usr/bin/env bash
# First-load bytes per route (storefront, a product page, /cart, /publisher, /admin): the wasm, js and
# css a browser downloads before the page runs, raw, gzip and brotli as the gateway sends them
# (bench/first-load.mjs).
#
#   bench/first-load.sh [URL]    a running store [https://127.0.0.1:8443, `cargo xtask dev`'s]
#   BASELINE=<commit> bench/first-load.sh [URL]
#       also builds the SPA of <commit> (trunk, release, as that commit builds it; cached in
#       $TARGET/bench-baseline/<commit>/dist) and measures it beside the current build
#       (web/dist, `cargo xtask dev`'s or `cargo xtask build-web`'s), both served as the gateway
#       of this commit would (a build's .br/.gz copies, else brotli and gzip at level 5 on the
#       fly, which is what the gateway did before the copies).
#
# Needs Node.js 20 and, for BASELINE, the web tools `cargo xtask dev` installs (trunk,
# wasm-bindgen, target/web-tools' wasm-opt).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
URL=${1:-https://127.0.0.1:8443}

if [ -n "${BASELINE:-}" ]; then
    COMMIT=$(git -C "$ROOT" rev-parse --verify "$BASELINE^{commit}")
    CACHE=$TARGET/bench-baseline/$COMMIT
    if [ ! -f "$CACHE/dist/index.html" ]; then
        echo "bench: building the SPA of $BASELINE ($COMMIT) into $CACHE/dist (release)" >&2
        mkdir -p "$CACHE"
        SRC=$(mktemp -d "${TMPDIR:-/tmp}/store-baseline.XXXXXX")
        cleanup() { git -C "$ROOT" worktree remove --force "$SRC" 2>/dev/null || rm -rf "$SRC"; }
        trap cleanup EXIT
        git -C "$ROOT" worktree add --detach --quiet "$SRC" "$COMMIT"
        if grep -q '"build-web"' "$SRC/xtask/src/main.rs"; then
            (cd "$SRC" && CARGO_TARGET_DIR=$TARGET cargo xtask build-web --dist "$CACHE/dist")
        else
            (cd "$SRC/web" && PATH="$ROOT/target/web-tools/node_modules/.bin:$HOME/.cargo/bin:$PATH" \
                CARGO_TARGET_DIR=$TARGET trunk build --release --offline --skip-version-check --dist "$CACHE/dist")
        fi
        cleanup
        trap - EXIT
    fi
    node "$ROOT/bench/first-load.mjs" "$CACHE/dist" "$BASELINE ($(git -C "$ROOT" rev-parse --short "$COMMIT")), as built"
    if [ -f "$ROOT/web/dist/index.html" ]; then
        node "$ROOT/bench/first-load.mjs" "$ROOT/web/dist" "web/dist ($(git -C "$ROOT" rev-parse --short HEAD)), as built"
    fi
fi
node "$ROOT/bench/first-load.mjs" "$URL" "$URL"
