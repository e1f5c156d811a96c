#!/usr/bin/env bash
# Quick start: build examples/hello into an OCI image layout (out/hello) with
# no registry, no Docker daemon and no container runtime, then show it.
#
#   bash scripts/quickstart.sh
#
# Installs node dependencies and compiles when needed. As root on Debian/Ubuntu
# it also installs skopeo (to show the result); otherwise it falls back to
# printing the layout's index and manifest with node.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v node >/dev/null 2>&1 || ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
  echo "error: ocistack needs Node.js >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# Node dependencies (scripts ignored: we compile right below).
stamp=node_modules/.package-lock.json
if [ ! -d node_modules ] || [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
  echo "==> installing node dependencies"
  if [ -f package-lock.json ]; then npm ci --ignore-scripts --no-audit --no-fund; else npm install --ignore-scripts --no-audit --no-fund; fi
fi

echo "==> compiling (tsc -p .)"
if ! npx tsc -p .; then
  # tsc emits JavaScript even with type errors; go on if the CLI is there.
  echo "warning: the TypeScript compiler reported errors (see above)" >&2
fi
if [ ! -f dist/lib/cli/main.js ]; then
  echo "error: dist/lib/cli/main.js was not produced; the build failed" >&2
  exit 1
fi

# skopeo only shows the result; install it when we can, carry on when we cannot.
if ! command -v skopeo >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing skopeo to inspect the result"
  (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends skopeo) ||
    echo "warning: could not install skopeo; showing the layout with node instead" >&2
fi

echo "==> node bin/ocistack.js build examples/hello -t hello:latest --output type=oci,dest=out/hello"
rm -rf out/hello
node bin/ocistack.js build examples/hello -t hello:latest --output type=oci,dest=out/hello

# The name the image has in the layout's index.json (org.opencontainers.image.ref.name).
ref=$(node -e '
  const idx = JSON.parse(require("fs").readFileSync("out/hello/index.json", "utf8"));
  const m = (idx.manifests || [])[0] || {};
  process.stdout.write((m.annotations || {})["org.opencontainers.image.ref.name"] || "");
')

echo
if command -v skopeo >/dev/null 2>&1; then
  target="oci:out/hello${ref:+:$ref}"
  echo "==> skopeo inspect $target"
  skopeo inspect "$target"
  echo "==> skopeo inspect --config $target"
  skopeo inspect --config "$target"
else
  echo "==> out/hello/index.json"
  cat out/hello/index.json
  echo
  echo "==> manifest"
  node -e '
    const fs = require("fs");
    const idx = JSON.parse(fs.readFileSync("out/hello/index.json", "utf8"));
    const blob = (d) => fs.readFileSync("out/hello/blobs/" + d.replace(":", "/"), "utf8");
    const manifest = JSON.parse(blob(idx.manifests[0].digest));
    console.log(JSON.stringify(manifest, null, 2));
    console.log("==> config");
    console.log(JSON.stringify(JSON.parse(blob(manifest.config.digest)), null, 2));
  '
fi
echo
echo "done: the image is in out/hello (an OCI image layout${ref:+, tagged $ref})"
