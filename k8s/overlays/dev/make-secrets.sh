#!/bin/sh
# Makes the dev overlay's secrets in k8s/overlays/dev/secrets/ (git-ignored), keeping any that
# exist: an RS256 key pair (`api gen-keys`), the gateway's shared secret, the download-link secret,
# the Redis and NATS passwords (hex) and the first admin's password (printed once). Run from anywhere; needs cargo and openssl.
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
root="$(cd "$(dirname "$0")/../../.." && pwd)"
mkdir -p "$dir"
chmod 700 "$dir"
if ! grep -q "BEGIN" "$dir/jwt-private.pem" 2>/dev/null; then
    rm -f "$dir/jwt-private.pem" "$dir/jwt-public.pem"
    (cd "$root" && cargo run -q -p api -- gen-keys --dir "$dir")
    cp "$dir/jwt-public.pem" "$dir/jwt-public-keys.pem"
fi
for name in gateway-secret download-secret admin-password redis-password nats-password; do
    if ! [ -s "$dir/$name" ] || grep -q "^placeholder" "$dir/$name"; then
        openssl rand -hex 24 | tr -d '\n' > "$dir/$name"
        if [ "$name" = admin-password ]; then
            echo "admin password (admin@store.test): $(cat "$dir/$name")"
        fi
    fi
done
echo "secrets in $dir"
