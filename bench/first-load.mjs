// First-load bytes of the SPA per route: what a browser downloads before the page runs (the
// page's wasm, js and css; not the html, images or API answers), raw and compressed as the
// gateway sends it. Run by bench/first-load.sh; Node.js 20, no packages.
//
//   node bench/first-load.mjs URL [LABEL]   a running store (`cargo xtask dev`): each asset is
//                                            fetched three times, with Accept-Encoding br, gzip
//                                            and identity, and the bytes on the wire counted
//   node bench/first-load.mjs DIST [LABEL]  a built dist directory, served as the gateway would:
//                                            a build's `.br`/`.gz` copy when it has one (nginx
//                                            brotli_static/gzip_static), else compressed on the
//                                            fly at the gateway's level 5 (brotli and gzip filters)
//
// Routes: the storefront `/`, a product page, `/cart`, `/publisher`, `/admin` (each the page the
// gateway serves for it: `product.html`, `account.html`, `manage.html` or `index.html`).
// Prints one line per route (and a JSON line with everything, for scripts).
import { readFileSync, existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, gzipSync, constants } from "node:zlib";
import https from "node:https";

const [source, label = source] = process.argv.slice(2);
if (!source) {
  console.error("usage: node bench/first-load.mjs URL|DIST [LABEL]");
  process.exit(2);
}
const remote = /^https?:\/\//.test(source);
const agent = new https.Agent({ rejectUnauthorized: false });

function get(path, encoding) {
  const url = new URL(path, source);
  return new Promise((resolve, reject) => {
    const request = https.get(url, { agent, headers: { "accept-encoding": encoding } }, (response) => {
      const chunks = [];
      response.on("data", (chunk) => chunks.push(chunk));
      response.on("end", () =>
        resolve({
          status: response.statusCode,
          encoding: response.headers["content-encoding"] ?? "identity",
          body: Buffer.concat(chunks),
        }),
      );
    });
    request.on("error", reject);
  });
}

/** The page the gateway answers `route` with (its html). */
async function page(route) {
  if (remote) {
    const answer = await get(route, "identity");
    if (answer.status !== 200) throw new Error(`GET ${route}: ${answer.status}`);
    return answer.body.toString();
  }
  // The gateway's locations (nginx.conf, "the SPA"); a build without the page: index.html.
  const bundles = [
    [/^\/(products|bundles)(\/|$)/, "product.html"],
    [/^\/(cart|checkout|orders|wallet|library|wishlist|notifications)(\/|$)/, "account.html"],
    [/^\/(publisher|admin)(\/|$)/, "manage.html"],
  ];
  const name = bundles.find(([paths, page]) => paths.test(route) && existsSync(join(source, page)))?.[1];
  return readFileSync(join(source, name ?? "index.html"), "utf8");
}

/** Bytes of one asset: raw, gzip and brotli as served. */
async function sizes(path) {
  if (remote) {
    const [raw, gzip, br] = await Promise.all(["identity", "gzip", "br"].map((e) => get(path, e)));
    for (const answer of [raw, gzip, br]) {
      if (answer.status !== 200) throw new Error(`GET ${path}: ${answer.status}`);
    }
    return { raw: raw.body.length, gzip: gzip.body.length, br: br.body.length, body: raw.body };
  }
  const file = join(source, path);
  const body = readFileSync(file);
  const copy = (suffix, compress) =>
    existsSync(file + suffix) ? statSync(file + suffix).size : body.length < 1024 ? body.length : compress(body).length;
  return {
    raw: body.length,
    gzip: copy(".gz", (b) => gzipSync(b, { level: 5 })),
    br: copy(".br", (b) =>
      brotliCompressSync(b, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: b.length },
      }),
    ),
    body,
  };
}

/** The assets a page loads at start: its stylesheets and scripts, and what its scripts load. */
async function firstLoad(route) {
  const html = await page(route);
  const seen = new Map();
  const queue = [];
  const found = (text) => {
    // src="/x.js", href="/x.css", import '/x.js', init('/x_bg.wasm') or { module_or_path: '/x_bg.wasm' },
    // and unquoted in a minified page (href=/x.css)
    for (const [, path] of text.matchAll(/(?:["']|=)(\/[^"'?#\s>]+\.(?:js|wasm|css))(?=["'\s>])/g)) {
      if (!seen.has(path)) {
        seen.set(path, null);
        queue.push(path);
      }
    }
  };
  found(html);
  while (queue.length) {
    const path = queue.shift();
    const asset = await sizes(path);
    seen.set(path, asset);
    if (path.endsWith(".js")) found(asset.body.toString());
  }
  const assets = [...seen].map(([path, { raw, gzip, br }]) => ({ path, raw, gzip, br }));
  const total = (key) => assets.reduce((sum, asset) => sum + asset[key], 0);
  return { route, raw: total("raw"), gzip: total("gzip"), br: total("br"), assets };
}

async function productRoute() {
  if (!remote) return "/products/example";
  const body = JSON.stringify({ query: "{ products(first: 1) { edges { node { slug } } } }" });
  const url = new URL("/graphql", source);
  const answer = await new Promise((resolve, reject) => {
    const request = https.request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (response) => {
        const chunks = [];
        response.on("data", (c) => chunks.push(c));
        response.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
      },
    );
    request.on("error", reject);
    request.end(body);
  });
  const slug = answer?.data?.products?.edges?.[0]?.node?.slug;
  if (!slug) throw new Error(`no product to measure: ${JSON.stringify(answer)}`);
  return `/products/${slug}`;
}

const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`.padStart(10);
const routes = ["/", await productRoute(), "/cart", "/publisher", "/admin"];
const results = [];
for (const route of routes) results.push(await firstLoad(route));

console.log(`first load of ${label} (wasm + js + css; KB = 1000 bytes)`);
console.log(`${"route".padEnd(34)}${"raw".padStart(10)}${"gzip".padStart(10)}${"brotli".padStart(10)}`);
for (const r of results) {
  console.log(`${r.route.slice(0, 33).padEnd(34)}${kb(r.raw)}${kb(r.gzip)}${kb(r.br)}`);
  for (const a of r.assets) {
    console.log(`  ${a.path.slice(0, 31).padEnd(32)}${kb(a.raw)}${kb(a.gzip)}${kb(a.br)}`);
  }
}
console.log(JSON.stringify({ label, routes: results }));
