// Access-token verification and request routing at the edge, for Debian's njs 0.7.9 (see the
// "Decisions" in nginx.conf).
//
// - `verifier` answers /verify on a unix socket, asked by gateway/token.lua when the token is
//   not in the token cache of nginx.conf: 200 with the caller in X-Auth-* and
//   `X-Auth-Ttl` (how long the answer may be kept: until the token expires) for a valid access
//   token in `Authorization: Bearer …` (RS256: `alg` exactly RS256, a known `kid`, `iss`, `aud`,
//   `exp`, `nbf`), else 401. It serves /graphql, /graphql/upload and /uploads/builds/. An API
//   client's token (OAuth client credentials, issued at /oauth/token) carries `client_id` and
//   `scope` too: both or neither, with role `publisher`; they become X-Auth-Client and
//   X-Auth-Scope (empty for a person's token), and the api bounds the publisher by them.
// - `route` is the `js_content` handler of /graphql and /graphql/upload: the caller is already
//   known ($jwt_user_*); it reads the body and internally redirects to the named location that
//   proxies to the api:
//     @api          ordinary requests
//     @api_limited  a request whose body (or GET query) names signIn / signUp / topUpWallet
//                   (limit_req), JSON or multipart, escaped (`sign\u0049n`) or not
//   /graphql/upload passes only multipart POSTs (GraphQL multipart requests): anything else gets
//   415 (405 for another method).
// - `gate` is the `js_content` handler of /graphql/ws, whose token may also come as
//   `?access_token=`: it verifies the token itself and redirects to @api_ws (the query string
//   dropped). WebSocket frames never pass through njs: the api limits what travels in them.
// - `refuse` answers the error pages of the GraphQL paths (400, 401, 413, 429, 502, …) as a
//   GraphQL error with `extensions.code`, as the api does; `deny` is the 401.
// No token: the request goes on anonymous. A malformed, badly signed, expired or not yet valid
// token: 401 with `WWW-Authenticate: Bearer error="invalid_token"` (the SPA refreshes on it).
//
// njs 0.7.9 runs each request in a fresh VM: nothing computed here survives a request, so the
// RSA key is imported for every verification. That is why Lua keeps the verifier's answers.
// The public keys come from `js_preload_object gateway_keys from <file>` — the JSON object
// `{ "<kid>": "<SPKI PEM>" }` written by `api gateway-keys` (rotating keys = reload).

import fs from 'fs';

const LEEWAY_SECS = 5; // the api's jsonwebtoken leeway (api/src/infra/auth/jwt.rs)
// Longest time nginx keeps the verifier's answer (the token's expiry cuts it shorter).
const TOKEN_CACHE_MAX_SECS = 900;
const ROLES = { user: true, publisher: true, admin: true };
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const BEARER = /^Bearer +(\S+) *$/i;
const CONTROL = /[\u0000-\u001f\u007f]/;
// An API client's `scope`: space-separated names such as `sales:read` (the api checks each).
const SCOPE = /^[a-z]+:[a-z]+( [a-z]+:[a-z]+)*$/;
// Mutations limited per client address (a field name anywhere in the body: aliases and
// operation names cannot hide it; JSON `\uXXXX` escapes are decoded first).
// Exact names: the wallet's `topUp(id:)` status query, polled after a top-up, is not limited.
const LIMITED = /\b(signIn|signUp|topUpWallet)\b/;
const ESCAPE = /\\u([0-9a-fA-F]{4})/g;
const MULTIPART = /^\s*multipart\/form-data\s*;/i;
const GRAPHQL_RESPONSE = /application\/graphql-response\+json/i;

// The refusals of the GraphQL paths: status → [extensions.code, message].
const REFUSALS = {
    400: ['BAD_REQUEST', 'the request is malformed (a header sent twice, or too large)'],
    401: ['UNAUTHENTICATED', 'the access token is invalid or expired'],
    403: ['FORBIDDEN', 'forbidden'],
    405: ['BAD_REQUEST', 'this method is not allowed here'],
    413: ['BAD_REQUEST', 'the request body is too large'],
    414: ['BAD_REQUEST', 'the request line is too long'],
    415: ['BAD_REQUEST', 'this path takes only GraphQL multipart requests (multipart/form-data)'],
    429: ['RATE_LIMITED', 'too many attempts from this address; try again later'],
    494: ['BAD_REQUEST', 'the request headers are too large'],
    500: ['INTERNAL_SERVER_ERROR', 'the gateway failed'],
    502: ['INTERNAL_SERVER_ERROR', 'the api is unavailable'],
    503: ['INTERNAL_SERVER_ERROR', 'the api is unavailable'],
    504: ['INTERNAL_SERVER_ERROR', 'the api did not answer in time'],
};

// Answers `status` as a GraphQL error, in the media type the client accepts.
function answer(r, status, code, message, extensions) {
    const accept = r.headersIn.Accept;
    r.headersOut['Content-Type'] = accept !== undefined && GRAPHQL_RESPONSE.test(accept)
        ? 'application/graphql-response+json' : 'application/json';
    r.headersOut['Cache-Control'] = 'no-store';
    const ext = { code: code };
    if (extensions !== undefined) {
        Object.keys(extensions).forEach((k) => { ext[k] = extensions[k]; });
    }
    r.return(status, JSON.stringify({ errors: [{ message: message, extensions: ext }] }));
}

function deny(r) {
    r.headersOut['WWW-Authenticate'] = 'Bearer error="invalid_token"';
    answer(r, 401, REFUSALS[401][0], REFUSALS[401][1]);
}

// Seconds between two requests of the limit_req rate `10r/m` / `5r/s` (at least 1).
function retryAfter(rate) {
    const m = /^(\d+)r\/([sm])$/.exec(rate || '');
    if (!m || Number(m[1]) === 0) {
        return 60;
    }
    return Math.max(1, Math.ceil((m[2] === 'm' ? 60 : 1) / Number(m[1])));
}

// The error page of the GraphQL paths (`error_page … /_gateway/refused`): $status is the refused
// status.
function refuse(r) {
    let status = Number(r.variables.status);
    if (!REFUSALS[status]) {
        status = 500;
    }
    const code = REFUSALS[status][0];
    const message = REFUSALS[status][1];
    if (status === 401) {
        deny(r);
        return;
    }
    if (status === 429) {
        const secs = retryAfter(r.variables.gateway_auth_rate);
        r.headersOut['Retry-After'] = String(secs);
        answer(r, 429, code, message, { retryAfterSeconds: secs });
        return;
    }
    // 494 is nginx's own name for "request headers too large"; the client sees 400.
    answer(r, status === 494 ? 400 : status, code, message);
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

// The token's parts and claims when its shape, header and claims are acceptable now, else null.
// The signature is not checked here.
function inspect(r, token) {
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
    if (!Object.prototype.hasOwnProperty.call(gateway_keys, header.kid)) {
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
    // An API client's token: both claims, well-formed, acting for a publisher; or neither.
    if (claims.client_id !== undefined || claims.scope !== undefined) {
        if (typeof claims.client_id !== 'string' || !UUID.test(claims.client_id)
            || typeof claims.scope !== 'string' || !SCOPE.test(claims.scope)
            || claims.role !== 'publisher') {
            return null;
        }
    }
    return { parts: parts, kid: header.kid, claims: claims, now: now };
}

// Whether the RS256 signature of `seen` (from `inspect`) holds: imports the key and verifies.
async function signatureHolds(seen) {
    const alg = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const key = await crypto.subtle.importKey('spki', pemToDer(gateway_keys[seen.kid]), alg,
        false, ['verify']);
    return crypto.subtle.verify(alg, key, Buffer.from(seen.parts[2], 'base64url'),
        Buffer.from(seen.parts[0] + '.' + seen.parts[1]));
}

// The verified claims of `token`, or null, checking the signature here.
async function verify(r, token) {
    const seen = inspect(r, token);
    if (seen === null) {
        return null;
    }
    return (await signatureHolds(seen)) ? seen.claims : null;
}

// The verifier gateway/token.lua asks (see the top of this file).
async function verifier(r) {
    const found = tokenOf(r);
    let claims = null;
    if (found.token !== undefined) {
        try {
            claims = await verify(r, found.token);
        } catch (e) {
            claims = null;
        }
    }
    if (claims === null) {
        r.return(401, '');
        return;
    }
    const left = claims.exp + LEEWAY_SECS - Math.floor(Date.now() / 1000);
    r.headersOut['X-Auth-Ttl'] = String(Math.max(1, Math.min(left, TOKEN_CACHE_MAX_SECS)));
    r.headersOut['X-Auth-Id'] = claims.sub;
    r.headersOut['X-Auth-Role'] = claims.role;
    r.headersOut['X-Auth-Name'] = claims.name;
    r.headersOut['X-Auth-Iat'] = String(claims.iat);
    r.headersOut['X-Auth-Client'] = claims.client_id || '';
    r.headersOut['X-Auth-Scope'] = claims.scope || '';
    r.return(200, '');
}

// The request body as text (decoded as UTF-8, lossy), wherever nginx keeps it; '' when none.
// /graphql/upload keeps its bodies in files that stay until the request ends
// (`client_body_in_file_only clean`: nginx's ordinary temporary file is unlinked at once, and
// cannot be read by its name).
function bodyText(r) {
    try {
        const buf = r.requestBuffer;
        if (buf !== undefined) {
            return buf.toString();
        }
    } catch (e) {
        // The body is in a temporary file (large uploads).
    }
    const file = r.variables.request_body_file;
    return file ? fs.readFileSync(file).toString() : '';
}

function namesLimited(text) {
    const plain = text.indexOf('\\') < 0 ? text
        : text.replace(ESCAPE, (m, hex) => String.fromCharCode(parseInt(hex, 16)));
    return LIMITED.test(plain);
}

// Whether the request names a rate-limited mutation (in its body, or in the query string).
function limited(r) {
    try {
        if (r.method === 'GET') {
            const args = r.variables.args;
            return args ? namesLimited(decodeURIComponent(args.replace(/\+/g, ' '))) : false;
        }
        return namesLimited(bodyText(r));
    } catch (e) {
        return true; // unreadable: limited, to be safe
    }
}

// /graphql and /graphql/upload, after gateway/token.lua (the caller is in $jwt_user_*).
function route(r) {
    if (r.uri === '/graphql/upload') {
        if (r.method !== 'POST') {
            answer(r, 405, REFUSALS[405][0], REFUSALS[405][1]);
            return;
        }
        const type = r.headersIn['Content-Type'];
        if (type === undefined || !MULTIPART.test(type)) {
            answer(r, 415, REFUSALS[415][0], REFUSALS[415][1]);
            return;
        }
    }
    r.internalRedirect(limited(r) ? '@api_limited' : '@api');
}

// /graphql/ws: the token from `Authorization` or `?access_token=`, verified here.
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
        r.variables.jwt_user_client = claims.client_id || '';
        r.variables.jwt_user_scope = claims.scope || '';
    }
    r.internalRedirect('@api_ws');
}

export default { route, gate, verifier, refuse, deny };
