#!/usr/bin/env bash
# Installs what is needed, builds, and runs the whole ChatServices system on its embedded default in the
# foreground: InferenceService (gRPC :50052), DialogueService (gRPC :50051), Gateway (HTTP :8080).
# Ctrl+C stops all three.
# ./run.sh --int4 serves the embedded default's 4-bit build instead (model id chat-default-int4), made once from the
# float32 folder by tools/ModelBuilder with its default quantization settings.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD
int4=false
case "${1:-}" in
  "") ;;
  --int4) int4=true ;;
  *) echo "usage: ./run.sh [--int4]" >&2; exit 2 ;;
esac

./scripts/setup.sh
echo "[run] building (Release)"
for project in tools/ModelBuilder src/InferenceService src/DialogueService src/Gateway; do
  dotnet build "$project" -c Release -nologo -v quiet -clp:ErrorsOnly
done
# The embedded default: the project's own trained model (models/chat-default/, committed; reproduced by
# training/reproduce.sh). Without it, a random model with the real tokenizer, built once into .models/default/.
model="$root/models/chat-default"
if [[ ! -f $model/genai_config.json ]]; then
  ./scripts/build-default-model.sh
  model="$root/.models/default"
fi
if $int4; then
  quantized="$root/.models/$(basename "$model")-int4"
  if [[ ! -f $quantized/model.onnx || $model/model.onnx -nt $quantized/model.onnx ]]; then
    dotnet tools/ModelBuilder/bin/Release/net10.0/ModelBuilder.dll --checkpoint "$model" --int4 --output "$quantized"
  fi
  model=$quantized
fi
echo "[run] serving $model"
mkdir -p "$root/.data"

pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "[run] stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

start() { # name, then environment assignments
  local name=$1; shift
  local dir="$root/src/$name/bin/Release/net10.0"
  ( cd "$dir" && exec env "$@" dotnet "$name.dll" ) 2>&1 | sed -u "s/^/[$name] /" &
  pids+=($!)
}

# The embedded single-machine default: no credential needed from this machine on any tier (each service says so
# loudly at start); a call from here naming another owner than 'local' is still refused.
start InferenceService DOTNET_ENVIRONMENT=Production "Inference__ModelPath=$model" Identity__AllowAnonymousOnLoopback=true
start DialogueService DOTNET_ENVIRONMENT=Production "Dialogue__ModelPath=$model" "Data__Directory=$root/.data" \
  Identity__AllowAnonymousOnLoopback=true
start Gateway DOTNET_ENVIRONMENT=Production Gateway__AllowAnonymousOnLoopback=true

for i in $(seq 1 240); do
  if curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1; then
    echo "[run] ChatServices is up: http://127.0.0.1:8080/  (Ctrl+C to stop)"
    break
  fi
  sleep 0.5
done
wait -n "${pids[@]}"
