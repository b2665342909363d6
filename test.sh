#!/usr/bin/env bash
# Runs the whole ChatServices test suite: installs what the tests need (scripts/setup.sh --test), builds,
# runs every test project, and prints one summary line. Extra arguments go to `dotnet test`
# (for example: ./test.sh --filter "FullyQualifiedName~Grpc").
set -euo pipefail
cd "$(dirname "$0")"

./scripts/setup.sh --test
dotnet build ChatServices.sln -nologo -v quiet -clp:ErrorsOnly

results=artifacts/test-results
rm -rf "$results"
status=0
dotnet test ChatServices.sln --no-build -nologo --logger "trx" --logger "console;verbosity=normal" \
  --results-directory "$results" "$@" || status=$?

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [[ -f $trx ]] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
  e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${t:-0} - ${e:-0}))
done
echo
echo "$passed passed, $failed failed, $skipped skipped"
if ((passed == 0 && status == 0)); then
  echo "no test ran" >&2
  status=1
fi
exit $status
