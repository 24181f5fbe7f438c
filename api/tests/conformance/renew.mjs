// The reference `graphql-ws` client renews an expired access token by reconnecting (issue 16),
// run by api/tests/it/spec.rs through the real gateway.
//
// The client subscribes to `notificationReceived` with a token that expires in seconds. The
// server closes the socket when it expires (4403: the client retries; 4401 would be final), the
// client calls `connectionParams` again, which renews the token with `refreshSession` as an app
// would, reconnects, subscribes again, and receives the notification the test publishes (again
// and again, from the line `connected 2` on, until this prints it).
//
// Prints JSON lines: {"event":"params","n":N} (each call of `connectionParams`),
// {"event":"connected","n":N}, {"event":"closed","code":C}, {"event":"notification","title":T},
// then exits 0; on an error or after 60 s, {"event":"failed","reason":R} and exits 1.
//
// Usage: node renew.mjs <https graphql url> <wss url> <short-lived access token> <refresh token>

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [httpUrl, wsUrl, firstToken, firstRefresh] = process.argv.slice(2);
if (!firstRefresh) {
  console.error('usage: node renew.mjs <graphql url> <ws url> <access token> <refresh token>');
  process.exit(2);
}

const say = (o) => console.log(JSON.stringify(o));
const fail = (reason) => {
  say({ event: 'failed', reason: String(reason && reason.message ? reason.message : reason) });
  process.exit(1);
};
setTimeout(() => fail('no notification within 60 s'), 60000).unref();

let refresh = firstRefresh;
let params = 0;
// A fresh access token, as an app renews it: the refresh token rotates on every use.
async function renewed() {
  const res = await fetch(httpUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      query: 'mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }',
      variables: { t: refresh },
    }),
  });
  const body = await res.json();
  const pair = body.data && body.data.refreshSession;
  if (!pair) {
    throw new Error(`refreshSession failed: ${JSON.stringify(body)}`);
  }
  refresh = pair.refreshToken;
  return pair.accessToken;
}

let connected = 0;
const client = createClient({
  url: wsUrl,
  webSocketImpl: WebSocket,
  // Called on every connection attempt: the first uses the given token, later ones renew it.
  connectionParams: async () => {
    params += 1;
    say({ event: 'params', n: params });
    const token = params === 1 ? firstToken : await renewed();
    return { Authorization: `Bearer ${token}` };
  },
  retryAttempts: 5,
  on: {
    connected: () => {
      connected += 1;
      say({ event: 'connected', n: connected });
    },
    closed: (e) => say({ event: 'closed', code: e && e.code }),
  },
});

client.subscribe(
  { query: 'subscription { notificationReceived { title } }' },
  {
    next: (value) => {
      if (value.errors) {
        fail(JSON.stringify(value.errors));
        return;
      }
      say({ event: 'notification', title: value.data.notificationReceived.title });
      client.dispose();
      process.exit(0);
    },
    error: (e) => fail(e && e.code ? `closed ${e.code} ${e.reason}` : e),
    complete: () => fail('the subscription completed'),
  },
);
