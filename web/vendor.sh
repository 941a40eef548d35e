#!/bin/sh
# Copies the pinned Redoc bundle (web/package.json, web/package-lock.json) into api/ui/static/,
# where go:embed picks it up, so the gateway builds and serves /docs with Go alone.
#
# Refresh: set the exact version in package.json, then `npm install` (updates the lock file) and
# `npm run vendor` in web/; run `go test ./api -run TestDocs` and commit all four files.
set -eu
cd "$(dirname "$0")"
# npm ci installs exactly what the lock file says; peer dependencies (react, styled-components...)
# are inside the standalone bundle already.
npm ci --omit=peer --no-audit --no-fund
dest=../api/ui/static
# Redoc's menu footer shows Redocly's logo from cdn.redoc.ly, with no option to turn it off; the
# page may load nothing from another origin, so the copy shows an empty inline SVG instead (the
# "API docs by Redocly" link stays). The replacement must happen exactly once.
logo='"https://cdn.redoc.ly/redoc/logo-mini.svg"'
[ "$(grep -o "$logo" node_modules/redoc/bundles/redoc.standalone.js | wc -l)" -eq 1 ] || {
  echo "vendor.sh: the Redocly logo URL is not in the bundle exactly once; update the patch" >&2
  exit 1
}
sed "s#$logo#\"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg'/%3E\"#" \
  node_modules/redoc/bundles/redoc.standalone.js >"$dest/redoc.standalone.js"
# The bundle's first line points at this file for the licences of what it bundles.
cp node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt "$dest/redoc.standalone.js.LICENSE.txt"
cp node_modules/redoc/LICENSE "$dest/redoc.LICENSE.txt"
echo "copied redoc $(node -p 'require("./node_modules/redoc/package.json").version') to api/ui/static/"
