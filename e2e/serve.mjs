// A stand-in for the gateway when testing the SPA alone: serves a trunk `dist/` with the
// index.html fallback for client routes, proxies /graphql to the api, and sends the gateway's
// Content-Security-Policy (trunk's inline loader is moved into a file, as `cargo xtask` does).
//
//   DIST=web/dist API=http://127.0.0.1:8080 MEDIA_DIR=target/dev/objects PORT=8099 node e2e/serve.mjs
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';

const dist = path.resolve(process.env.DIST ?? 'web/dist');
const api = new URL(process.env.API ?? 'http://127.0.0.1:8080');
const port = Number(process.env.PORT ?? 8099);
// The api's OBJECT_STORE_DIR: product images are served from its products/ as /media/products/.
const media = process.env.MEDIA_DIR ? path.resolve(process.env.MEDIA_DIR) : null;
const csp = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; " +
  "img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.webp': 'image/webp', '.json': 'application/json',
};

// index.html with its inline module script moved to /loader-inline.js (as xtask's build_spa does).
let index = fs.readFileSync(path.join(dist, 'index.html'), 'utf8');
let loader = null;
const open = '<script type="module">';
const at = index.indexOf(open);
if (at >= 0) {
  const end = index.indexOf('</script>', at);
  loader = index.slice(at + open.length, end).trim();
  index = index.slice(0, at) + '<script type="module" src="/loader-inline.js"></script>' +
    index.slice(end + '</script>'.length);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  if (media && url.pathname.startsWith('/media/products/')) {
    const file = path.join(media, path.normalize(decodeURIComponent(url.pathname.slice('/media'.length))));
    if (file.startsWith(media) && fs.existsSync(file) && fs.statSync(file).isFile()) {
      res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
      fs.createReadStream(file).pipe(res);
    } else {
      res.writeHead(404);
      res.end();
    }
    return;
  }
  if (url.pathname.startsWith('/graphql')) {
    const upstream = http.request(
      { host: api.hostname, port: api.port, path: req.url, method: req.method, headers: req.headers },
      (up) => { res.writeHead(up.statusCode, up.headers); up.pipe(res); });
    upstream.on('error', () => { res.writeHead(502); res.end('bad gateway'); });
    req.pipe(upstream);
    return;
  }
  res.setHeader('Content-Security-Policy', csp);
  if (url.pathname === '/loader-inline.js' && loader) {
    res.writeHead(200, { 'Content-Type': 'text/javascript' });
    res.end(loader);
    return;
  }
  const file = path.join(dist, path.normalize(url.pathname));
  if (file.startsWith(dist) && url.pathname !== '/' && fs.existsSync(file) && fs.statSync(file).isFile()) {
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(200, { 'Content-Type': types['.html'] });
  res.end(index);
});

// WebSocket subscriptions (/graphql/ws): pass the upgrade through to the api.
server.on('upgrade', (req, socket, head) => {
  const upstream = net.connect(Number(api.port), api.hostname, () => {
    const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
    upstream.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
    upstream.write(head);
    upstream.pipe(socket);
    socket.pipe(upstream);
  });
  upstream.on('error', () => socket.destroy());
  socket.on('error', () => upstream.destroy());
});

server.listen(port, '127.0.0.1', () => console.log(`serving ${dist} on http://127.0.0.1:${port}, api ${api.href}`));
