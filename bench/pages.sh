#!/usr/bin/env bash
# Page latency before and after, in one run: builds the api of BASELINE (a git commit, default
# 9e996a1, the commit before the DataLoaders) in a temporary git worktree, with its own target
# directory kept under $TARGET/bench-baseline/<commit>/ so a second run does not rebuild it;
# builds the current api and the bench in release; then runs `page_latency`, which serves both
# binaries against one fixture and measures myOrders(first: 50) and the 50-product catalog page
# interleaved (see bench/src/bin/page_latency.rs).
#
# Needs PostgreSQL, Redis and NATS (the defaults, or DATABASE_URL / REDIS_URL / NATS_URL).
# Usage: [BASELINE=<commit>] [API_BIN=path] bench/pages.sh [ROUNDS [REQUESTS]]
#        (defaults 5 and 200; API_BIN skips building the current api)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BASELINE=${BASELINE:-9e996a1}
COMMIT=$(git -C "$ROOT" rev-parse --verify "$BASELINE^{commit}")
CACHE=$TARGET/bench-baseline/$COMMIT
BASELINE_API_BIN=$CACHE/target/release/api

if [ ! -x "$BASELINE_API_BIN" ]; then
    echo "bench: building the api of $BASELINE ($COMMIT) into $CACHE (release)" >&2
    if ! git -C "$ROOT" diff --quiet "$COMMIT" -- domain/migration; then
        echo "bench: warning: the migrations changed since $BASELINE; both apis will run on the current schema" >&2
    fi
    mkdir -p "$CACHE"
    SRC=$(mktemp -d "${TMPDIR:-/tmp}/store-baseline.XXXXXX")
    cleanup() { git -C "$ROOT" worktree remove --force "$SRC" 2>/dev/null || rm -rf "$SRC"; }
    trap cleanup EXIT
    git -C "$ROOT" worktree add --detach --quiet "$SRC" "$COMMIT"
    (cd "$SRC" && CARGO_TARGET_DIR=$CACHE/target cargo build --quiet --release -p api)
    cleanup
    trap - EXIT
fi

echo "bench: building the current api and the bench (release)" >&2
if [ -n "${API_BIN:-}" ]; then
    cargo build --quiet --release -p bench --bin page_latency --manifest-path "$ROOT/Cargo.toml"
else
    cargo build --quiet --release -p api -p bench --bin api --bin page_latency --manifest-path "$ROOT/Cargo.toml"
    API_BIN=$TARGET/release/api
fi

echo "bench: baseline $BASELINE ($COMMIT), current $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo ' (with uncommitted changes)')" >&2
API_BIN=$API_BIN BASELINE_API_BIN=$BASELINE_API_BIN "$TARGET/release/page_latency" "$@"
