// Access-token verification at the edge, for Debian's njs 0.7.9 (see nginx.conf).
//
// `gate` is the `js_content` handler of /graphql and /graphql/ws (`check`, below, serves
// /uploads/builds/). It verifies the access token (RS256 with crypto.subtle: `alg` exactly
// RS256, a known `kid`, `iss`, `aud`, `exp`, `nbf`), stores the caller in the `js_var` variables
// $jwt_user_* and internally redirects to the named location that proxies to the api:
//   @api          ordinary requests
//   @api_limited  POST /graphql whose document names signIn / signUp / topUp* (limit_req)
//   @api_ws       the WebSocket upgrade of /graphql/ws (query string dropped: it may hold the token)
// No token: the request goes on anonymous. A malformed, badly signed, expired or not yet valid
// token: 401 with `WWW-Authenticate: Bearer error="invalid_token"` (the SPA refreshes on it).
//
// The public keys come from `js_preload_object gateway_keys from <file>` — the JSON object
// `{ "<kid>": "<SPKI PEM>" }` written by `api gateway-keys`. njs 0.7.9 cannot import JWKs and has
// no shared dictionary, so the PEM is imported on every verification (rotating keys = reload).

const LEEWAY_SECS = 5; // the api's jsonwebtoken leeway (api/src/auth/jwt.rs)
const ROLES = { user: true, publisher: true, admin: true };
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const BEARER = /^Bearer +(\S+) *$/i;
const CONTROL = /[\u0000-\u001f\u007f]/;
// Mutations limited per client address (a field name anywhere in the document: aliases and
// operation names cannot hide it; the JSON is decoded first when the body holds an escape).
// Exact names: the wallet's `topUp(id:)` status query, polled after a top-up, is not limited.
const LIMITED = /\b(signIn|signUp|topUpWallet)\b/;

function deny(r) {
    r.headersOut['WWW-Authenticate'] = 'Bearer error="invalid_token"';
    r.headersOut['Content-Type'] = 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    r.return(401, '{"errors":[{"message":"the access token is invalid or expired",'
        + '"extensions":{"code":"UNAUTHENTICATED"}}]}');
}

// The token of the request: { token }, {} when there is none, { bad: true } when unusable.
function tokenOf(r) {
    const header = r.headersIn.Authorization;
    if (header !== undefined) {
        const m = BEARER.exec(header);
        return m ? { token: m[1] } : { bad: true };
    }
    if (r.uri === '/graphql/ws') {
        const t = r.args.access_token;
        if (t === undefined) {
            return {};
        }
        return typeof t === 'string' ? { token: t } : { bad: true };
    }
    return {};
}

function json64(part) {
    return JSON.parse(Buffer.from(part, 'base64url').toString());
}

function pemToDer(pem) {
    return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

// The verified claims of `token`, or null.
async function verify(r, token) {
    if (token.length > 8192 || !JWT.test(token)) {
        return null;
    }
    const parts = token.split('.');
    let header;
    let claims;
    try {
        header = json64(parts[0]);
        claims = json64(parts[1]);
    } catch (e) {
        return null;
    }
    if (header === null || typeof header !== 'object' || header.alg !== 'RS256'
        || typeof header.kid !== 'string' || header.crit !== undefined
        || claims === null || typeof claims !== 'object') {
        return null;
    }
    const keys = gateway_keys;
    if (!Object.prototype.hasOwnProperty.call(keys, header.kid)) {
        return null;
    }
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const key = await crypto.subtle.importKey('spki', pemToDer(keys[header.kid]), alg, false,
        ['verify']);
    const ok = await crypto.subtle.verify(alg, key, Buffer.from(parts[2], 'base64url'),
        Buffer.from(parts[0] + '.' + parts[1]));
    if (!ok) {
        return null;
    }
    const now = Math.floor(Date.now() / 1000);
    const aud = claims.aud;
    const audOk = aud === r.variables.jwt_audience
        || (Array.isArray(aud) && aud.indexOf(r.variables.jwt_audience) >= 0);
    if (!audOk || claims.iss !== r.variables.jwt_issuer
        || !Number.isInteger(claims.exp) || claims.exp + LEEWAY_SECS <= now
        || !Number.isInteger(claims.nbf) || claims.nbf - LEEWAY_SECS > now
        || !Number.isInteger(claims.iat)
        || typeof claims.sub !== 'string' || !UUID.test(claims.sub)
        || !ROLES[claims.role] || typeof claims.name !== 'string' || CONTROL.test(claims.name)) {
        return null;
    }
    return claims;
}

// Whether a POST /graphql body names a rate-limited mutation.
function limited(r) {
    if (r.method !== 'POST' || r.uri !== '/graphql') {
        return false;
    }
    const body = r.requestText;
    if (body === undefined) {
        return true; // not in memory (cannot happen with client_body_buffer_size = max size)
    }
    if (body.indexOf('\\') < 0) {
        return LIMITED.test(body);
    }
    try {
        const doc = JSON.parse(body);
        return typeof doc.query === 'string' ? LIMITED.test(doc.query) : LIMITED.test(body);
    } catch (e) {
        return LIMITED.test(body);
    }
}

function route(r) {
    if (r.uri === '/graphql/ws') {
        return '@api_ws';
    }
    return limited(r) ? '@api_limited' : '@api';
}

async function gate(r) {
    const found = tokenOf(r);
    if (found.bad) {
        deny(r);
        return;
    }
    if (found.token !== undefined) {
        let claims = null;
        try {
            claims = await verify(r, found.token);
        } catch (e) {
            claims = null;
        }
        if (claims === null) {
            deny(r);
            return;
        }
        r.variables.jwt_user_id = claims.sub;
        r.variables.jwt_user_role = claims.role;
        r.variables.jwt_user_name = claims.name;
        r.variables.jwt_user_iat = String(claims.iat);
    }
    r.internalRedirect(route(r));
}

// The other design (auth_request to a js_content location): answers 204 with the caller in
// X-Auth-* response headers, or 401. nginx.conf uses it for build uploads (/uploads/builds/),
// whose bodies must stream to the api: js_content reads the whole body before it runs, an auth
// subrequest never reads it. auth_request does not pass on the WWW-Authenticate header that njs
// sets, so nginx.conf answers a refused upload with `deny` (the 401 of `gate`) as its error page.
// bench/gateway.sh renders a variant of the configuration that uses `check` for /graphql too, to
// compare the two designs.
async function check(r) {
    const found = tokenOf(r);
    if (found.bad) {
        deny(r);
        return;
    }
    if (found.token !== undefined) {
        let claims = null;
        try {
            claims = await verify(r, found.token);
        } catch (e) {
            claims = null;
        }
        if (claims === null) {
            deny(r);
            return;
        }
        r.headersOut['X-Auth-Id'] = claims.sub;
        r.headersOut['X-Auth-Role'] = claims.role;
        r.headersOut['X-Auth-Name'] = claims.name;
        r.headersOut['X-Auth-Iat'] = String(claims.iat);
    }
    r.return(204);
}

export default { gate, check, deny };
