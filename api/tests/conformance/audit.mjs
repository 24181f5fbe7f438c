// The store's endpoint against the reference clients, through whatever URL it is given
// (api/tests/it/spec.rs gives the real gateway):
//
// 1. every server audit of `graphql-http` (the GraphQL-over-HTTP spec's conformance suite);
// 2. graphql-js's standard introspection query (every option on), as GraphiQL and code
//    generators send it, over POST and GET, then `buildClientSchema` on the answer.
//
// Prints one line per audit that is not ok, then a last line of JSON:
// {"audits": N, "ok": N, "notices": N, "warnings": N, "errors": N, "introspection": "ok" | reason}
// (a notice is a MAY of the spec not followed, a warning a SHOULD, an error a MUST). Exits 1
// unless no audit warned or failed and the introspection worked.
//
// Usage: node audit.mjs https://127.0.0.1:8443/graphql

import { serverAudits } from 'graphql-http';
import { buildClientSchema, getIntrospectionQuery, printSchema } from 'graphql';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs <graphql url>');
  process.exit(2);
}

const results = [];
// One at a time: the audits are many small requests, and the gateway rate-limits nothing here,
// but a loaded two-core machine answers a burst of 80 slower than a sequence.
for (const audit of serverAudits({ url })) {
  results.push(await audit.fn());
}
let ok = 0;
let notices = 0;
let warnings = 0;
let errors = 0;
for (const result of results) {
  if (result.status === 'ok') {
    ok += 1;
    continue;
  }
  if (result.status === 'notice') {
    notices += 1;
  } else if (result.status === 'warn') {
    warnings += 1;
  } else {
    errors += 1;
  }
  let body = '';
  try {
    body = result.response ? await result.response.text() : '';
  } catch {
    body = '(body already read)';
  }
  const status = result.response ? result.response.status : '-';
  console.log(
    `${result.status.toUpperCase()} ${result.id} ${result.name}: ${result.reason} [${status}] ${body.slice(0, 300)}`,
  );
}

async function introspect() {
  const query = getIntrospectionQuery({
    descriptions: true,
    specifiedByUrl: true,
    directiveIsRepeatable: true,
    schemaDescription: true,
    inputValueDeprecation: true,
    oneOf: true,
  });
  const accept = 'application/graphql-response+json, application/json;q=0.9';
  const post = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept },
    body: JSON.stringify({ query, operationName: 'IntrospectionQuery' }),
  });
  const get = await fetch(
    `${url}?${new URLSearchParams({ query, operationName: 'IntrospectionQuery' })}`,
    { headers: { accept } },
  );
  for (const [how, res] of [['POST', post], ['GET', get]]) {
    const text = await res.text();
    if (res.status !== 200) {
      return `${how}: status ${res.status}: ${text.slice(0, 300)}`;
    }
    const body = JSON.parse(text);
    if (body.errors) {
      return `${how}: ${JSON.stringify(body.errors).slice(0, 300)}`;
    }
    const schema = buildClientSchema(body.data);
    if (!printSchema(schema).includes('type Query')) {
      return `${how}: the schema built from the answer has no Query type`;
    }
  }
  return 'ok';
}

let introspection;
try {
  introspection = await introspect();
} catch (e) {
  introspection = `failed: ${e}`;
}
if (introspection !== 'ok') {
  console.log(`ERROR introspection: ${introspection}`);
}
console.log(
  JSON.stringify({ audits: results.length, ok, notices, warnings, errors, introspection }),
);
process.exit(warnings === 0 && errors === 0 && introspection === 'ok' ? 0 : 1);
