#!/bin/sh
# Entrypoint of the gateway image: renders the repository's nginx.conf template, then runs nginx
# in the foreground.
#
# - The variables are exactly the `${NAME}`s listed in the template's header comment (the list
#   xtask/src/gateway.rs reads too); only those are replaced (envsubst with an explicit list), so
#   nginx's own `$variables` stay. Every one must be set: a missing one stops the start.
# - `<NAME>_FILE`: when NAME is unset and NAME_FILE names a file, its content (without the final
#   newline) is the value. Secrets (GATEWAY_SECRET, GATEWAY_DOWNLOAD_SECRET) come from mounted
#   Secret files that way.
# - GATEWAY_TLS_SELF_SIGNED=1 (compose only): when ${GATEWAY_TLS_CERT} does not exist, make a
#   self-signed certificate for localhost there first. Never set in a cluster.
# - The rendered file is written to ${GATEWAY_RUN_DIR}/nginx.conf (the root filesystem stays
#   read-only).
set -eu

template="${GATEWAY_TEMPLATE:-/etc/store/gateway/nginx.conf.template}"
[ -r "$template" ] || { echo "gateway: template $template not readable" >&2; exit 1; }

names=$(sed -n '/^[^#]/q; s/^#[[:space:]]*\${\([A-Z0-9_]*\)}.*/\1/p' "$template")
[ -n "$names" ] || { echo "gateway: no \${NAME} list in the header of $template" >&2; exit 1; }

shell_format=""
missing=""
for name in $names; do
    eval "isset=\${$name+x}"
    if [ -z "$isset" ]; then
        eval "file=\${${name}_FILE:-}"
        if [ -n "$file" ]; then
            [ -r "$file" ] || { echo "gateway: ${name}_FILE=$file is not readable" >&2; exit 1; }
            value=$(cat "$file")
            export "$name=$value"
        else
            missing="$missing $name"
        fi
    fi
    shell_format="$shell_format \${$name}"
done
[ -z "$missing" ] || { echo "gateway: set these variables (or <NAME>_FILE):$missing" >&2; exit 1; }

run_dir="${GATEWAY_RUN_DIR}"
mkdir -p "$run_dir"
# The token verifier's socket (see "Token cache" in nginx.conf): a container restarted after a
# crash finds the old one in its emptyDir, and nginx would not bind over it.
rm -f "$run_dir/verify.sock"

if [ "${GATEWAY_TLS_SELF_SIGNED:-}" = "1" ] && [ ! -f "${GATEWAY_TLS_CERT}" ]; then
    mkdir -p "$(dirname "${GATEWAY_TLS_CERT}")" "$(dirname "${GATEWAY_TLS_KEY}")"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "${GATEWAY_TLS_KEY}" -out "${GATEWAY_TLS_CERT}" 2>/dev/null
    echo "gateway: made a self-signed certificate for localhost" >&2
fi

envsubst "$shell_format" < "$template" > "$run_dir/nginx.conf"
nginx -t -q -e stderr -c "$run_dir/nginx.conf"
exec nginx -e stderr -c "$run_dir/nginx.conf" -g 'daemon off;'
