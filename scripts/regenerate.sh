#!/usr/bin/env bash
# Rewrites the generated parts of the repository from the code: openapi/openapi.json and
# the README's table of mapped topics. Tests fail while either is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run -q -p omnigate -- openapi > openapi/openapi.json
table=$(cargo run -q -p omnigate -- topics)
python3 - "$table" <<'PY'
import sys
path = "README.md"
text = open(path, encoding="utf-8").read()
start = text.index("<!-- topics:start -->\n") + len("<!-- topics:start -->\n")
end = text.index("<!-- topics:end -->")
open(path, "w", encoding="utf-8").write(text[:start] + sys.argv[1] + "\n" + text[end:])
PY
echo "regenerated openapi/openapi.json and the README topics table"
