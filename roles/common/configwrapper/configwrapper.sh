#!/usr/bin/env bash
# The one dispatcher behind every config wrapper command: each command is a link to this file, and it
# runs roles/common/src/configwrapper.ts with the name it was called by.
set -euo pipefail
self=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$self")/../../.." && pwd)
exec "$root/node_modules/.bin/tsx" "$root/roles/common/src/configwrapper.ts" "$(basename "$0")" "$@"
