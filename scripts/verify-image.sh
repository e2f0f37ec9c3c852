#!/usr/bin/env bash
# Builds the Dockerfile's runtime stage with buildah and proves the image runs — without a Docker engine or
# a registry (neither is available here):
#   - the base is Debian 12 made by debootstrap (minbase) and committed as a local image, standing in for
#     debian:bookworm-slim (cached in buildah's storage after the first run);
#   - the build stage is replaced by an image holding the binary built on this machine (BINARY_IMAGE);
#   - the runtime stage's own RUN installs deploy/runtime-packages.txt from Debian's mirror;
#   - the binary then runs inside it as the image's user with the image's environment: it must start on the
#     embedded default (creating its SQLite store and master-key file in /data), answer /healthz from the host,
#     pass the image's own HEALTHCHECK command, and exit 0 on SIGTERM.
#   scripts/verify-image.sh BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: scripts/verify-image.sh BINARY}
for tool in buildah debootstrap curl python3; do
  command -v "$tool" >/dev/null || { echo "verify-image: $tool is missing (scripts/install-deps.sh test)" >&2; exit 1; }
done

b=(buildah --storage-driver vfs)
base=localhost/llm-proxy-verify-base:bookworm
binary=localhost/llm-proxy-verify-binary:latest
image=localhost/llm-proxy:verify
work=$(mktemp -d)
serve_pid=""
cleanup() {
  [ -n "$serve_pid" ] && kill -KILL "$serve_pid" 2>/dev/null || true
  pkill -KILL -f "^/usr/local/bin/llm-proxy serve.*verify-image-$$" 2>/dev/null || true
  "${b[@]}" rm -a >/dev/null 2>&1 || true
  "${b[@]}" rmi -f "$image" "$binary" >/dev/null 2>&1 || true
  "${b[@]}" rmi --prune >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! "${b[@]}" inspect --type image "$base" >/dev/null 2>&1; then
  echo "verify-image: making the Debian 12 base with debootstrap (once per machine)" >&2
  # Twice at most: a mirror hiccup should not fail the test run.
  for attempt in 1 2; do
    rm -rf "$work/rootfs"
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 && break
    [ "$attempt" = 2 ] && { tail -20 "$work/debootstrap.log" >&2; exit 1; }
    sleep 5
  done
  # As debian:bookworm-slim ships: no downloaded packages or package lists left in the image.
  rm -rf "$work/rootfs"/var/cache/apt/archives/*.deb "$work/rootfs"/var/lib/apt/lists/*
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  rm -rf "$work/rootfs"
  ctr=$("${b[@]}" from scratch)
  "${b[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  "${b[@]}" commit --rm -q "$ctr" "$base" >/dev/null
  rm -f "$work/rootfs.tar"
fi

# Installed as the build stage installs it (stripped).
install -s -m 0755 "$bin" "$work/llm-proxy"
ctr=$("${b[@]}" from scratch)
"${b[@]}" copy "$ctr" "$work/llm-proxy" /usr/local/bin/llm-proxy >/dev/null
"${b[@]}" commit --rm -q "$ctr" "$binary" >/dev/null

for attempt in 1 2; do  # its RUN fetches packages from the mirror: retry once
  "${b[@]}" bud --isolation chroot --format docker --layers=false \
    --build-arg RUNTIME_IMAGE="$base" --build-arg BINARY_IMAGE="$binary" -t "$image" . >"$work/bud.log" 2>&1 && break
  [ "$attempt" = 2 ] && { tail -30 "$work/bud.log" >&2; echo "verify-image: the runtime stage did not build" >&2; exit 1; }
  sleep 5
done
grep -q "STEP.*FROM ${binary%:latest}" "$work/bud.log" || { echo "verify-image: BINARY_IMAGE was not used" >&2; exit 1; }
if grep -q "swift build" "$work/bud.log"; then echo "verify-image: the build stage ran although BINARY_IMAGE replaced it" >&2; exit 1; fi

# What the image declares.
config=$("${b[@]}" inspect --type image "$image")
python3 - "$config" <<'EOF'
import json, sys
c = json.loads(sys.argv[1])["Docker"]["config"]
want = {"User": "llmproxy", "WorkingDir": "/data", "Entrypoint": ["llm-proxy"], "Cmd": ["serve"]}
bad = [f"{k}={c.get(k)!r} (want {v!r})" for k, v in want.items() if c.get(k) != v]
if "8132/tcp" not in (c.get("ExposedPorts") or {}): bad.append("port 8132 not exposed")
if "/data" not in (c.get("Volumes") or {}): bad.append("/data is not a volume")
if (c.get("Healthcheck") or {}).get("Test") != ["CMD", "llm-proxy", "healthcheck"]: bad.append(f"healthcheck {c.get('Healthcheck')!r}")
if bad: sys.exit("verify-image: the image's config is wrong: " + "; ".join(bad))
EOF

# The binary inside the image: start it as the image would, on a free loopback port (chroot isolation shares
# the host's network, so the host can reach it).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ctr=$("${b[@]}" from "$image")
"${b[@]}" run --isolation chroot --env LLM_PROXY_LISTEN="127.0.0.1:$port" \
  "$ctr" -- llm-proxy serve --node-id "verify-image-$$" >"$work/serve.log" 2>&1 &
runner=$!
healthy=0
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then healthy=1; break; fi
  kill -0 "$runner" 2>/dev/null || break
  sleep 0.1
done
[ "$healthy" = 1 ] || { cat "$work/serve.log" >&2; echo "verify-image: the node in the image never answered /healthz" >&2; exit 1; }
"${b[@]}" run --isolation chroot --env LLM_PROXY_LISTEN="127.0.0.1:$port" "$ctr" -- llm-proxy healthcheck \
  || { echo "verify-image: the image's HEALTHCHECK command failed against a healthy node" >&2; exit 1; }
"${b[@]}" run --isolation chroot "$ctr" -- sh -c 'test -s /data/llm-proxy.db && test "$(stat -c %a /data/llm-proxy.db.master-key)" = 600' \
  || { echo "verify-image: the embedded store or its 0600 master-key file is missing from /data" >&2; exit 1; }
serve_pid=$(pgrep -f "^/usr/local/bin/llm-proxy serve --node-id verify-image-$$" | head -1 || true)
[ -n "$serve_pid" ] || { echo "verify-image: cannot find the node's process" >&2; exit 1; }
kill -TERM "$serve_pid"
rc=0; wait "$runner" || rc=$?
serve_pid=""
[ "$rc" = 0 ] || { cat "$work/serve.log" >&2; echo "verify-image: the node exited $rc on SIGTERM" >&2; exit 1; }

# Size: the compressed layers the image adds to the base (what a registry would store for it).
"${b[@]}" push -q --compression-format gzip "$image" "oci:$work/oci" >/dev/null
added=$(python3 - "$work/oci" <<'EOF'
import json, os, sys
root = sys.argv[1]
index = json.load(open(os.path.join(root, "index.json")))
digest = index["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(os.path.join(root, "blobs", "sha256", digest)))
print(sum(layer["size"] for layer in manifest["layers"][1:]))
EOF
)
base_size=$("${b[@]}" push -q --compression-format gzip "$base" "oci:$work/base-oci" >/dev/null && du -sb "$work/base-oci/blobs" | cut -f1)
echo "verify-image: runtime stage built on Debian 12 and answered /healthz as user llmproxy;" \
  "layers over the base: $((added / 1024 / 1024)) MiB compressed (binary $(gzip -c "$work/llm-proxy" | wc -c | awk '{printf "%.1f", $1/1048576}') MiB of it;" \
  "debootstrap base $((base_size / 1024 / 1024)) MiB)"
