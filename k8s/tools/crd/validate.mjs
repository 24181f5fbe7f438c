// Validates custom resources against the published CRD schemas that the pinned npm packages of
// package.json carry (compiled validators generated from each project's CRDs): Gateway API,
// KEDA, cert-manager, Prometheus Operator. Reads [{"where": ..., "doc": {...}}, ...] as JSON on
// stdin, prints the problems as a JSON array of strings. Run by k8s/tools/check.py with
// STORE_CRD_NODE_MODULES naming the node_modules `cargo xtask deploy-check` installed (npm ci of
// this directory).
// These validators check types, enums, required fields, patterns and bounds; they do not refuse
// unknown field names (k8s/README.md, "Checks").
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.STORE_CRD_NODE_MODULES;
if (!modules) throw new Error("STORE_CRD_NODE_MODULES is not set");
const GROUPS = {
  "gateway.networking.k8s.io": ["@kubernetes-models/gateway-api", "IoK8sSigsGatewayApiApis"],
  "keda.sh": ["@kubernetes-models/keda", "ComGithubKedacoreKedaV2ApisKeda"],
  "cert-manager.io": ["@kubernetes-models/cert-manager", "ComGithubCertManagerCertManagerPkgApisCertmanager"],
  "monitoring.coreos.com": [
    "@kubernetes-models/prometheus-operator",
    "ComGithubPrometheusOperatorPrometheusOperatorPkgApisMonitoring",
  ],
};
const input = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
for (const { where, doc } of input) {
  const [group, version] = (doc.apiVersion ?? "").split("/");
  const known = GROUPS[group];
  if (!known || !version) {
    problems.push(`${where}: no published schema known for ${doc.apiVersion}`);
    continue;
  }
  const [pkg, prefix] = known;
  const name = prefix + version[0].toUpperCase() + version.slice(1) + doc.kind;
  const file = join(modules, pkg, "_schemas", `${name}.js`);
  if (!existsSync(file)) {
    problems.push(`${where}: ${pkg} has no schema for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  const { validate } = await import(pathToFileURL(file).href);
  if (!validate(doc)) {
    const seen = new Set();
    for (const e of validate.errors ?? []) {
      const text = `${where}: ${e.instancePath || "/"}: ${e.keyword} ${JSON.stringify(e.params)}`;
      if (!seen.has(text)) problems.push(text);
      seen.add(text);
    }
  }
}
process.stdout.write(JSON.stringify(problems));
