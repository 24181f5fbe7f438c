#!/usr/bin/env bash
# What the gateway costs. One interleaved run (rounds × targets, each wrk run DURATION seconds,
# keep-alive on both sides: wrk ↔ nginx, and nginx ↔ api through `keepalive 64`) of:
#   direct      POST /graphql straight to the api (http, loopback)
#   direct-user the same with the X-User-* headers the gateway sends for the token (and its
#               secret): what a signed-in request costs the api itself (it checks the session
#               cut in Redis), so the gateway's own share of gw-token can be told apart
#   gw-anon     the same through the gateway (https), no token
#   gw-token    the same through the gateway with a verified RS256 token (Lua token cache in
#               front of the njs verifier; verified once, then kept in shared memory)
#   static      the gateway serving a static file holding the same bytes as the api's answer
#   base-anon   with BASELINE=<git ref> (e.g. main): gw-anon and gw-token through the gateway
#   base-token  of that commit (its nginx.conf and gateway/), to compare before and after in one run
# and prints requests/s and the ratios to `direct` (and token/anonymous for each gateway).
#
# The query is the storefront's first page: 20 products of the seeded demo catalog with their
# editions, prices, stock, publisher and rating (`QUERY=...` runs another one, e.g. the cheap
# `{ __typename }`, to see the gateway's fixed cost against an api that does almost nothing).
#
# Needs PostgreSQL, Redis and NATS (the defaults, or DATABASE_URL / REDIS_URL / NATS_URL),
# nginx with libnginx-mod-http-js and libnginx-mod-http-lua, and wrk (`apt-get install wrk`). Loopback only.
# Usage: [BASELINE=main] bench/gateway.sh [ROUNDS] [DURATION]
#        (defaults 3 and 5; API_BIN=path skips the build)
set -euo pipefail

ROUNDS=${1:-3}
DURATION=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/store-bench.XXXXXX")
chmod 755 "$WORK" # nginx's workers (nobody) read the static file
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in nginx wrk curl openssl perl; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
        echo "bench: $tool is missing (apt-get install nginx libnginx-mod-http-js libnginx-mod-http-lua libnginx-mod-http-brotli-filter wrk curl openssl)" >&2
        exit 1
    }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ -n "${API_BIN:-}" ]; then
    API=$API_BIN # an api binary built beforehand (release)
else
    echo "bench: building the api (release)" >&2
    cargo build --quiet --release -p api --manifest-path "$ROOT/Cargo.toml"
    API="${CARGO_TARGET_DIR:-$ROOT/target}/release/api"
fi

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/store_bench}
export REDIS_NAMESPACE=bench
# Streams of its own: the seed publishes stock commands, which must not reach another database.
export NATS_PREFIX=benchgw
export GATEWAY_SECRET=bench-gateway-secret-0123456789
export JWT_PRIVATE_KEY_FILE=$WORK/keys/jwt-private.pem
export API_LISTEN_ADDR=127.0.0.1:$(free_port)
export RUST_LOG=warn
"$API" gen-keys --dir "$WORK/keys" >/dev/null
"$API" migrate >/dev/null
"$API" seed-demo >/dev/null
"$API" gateway-keys --out "$WORK/keys.json" >/dev/null
"$API" serve >"$WORK/api.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://$API_LISTEN_ADDR/healthz" >/dev/null && break; sleep 0.1; done

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=localhost -keyout "$WORK/tls.key" -out "$WORK/tls.crt" 2>/dev/null
mkdir -p "$WORK/spa" "$WORK/downloads"
echo '<!doctype html>' >"$WORK/spa/index.html"

QUERY=${QUERY:-'{ products(first: 20) { edges { cursor node { id slug title priceFrom { formatted } rating { average count } publisher { name } editions { id kind name price { amountMinor formatted } stock } } } pageInfo { hasNextPage endCursor } } }'}
BODY="{\"query\":\"$QUERY\"}"
TOKEN=$(curl -sf "http://$API_LISTEN_ADDR/graphql" -H 'content-type: application/json' \
    -d '{"query":"mutation { signIn(input: {email: \"alice@store.test\", password: \"user-demo-password\"}) { accessToken } }"}' \
    | perl -ne 'print $1 if /"accessToken":"([^"]+)"/')
[ -n "$TOKEN" ] || { echo "bench: cannot sign in" >&2; exit 1; }
curl -sf "http://$API_LISTEN_ADDR/graphql" -H 'content-type: application/json' -d "$BODY" >"$WORK/spa/answer.json"
# The caller the gateway passes for that token (its claims, as X-User-*).
CLAIMS=$(perl -MMIME::Base64=decode_base64url -e 'print decode_base64url((split /\./, $ARGV[0])[1])' "$TOKEN")
claim() { perl -ne "print \$1 if /\"$1\":\"?([^\",}]+)/" <<<"$CLAIMS"; }
USER_HEADERS=(-H "x-user-id: $(claim sub)" -H "x-user-role: $(claim role)" -H "x-user-name: $(claim name)"
    -H "x-user-token-iat: $(claim iat)" -H "x-gateway-secret: $GATEWAY_SECRET")
echo "bench: response of the query: $(wc -c <"$WORK/spa/answer.json") bytes" >&2

# Renders a nginx.conf template $4 (envsubst over the names listed in its header; njs from $5)
# into $1 with ports $2 $3.
render() {
    local dir=$1 template=${4:-$ROOT/nginx.conf} njs=${5:-$ROOT/gateway}
    mkdir -p "$dir/run"
    export GATEWAY_HTTPS_LISTEN=127.0.0.1:$2 GATEWAY_HTTP_LISTEN=127.0.0.1:$3 GATEWAY_PUBLIC_HTTPS_PORT=$2
    export GATEWAY_RUN_DIR=$dir/run GATEWAY_ACCESS_LOG=/dev/null GATEWAY_ERROR_LOG=$dir/error.log
    export GATEWAY_TLS_CERT=$WORK/tls.crt GATEWAY_TLS_KEY=$WORK/tls.key GATEWAY_HSTS_MAX_AGE=0
    export GATEWAY_NJS_DIR=$njs GATEWAY_KEYS_FILE=$WORK/keys.json
    export JWT_ISSUER=store JWT_AUDIENCE=store-api API_UPSTREAM=$API_LISTEN_ADDR
    export GATEWAY_SPA_DIR=$WORK/spa GATEWAY_DOWNLOADS_DIR=$WORK/downloads
    export GATEWAY_DOWNLOAD_SECRET=bench GATEWAY_MAX_BODY=256k GATEWAY_AUTH_RATE=10r/m GATEWAY_AUTH_BURST=10
    export GATEWAY_MAX_UPLOAD=11m GATEWAY_MAX_BUILD_BYTES=8g GATEWAY_MEDIA_DIR=$WORK/media GATEWAY_TRUSTED_PROXIES=127.0.0.1/32
    local names
    names=$(perl -ne 'last unless /^#|^\s*$/; print "$1|" if /^#\s+\$\{([A-Z0-9_]+)\}/' "$template")
    perl -pe "s/\\\$\\{(${names%|})\\}/\$ENV{\$1}/g" "$template" >"$dir/nginx.conf"
}

GW_PORT=$(free_port)
render "$WORK/gw" "$GW_PORT" "$(free_port)"
GATEWAYS=(gw)
TARGETS=(direct direct-user gw-anon gw-token static)
if [ -n "${BASELINE:-}" ]; then
    mkdir -p "$WORK/baseline"
    git -C "$ROOT" show "$BASELINE:nginx.conf" >"$WORK/baseline/nginx.conf.template"
    git -C "$ROOT" archive "$BASELINE" gateway | tar -x -C "$WORK/baseline"
    BASE_PORT=$(free_port)
    render "$WORK/base" "$BASE_PORT" "$(free_port)" "$WORK/baseline/nginx.conf.template" "$WORK/baseline/gateway"
    GATEWAYS+=(base)
    TARGETS+=(base-anon base-token)
fi
for g in "${GATEWAYS[@]}"; do
    nginx -p "$WORK/$g" -c "$WORK/$g/nginx.conf" -g 'daemon off;' 2>>"$WORK/$g/error.log" &
    PIDS+=($!)
done
sleep 1

cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
EOF
{
    cat "$WORK/post.lua"
    for ((i = 1; i < ${#USER_HEADERS[@]}; i += 2)); do
        h=${USER_HEADERS[$i]}
        echo "wrk.headers[\"${h%%: *}\"] = \"${h#*: }\""
    done
} >"$WORK/post-user.lua"
# Sanity: every target answers 200 with the same bytes.
check() { curl -sfk "$@" | cmp -s - "$WORK/spa/answer.json" || { echo "bench: $* does not answer as the api does" >&2; exit 1; }; }
check "http://$API_LISTEN_ADDR/graphql" -H 'content-type: application/json' -d "$BODY"
check "http://$API_LISTEN_ADDR/graphql" -H 'content-type: application/json' -d "$BODY" "${USER_HEADERS[@]}"
check "https://127.0.0.1:$GW_PORT/graphql" -H 'content-type: application/json' -d "$BODY" -H "authorization: Bearer $TOKEN"
[ -z "${BASE_PORT:-}" ] || check "https://127.0.0.1:$BASE_PORT/graphql" -H 'content-type: application/json' -d "$BODY" -H "authorization: Bearer $TOKEN"
check "https://127.0.0.1:$GW_PORT/answer.json"

run() {
    local target=$1 url token="" script="$WORK/post.lua"
    case $target in
        direct) url="http://$API_LISTEN_ADDR/graphql" ;;
        direct-user) url="http://$API_LISTEN_ADDR/graphql"; script="$WORK/post-user.lua" ;;
        gw-anon) url="https://127.0.0.1:$GW_PORT/graphql" ;;
        gw-token) url="https://127.0.0.1:$GW_PORT/graphql"; token=$TOKEN ;;
        base-anon) url="https://127.0.0.1:$BASE_PORT/graphql" ;;
        base-token) url="https://127.0.0.1:$BASE_PORT/graphql"; token=$TOKEN ;;
        static) url="https://127.0.0.1:$GW_PORT/answer.json"; script="" ;;
    esac
    BENCH_TOKEN=$token wrk -t1 -c32 -d"${DURATION}s" ${script:+-s "$script"} "$url" \
        | tee -a "$WORK/wrk.log" | perl -ne 'print "$1\n" if /^Requests\/sec:\s+([\d.]+)/'
}
declare -A SUM
echo "bench: $ROUNDS rounds × ${#TARGETS[@]} targets × ${DURATION}s, wrk -t1 -c32, $(nproc) cores" >&2
for round in $(seq "$ROUNDS"); do
    # Rotate the order each round, so no target always runs first or last.
    for i in "${!TARGETS[@]}"; do
        t=${TARGETS[$(((i + round) % ${#TARGETS[@]}))]}
        rps=$(run "$t")
        printf '  round %d  %-11s %10.0f req/s\n' "$round" "$t" "$rps"
        SUM[$t]=$(perl -e "print ${SUM[$t]:-0} + $rps")
    done
done
if grep -q 'Non-2xx' "$WORK/wrk.log"; then
    echo "bench: some responses were not 2xx:" >&2
    grep 'Non-2xx' "$WORK/wrk.log" >&2
fi
echo
printf '%-11s %12s %10s\n' target 'req/s (mean)' 'vs direct'
direct=$(perl -e "print ${SUM[direct]} / $ROUNDS")
for t in "${TARGETS[@]}"; do
    mean=$(perl -e "print ${SUM[$t]} / $ROUNDS")
    printf '%-11s %12.0f %9.1f%%\n' "$t" "$mean" "$(perl -e "print 100 * $mean / $direct")"
done
ratio() { perl -e "printf '%.1f%%', 100 * ${SUM[$1]} / ${SUM[$2]}"; }
echo
echo "token/anonymous: gateway $(ratio gw-token gw-anon)${BASE_PORT:+, baseline $(ratio base-token base-anon)}, api alone $(ratio direct-user direct)"
