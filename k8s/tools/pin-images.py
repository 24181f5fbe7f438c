#!/usr/bin/env python3
"""The release step's last edit: writes image digests into the prod overlay.

    k8s/tools/pin-images.py store-api=sha256:… store-saga=sha256:… store-gateway=sha256:… \
        nats=sha256:… redis=sha256:… haproxy=sha256:… postgres=sha256:…

Each NAME is an entry of `images:` in k8s/overlays/prod/kustomization.yaml (for the store's
images: the digest `docker push` / `docker buildx build --push` printed; for third-party ones:
the digest of the base's tag, e.g. `docker buildx imagetools inspect redis:7.4.10-bookworm`),
or `postgres` for the CloudNativePG Cluster's imageName in k8s/overlays/prod/patches.yaml.
Then commit the two files: `cargo xtask deploy-check` shows the placeholders left.
"""
import re
import sys
from pathlib import Path

PROD = Path(__file__).resolve().parents[1] / "overlays" / "prod"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def main(args: list[str]) -> int:
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    kustomization = PROD / "kustomization.yaml"
    patches = PROD / "patches.yaml"
    text, ptext = kustomization.read_text(), patches.read_text()
    for arg in args:
        name, _, digest = arg.partition("=")
        if not DIGEST.match(digest):
            print(f"{arg}: not NAME=sha256:<64 hex>", file=sys.stderr)
            return 2
        if name == "postgres":
            ptext, n = re.subn(r"(imageName: \S+?)@sha256:[0-9a-f]{64}", rf"\1@{digest}", ptext)
        else:
            text, n = re.subn(rf"(- name: {re.escape(name)}\n(?:    newName: \S+\n)?    digest: )"
                              r"sha256:[0-9a-f]{64}", rf"\g<1>{digest}", text)
        if n != 1:
            print(f"{name}: no such image entry in {PROD}", file=sys.stderr)
            return 1
    kustomization.write_text(text)
    patches.write_text(ptext)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
