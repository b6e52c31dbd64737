#!/usr/bin/env bash
# The demo: provision examples/hello on the local driver (a real terraform apply), deploy it as a
# versioned release, show its status, and check the URL answers. No cloud account needed.
set -euo pipefail
cd "$(dirname "$0")"
export CHECKPOINT_DISABLE=1
togo() { node ../../bin/togo.js "$@"; }

togo provision --yes
url=$(togo deploy)
togo status
node -e 'fetch(process.argv[1]).then(async (r) => { console.log(`GET ${process.argv[1]} -> ${r.status}: ${(await r.text()).trim()}`); process.exit(r.status === 200 ? 0 : 1); })' "$url"
echo
echo "hello is live at $url"
echo "next: node bin/togo.js releases -c examples/hello/togo.yaml   |   tear down: node bin/togo.js destroy --yes -c examples/hello/togo.yaml"
