#!/usr/bin/env bash
# The breaking-change gate: openapi.json against its previous version (the newest committed one
# with another info.version), the previous commit, and the last release tag once there are tags. A change that breaks clients of the old version fails
# unless info.version gets a new major version; an additive change passes. Two tools judge, since
# each misses what the other catches: openapi-diff (npm, pinned in package.json) and Oxide's drift
# crate (contract-gate/, which also judges string enums, which neither tool classifies).
#
#   bash scripts/breaking_changes.sh              # the gate itself
#   bash scripts/breaking_changes.sh --self-test  # shows it catches a removed response field, a
#                                                 # removed enum value and a changed parameter
#                                                 # type, and passes an additive change
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/openapi-diff ]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi
cargo build --quiet -p leadping-contract-gate
gate=target/debug/leadping-contract-gate
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# judge OLD NEW LABEL: prints both tools' findings; exits 1 on a break without a new major version.
judge() {
  local old=$1 new=$2 label=$3 flag=""
  echo "--- $label"
  if ! node_modules/.bin/openapi-diff "$old" "$new" > "$work/openapi-diff.out" 2>&1; then
    if grep -q '"breakingDifferences"' "$work/openapi-diff.out"; then
      flag=--openapi-diff-breaking
      sed -n '1,60p' "$work/openapi-diff.out"
    else
      cat "$work/openapi-diff.out"
      echo "openapi-diff failed to compare the documents" >&2
      return 2
    fi
  fi
  "$gate" "$old" "$new" $flag
}

if [ "${1:-}" = "--self-test" ]; then
  passed=0 failed=0
  # case NAME EXPECTED(pass|fail) PYTHON-MUTATION
  case_() {
    local name=$1 expected=$2 mutation=$3 got
    python3 - "$work/$name.json" "$mutation" <<'PY'
import json, sys
doc = json.load(open("openapi.json"))
exec(sys.argv[2], {"doc": doc})
json.dump(doc, open(sys.argv[1], "w"), indent=2)
PY
    if judge openapi.json "$work/$name.json" "$name" > "$work/$name.log" 2>&1; then got=pass; else got=fail; fi
    if [ "$got" = "$expected" ]; then
      passed=$((passed + 1)); echo "ok    $name: $expected, as it should"
    else
      failed=$((failed + 1)); echo "FAIL  $name: expected $expected, got $got"; cat "$work/$name.log"
    fi
  }
  S='doc["components"]["schemas"]'
  RESEND='doc["paths"]["/businesses/me/invitations/{invitationId}/resend"]["post"]'
  case_ removed-response-field fail "s=$S['BusinessInvitation']; del s['properties']['businessName']; s['required'].remove('businessName')"
  case_ removed-enum-value fail "$S['BusinessInvitationRole']['enum'].remove('Agent')"
  case_ changed-parameter-type fail "$RESEND['parameters'][0]['schema'] = {'type': 'integer', 'format': 'int64'}"
  case_ additive-change pass "$S['BusinessInvitation']['properties']['invitedBy'] = {'nullable': True, 'type': 'string'}; doc['info']['version'] = '0.2.0'"
  case_ break-with-new-major-version pass "$S['BusinessInvitationRole']['enum'].remove('Agent'); v = doc['info']['version'].split('.'); doc['info']['version'] = f'{int(v[0]) + 1}.0.0'"
  echo "breaking-change gate self-test: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

status=0
# Against the previous version: the newest committed openapi.json whose info.version differs
# from this one. The previous commit alone would miss a change made in an earlier commit of the
# same version (a submission of several commits is judged as a whole).
version_of() { python3 -c 'import json, sys; print(json.load(sys.stdin)["info"]["version"])'; }
current=$(version_of < openapi.json)
previous=""
for commit in $(git log --format=%H -- openapi.json); do
  if [ "$(git show "$commit:openapi.json" | version_of)" != "$current" ]; then
    previous=$commit
    break
  fi
done
if [ -n "$previous" ]; then
  git show "$previous:openapi.json" > "$work/previous-version.json"
  judge "$work/previous-version.json" openapi.json \
    "openapi.json against the previous version ($(version_of < "$work/previous-version.json"), commit $(git rev-parse --short "$previous"))" \
    || status=1
else
  echo "--- no earlier version of openapi.json: nothing to compare with"
fi
if git cat-file -e HEAD~1:openapi.json 2>/dev/null; then
  git show HEAD~1:openapi.json > "$work/previous.json"
  judge "$work/previous.json" openapi.json "openapi.json against the previous commit ($(git rev-parse --short HEAD~1))" || status=1
else
  echo "--- no previous commit with openapi.json: nothing to compare with"
fi
if tag=$(git describe --tags --abbrev=0 2>/dev/null) && git cat-file -e "$tag:openapi.json" 2>/dev/null; then
  git show "$tag:openapi.json" > "$work/tag.json"
  judge "$work/tag.json" openapi.json "openapi.json against the last release tag ($tag)" || status=1
else
  echo "--- no release tag yet: nothing to compare with"
fi
exit $status
