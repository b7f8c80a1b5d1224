#!/usr/bin/env bash
# Runs the Dockerfile's build and runtime steps by hand (no Docker engine needed): a clean `npm ci`, the build,
# `npm prune --omit=dev`, then only package.json, node_modules and dist are kept, as in the runtime stage, and the
# server is started from them and probed with the image's HEALTHCHECK command. Also validates the compose file
# when docker-compose is installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

echo "== build stage (in $work/build)"
mkdir -p "$work/build" "$work/runtime"
cp "$root/package.json" "$root/package-lock.json" "$work/build/"
(cd "$work/build" && npm ci --no-audit --no-fund --loglevel=error)
cp "$root/tsconfig.json" "$root/tsconfig.build.json" "$work/build/"
cp -r "$root/src" "$work/build/src"
cp -r "$root/web" "$work/build/web"
(cd "$work/build" && npm run build --silent && npm prune --omit=dev --no-audit --no-fund --loglevel=error)

echo "== runtime stage (only package.json, node_modules, dist)"
cp "$work/build/package.json" "$work/runtime/"
cp -r "$work/build/node_modules" "$work/build/dist" "$work/runtime/"
echo "runtime size: $(du -sh "$work/runtime" | cut -f1)"
port=$((20000 + RANDOM % 20000))
(cd "$work/runtime" && NODE_ENV=production APP_ENV=production HOST=127.0.0.1 PORT=$port REDIS_ENABLED=false \
  node dist/bundle/main.mjs >"$work/server.log" 2>&1) &
pid=$!
for _ in $(seq 1 100); do
  if (cd "$work/runtime" && PORT=$port node -e "fetch(\`http://127.0.0.1:\${process.env.PORT || 8000}/v1/health\`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"); then
    break
  fi
  sleep 0.1
done
(cd "$work/runtime" && PORT=$port node -e "fetch(\`http://127.0.0.1:\${process.env.PORT || 8000}/v1/health\`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))")
echo "HEALTHCHECK command: ok"
for path in /docs /redoc /redoc/redoc.standalone.js /openapi.json /metrics; do
  code=$(node -e "fetch('http://127.0.0.1:$port$path').then((r) => { console.log(r.status) })")
  echo "GET $path -> $code"
  [ "$code" = "200" ]
done
kill -TERM "$pid"; wait "$pid" || true
if grep -qv '^{' "$work/server.log"; then echo "non-JSON log output:"; cat "$work/server.log"; exit 1; fi
echo "logs: JSON lines only"

if command -v docker-compose >/dev/null 2>&1; then
  echo "== compose file"
  tmpenv="$root/.env"; created=""
  [ -f "$tmpenv" ] || { cp "$root/.env.example" "$tmpenv"; created=1; }
  docker-compose -f "$root/docker/docker-compose.yml" config >/dev/null && echo "docker/docker-compose.yml: valid"
  [ -n "$created" ] && rm -f "$tmpenv"
fi
echo "validate-build: ok"
