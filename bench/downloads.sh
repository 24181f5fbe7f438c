#!/usr/bin/env bash
# What the signature check costs a download. One interleaved run (rounds × targets, each a whole
# download of one SIZE_MIB file by curl over HTTPS, loopback) against the repository's nginx.conf
# rendered as in production:
#   signed      /downloads/builds/… with a valid secure_link (md5 + expires), as the api signs it:
#               secure_link check, Content-Disposition, the repeated security headers
#   plain       the same file, the same server (same TLS, HTTP/2, workers), from an extra
#               location that the script adds to the rendered file: no signature check
# each over HTTP/2 (what browsers use) and HTTP/1.1, and prints MB/s (10^6 bytes per second,
# curl's speed_download) and the ratio signed / plain.
#
# The link is signed by this script with the formula of nginx.conf's header (the api's
# `builds::secure_link_md5`); the api is not involved in serving a download, so none runs.
# Needs nginx with libnginx-mod-http-js (the template loads njs), curl, openssl, perl.
# Usage: bench/downloads.sh [ROUNDS] [SIZE_MIB]      (defaults 5 and 512)
set -euo pipefail

ROUNDS=${1:-5}
SIZE_MIB=${2:-512}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/store-bench-dl.XXXXXX")
chmod 755 "$WORK" # nginx's workers (nobody, when run as root) read the file
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in nginx curl openssl perl; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
        echo "bench: $tool is missing (apt-get install nginx libnginx-mod-http-js libnginx-mod-http-lua libnginx-mod-http-brotli-filter curl openssl)" >&2
        exit 1
    }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

SECRET=bench-download-secret-0123456789
FILE_PATH=builds/0193a1b2-0000-7000-8000-000000000001/0193a1b2-0000-7000-8000-000000000002/game-1.0.tar.gz
mkdir -p "$WORK/objects/$(dirname "$FILE_PATH")" "$WORK/spa" "$WORK/run"
chmod -R 755 "$WORK/objects"
echo '<!doctype html>' >"$WORK/spa/index.html"
echo '{}' >"$WORK/keys.json"
echo "bench: writing a $SIZE_MIB MiB file" >&2
head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$WORK/objects/$FILE_PATH"
chmod 644 "$WORK/objects/$FILE_PATH"
SHA=$(sha256sum "$WORK/objects/$FILE_PATH" | cut -d' ' -f1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null

# Renders nginx.conf (envsubst over the names listed in its header), as bench/gateway.sh does.
PORT=$(free_port)
export GATEWAY_HTTPS_LISTEN=127.0.0.1:$PORT GATEWAY_HTTP_LISTEN=127.0.0.1:$(free_port) GATEWAY_PUBLIC_HTTPS_PORT=$PORT
export GATEWAY_RUN_DIR=$WORK/run GATEWAY_ACCESS_LOG=/dev/null GATEWAY_ERROR_LOG=$WORK/error.log
export GATEWAY_TLS_CERT=$WORK/tls.crt GATEWAY_TLS_KEY=$WORK/tls.key GATEWAY_HSTS_MAX_AGE=63072000
export GATEWAY_NJS_DIR=$ROOT/gateway GATEWAY_KEYS_FILE=$WORK/keys.json
export JWT_ISSUER=store JWT_AUDIENCE=store-api API_UPSTREAM=127.0.0.1:9 GATEWAY_SECRET=unused-gateway-secret-0123
export GATEWAY_SPA_DIR=$WORK/spa GATEWAY_DOWNLOADS_DIR=$WORK/objects GATEWAY_DOWNLOAD_SECRET=$SECRET
export GATEWAY_MAX_BODY=256k GATEWAY_MAX_UPLOAD=11m GATEWAY_MAX_BUILD_BYTES=8g
export GATEWAY_MEDIA_DIR=$WORK/objects GATEWAY_TRUSTED_PROXIES=127.0.0.1/32
export GATEWAY_AUTH_RATE=10r/m GATEWAY_AUTH_BURST=10
names=$(perl -ne 'last unless /^#|^\s*$/; print "$1|" if /^#\s+\$\{([A-Z0-9_]+)\}/' "$ROOT/nginx.conf")
perl -pe "s/\\\$\\{(${names%|})\\}/\$ENV{\$1}/g" "$ROOT/nginx.conf" >"$WORK/nginx.conf"
# The baseline: the same directory, no signature check, before the signed location.
perl -0pi -e 's{(\n\s*# ---- signed downloads)}{
        location ^~ /plain/ {
            alias $ENV{GATEWAY_DOWNLOADS_DIR}/;
            max_ranges 1;
            types { }
            default_type application/octet-stream;
            gzip off;
            brotli off;
        }$1}' "$WORK/nginx.conf"
grep -q 'location ^~ /plain/' "$WORK/nginx.conf"
nginx -p "$WORK" -c "$WORK/nginx.conf" -g 'daemon off;' 2>>"$WORK/error.log" &
PIDS+=($!)
for _ in $(seq 100); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/" && break; sleep 0.1; done

EXPIRES=$(($(date +%s) + 24 * 3600))
URI=/downloads/$FILE_PATH
MD5=$(printf '%s' "$EXPIRES$URI $SECRET" | openssl md5 -binary | openssl base64 | tr +/ -_ | tr -d =)
SIGNED="https://127.0.0.1:$PORT$URI?md5=$MD5&expires=$EXPIRES"
PLAIN="https://127.0.0.1:$PORT/plain/$FILE_PATH"

# Sanity: both answer the whole file; an unsigned link is refused.
for url in "$SIGNED" "$PLAIN"; do
    got=$(curl -sfk "$url" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$SHA" ] || { echo "bench: $url does not serve the file" >&2; exit 1; }
done
status=$(curl -sk -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT$URI")
[ "$status" = 403 ] || { echo "bench: an unsigned link got $status, not 403" >&2; exit 1; }

TARGETS=(h2-signed h2-plain h1-signed h1-plain)
run() {
    local target=$1 url proto
    case $target in
        *-signed) url=$SIGNED ;;
        *-plain) url=$PLAIN ;;
    esac
    case $target in
        h2-*) proto=--http2 ;;
        h1-*) proto=--http1.1 ;;
    esac
    curl -sfk "$proto" -o /dev/null -w '%{speed_download} %{size_download} %{http_version}\n' "$url"
}
declare -A SUM
echo "bench: $ROUNDS rounds × ${#TARGETS[@]} targets, one download of $SIZE_MIB MiB each, $(nproc) cores" >&2
for round in $(seq "$ROUNDS"); do
    for i in "${!TARGETS[@]}"; do
        t=${TARGETS[$(((i + round) % ${#TARGETS[@]}))]}
        read -r speed size version < <(run "$t")
        [ "$size" = "$((SIZE_MIB * 1024 * 1024))" ] || { echo "bench: $t got $size bytes" >&2; exit 1; }
        mbs=$(perl -e "printf '%.1f', $speed / 1e6")
        printf '  round %d  %-10s HTTP/%-3s %8s MB/s\n' "$round" "$t" "$version" "$mbs"
        SUM[$t]=$(perl -e "print ${SUM[$t]:-0} + $mbs")
    done
done
echo
printf '%-10s %14s %16s\n' target 'MB/s (mean)' 'signed / plain'
for t in "${TARGETS[@]}"; do
    mean=$(perl -e "print ${SUM[$t]} / $ROUNDS")
    plain=$(perl -e "print ${SUM[${t%-*}-plain]} / $ROUNDS")
    printf '%-10s %14.1f %15.1f%%\n' "$t" "$mean" "$(perl -e "print 100 * $mean / $plain")"
done
