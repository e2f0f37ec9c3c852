#!/usr/bin/env bash
# Checks what can be checked of the container set-up without a Docker engine (none runs here):
#  1. every compose file (and the MongoDB override) is valid for docker-compose;
#  2. every shared library the release binary links directly comes from a package in
#     deploy/runtime-packages.txt (or from the base image's essential set), so the runtime stage has all it needs;
#  3. the Dockerfile's runtime stage installs exactly deploy/runtime-packages.txt;
#  4. the Dockerfile's runtime stage builds with buildah on a debootstrap'd Debian 12 base, fed the binary built
#     here (no registry here serves the Swift or Debian images), and the binary inside it, run as the image's
#     user with the image's environment, starts on the embedded default and answers /healthz from the host and
#     through its own HEALTHCHECK command, then exits 0 on SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v docker-compose >/dev/null || { echo "verify-deploy: docker-compose (Debian's v1) is missing" >&2; exit 1; }

env_file=$(mktemp)
trap 'rm -f "$env_file"' EXIT
printf 'LLM_PROXY_MASTER_KEY=verify-master-key-123456\nLLM_PROXY_ADMIN_KEY=verify-admin-key\nPOSTGRES_PASSWORD=verify-pg\n' >"$env_file"
docker-compose -f docker-compose.yml config -q
docker-compose --env-file "$env_file" -f docker-compose.cluster.yml config -q
docker-compose --env-file "$env_file" -f docker-compose.cluster.yml -f docker-compose.mongo.yml config -q
# The cluster refuses to start without its secrets.
if docker-compose -f docker-compose.cluster.yml config -q 2>/dev/null; then
  echo "verify-deploy: the cluster compose file accepted missing secrets" >&2; exit 1
fi
echo "verify-deploy: compose files valid"

swift build -c release --product llm-proxy --static-swift-stdlib >/dev/null
bin="$(swift build -c release --show-bin-path)/llm-proxy"
base_ok="libc6 libgcc-s1 libstdc++6 zlib1g"  # essential in debian:bookworm-slim
missing=0
needed=$(objdump -p "$bin" | awk '/NEEDED/{print $2}')
for lib in $needed; do
  path=$(ldconfig -p | awk -v l="$lib" '$1==l && !f {print $NF; f=1}')
  [ -n "$path" ] || { echo "verify-deploy: $lib not found on this machine" >&2; missing=1; continue; }
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | awk -F: 'NR==1{print $1}' || true)
  [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | awk -F: 'NR==1{print $1}' || true)
  if grep -qx "$pkg" deploy/runtime-packages.txt || [[ " $base_ok " == *" $pkg "* ]]; then
    echo "  $lib <- $pkg"
  else
    echo "verify-deploy: $lib comes from $pkg, which the runtime image does not install" >&2; missing=1
  fi
done
[ "$missing" = 0 ] || exit 1
if [[ "$needed" == *libswiftCore* ]]; then
  echo "verify-deploy: the binary links the Swift runtime dynamically (--static-swift-stdlib expected)" >&2; exit 1
fi
if [[ "$needed" == *libFoundation.so* ]]; then
  echo "verify-deploy: the binary links full Foundation" >&2; exit 1
fi
dockerfile_pkgs=$(awk '/^FROM \$\{RUNTIME_IMAGE\}/{r=1} r && /apt-get install/{f=1} f{print} f && !/\\$/{f=0}' Dockerfile \
  | tr ' \\' '\n\n' | grep -E '^lib|^ca-certificates$' | sort -u)
if [ "$dockerfile_pkgs" != "$(sort -u deploy/runtime-packages.txt)" ]; then
  echo "verify-deploy: the Dockerfile's runtime packages differ from deploy/runtime-packages.txt:" >&2
  diff <(echo "$dockerfile_pkgs") <(sort -u deploy/runtime-packages.txt) >&2 || true
  exit 1
fi
echo "verify-deploy: $(basename "$bin") ($(du -h "$bin" | cut -f1)) needs only the runtime packages"

scripts/verify-image.sh "$bin"
