#!/usr/bin/env bash
# Start `twin serve` on the demo workspace, send the README's curl request, print the reply,
# and stop the server again (also on Ctrl-C or failure).
set -euo pipefail
workspace=${1:?usage: demo_serve.sh WORKSPACE}
port=${PORT:-5000}
url="http://127.0.0.1:${port}"

if curl -s -o /dev/null "${url}/health"; then
  echo "error: something is already listening on port ${port}; stop it or run 'make demo PORT=5001'" >&2
  exit 1
fi

.venv/bin/twin serve --workspace "${workspace}" --port "${port}" > "${workspace}/serve.log" 2>&1 &
server=$!
trap 'kill ${server} 2>/dev/null; wait ${server} 2>/dev/null || true' EXIT

for _ in $(seq 1 120); do
  curl -s -o /dev/null "${url}/health" && break
  kill -0 ${server} 2>/dev/null || { echo "error: the server did not start:" >&2; cat "${workspace}/serve.log" >&2; exit 1; }
  sleep 0.5
done

echo "\$ curl -X POST ${url}/generate -H \"Content-Type: application/json\" -d '{\"text\": \"hello, how are you?\"}'"
curl -sS --fail-with-body -X POST "${url}/generate" -H "Content-Type: application/json" -d '{"text": "hello, how are you?"}'
echo
