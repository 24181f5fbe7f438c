// Every browser test, one after the other, each in a Node process (and browser) of its own:
// the shopper/publisher/admin walk of the store, then digital delivery. Exits non-zero when one
// fails; the next still runs, so one run reports every failure.
//
//   BASE_URL=https://127.0.0.1:8443 SHOTS=/tmp node e2e/run.mjs
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const tests = ['spa.test.mjs', 'delivery.test.mjs'];
let failed = [];
for (const test of tests) {
  console.log(`== ${test}`);
  const res = spawnSync(process.execPath, [path.join(here, test)], { stdio: 'inherit' });
  if (res.status !== 0) {
    failed.push(test);
  }
}
if (failed.length > 0) {
  console.log(`failed: ${failed.join(', ')}`);
  process.exit(1);
}
console.log(`passed: ${tests.join(', ')}`);
