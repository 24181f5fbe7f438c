#!/usr/bin/env bash
# Lighthouse (its default mobile profile: simulated slow 4G and a 4x slower CPU) on the storefront
# and a product page of a running store, with Debian's Chromium, headless.
#
#   bench/lighthouse.sh [URL [RUNS]]   [https://127.0.0.1:8443, `cargo xtask dev`'s store; 3 runs]
#
# Each page is measured RUNS times; the run with the median performance score is reported
# (performance, accessibility, and its FCP, LCP, TBT, CLS and Speed Index), and every report is
# kept as JSON in $TARGET/lighthouse/. Lighthouse 12.2.3 (13 wants Node.js 22) is installed once
# with npm into $TARGET/bench-tools. The dev store's certificate comes from a local CA, so
# Chromium runs with --ignore-certificate-errors.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
URL=${1:-https://127.0.0.1:8443}
RUNS=${2:-3}
TOOLS=$TARGET/bench-tools
OUT=$TARGET/lighthouse
LIGHTHOUSE_VERSION=12.2.3
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}

if [ "$(cat "$TOOLS/node_modules/lighthouse/package.json" 2>/dev/null | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).version)}catch{}})')" != "$LIGHTHOUSE_VERSION" ]; then
    echo "bench: installing lighthouse $LIGHTHOUSE_VERSION into $TOOLS" >&2
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --save-exact --no-audit --no-fund "lighthouse@$LIGHTHOUSE_VERSION" >&2
fi
[ -x "$CHROME_PATH" ] || { echo "bench: no Chromium at $CHROME_PATH (apt-get install chromium)" >&2; exit 1; }

SLUG=$(curl -sk "$URL/graphql" -H 'content-type: application/json' \
    -d '{"query":"{ products(first: 1) { edges { node { slug } } } }"}' \
    | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).data.products.edges[0].node.slug))')
mkdir -p "$OUT"

measure() { # name path
    local name=$1 path=$2 run
    for run in $(seq 1 "$RUNS"); do
        node "$TOOLS/node_modules/lighthouse/cli/index.js" "$URL$path" --quiet \
            --only-categories=performance,accessibility --output=json \
            --output-path="$OUT/$name-$run.json" \
            --chrome-flags="--headless=new --no-sandbox --ignore-certificate-errors" >/dev/null
    done
    node - "$name" "$path" "$OUT" "$RUNS" <<'JS'
const [name, path, out, runs] = process.argv.slice(2);
const fs = require("node:fs");
const reports = [];
for (let run = 1; run <= Number(runs); run++) {
  reports.push(JSON.parse(fs.readFileSync(`${out}/${name}-${run}.json`, "utf8")));
}
const score = (r, c) => Math.round(r.categories[c].score * 100);
reports.sort((a, b) => score(a, "performance") - score(b, "performance"));
const r = reports[Math.floor(reports.length / 2)];
const ms = (id) => `${(r.audits[id].numericValue / 1000).toFixed(1)} s`;
console.log(
  `${name.padEnd(12)} ${path.slice(0, 40).padEnd(41)} performance ${String(score(r, "performance")).padStart(3)} ` +
    `(runs: ${reports.map((x) => score(x, "performance")).join(", ")})  accessibility ${score(r, "accessibility")}  ` +
    `FCP ${ms("first-contentful-paint")}  LCP ${ms("largest-contentful-paint")}  ` +
    `TBT ${Math.round(r.audits["total-blocking-time"].numericValue)} ms  CLS ${r.audits["cumulative-layout-shift"].numericValue.toFixed(3)}  ` +
    `SI ${ms("speed-index")}`,
);
JS
}

echo "lighthouse $LIGHTHOUSE_VERSION, mobile, $URL, median of $RUNS runs (reports in $OUT)"
measure storefront /
measure product "/products/$SLUG"
