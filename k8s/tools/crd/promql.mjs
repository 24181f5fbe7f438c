// Parses PromQL expressions with the Prometheus project's own grammar (@prometheus-io/lezer-promql,
// the parser of Prometheus's web UI) and reports those that do not parse: the alert rules and the
// Grafana dashboard of components/monitoring. Reads [{"where": ..., "expr": ...}, ...] as JSON on
// stdin, prints the problems as a JSON array of strings. Run by k8s/tools/check.py with
// STORE_CRD_NODE_MODULES naming the node_modules `cargo xtask deploy-check` installed (npm ci of
// this directory). Syntax only: k8s/tools/check.py checks the metric names and labels.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.STORE_CRD_NODE_MODULES;
if (!modules) throw new Error("STORE_CRD_NODE_MODULES is not set");
const entry = join(modules, "@prometheus-io", "lezer-promql", "dist", "index.es.js");
const { parser } = await import(pathToFileURL(entry).href);

// Grafana's interval variables stand where PromQL wants a duration; other variables sit inside
// label matcher strings, which parse as they are.
const grafana = (expr) => expr.replace(/\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?/g, "5m");

const input = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
for (const { where, expr } of input) {
  const text = grafana(expr);
  const errors = [];
  parser.parse(text).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
    },
  });
  if (errors.length > 0) {
    const at = errors[0];
    const near = text.slice(Math.max(0, at - 30), at) + "⟨here⟩" + text.slice(at, at + 30);
    problems.push(`${where}: PromQL does not parse at ${at}: ${near.replace(/\s+/g, " ")}`);
  }
}
process.stdout.write(JSON.stringify(problems));
