# Reference for the SentencePiece path of the model-folder loader: trains a small Llama-style SentencePiece model
# (BPE, byte fallback, identity normalization, whitespace kept, dummy prefix) with Google's sentencepiece (Debian
# python3-sentencepiece) on the texts it is given, then encodes and decodes each text with it.
#
# usage: /usr/bin/python3 sentencepiece-reference.py <output folder>   (stdin: a JSON array of strings)
# writes <output folder>/tokenizer.model and, to stdout, a JSON array of { ids: encode(text), decoded: decode(ids) }.
import json, os, sys
import sentencepiece as spm

folder = sys.argv[1]
texts = json.load(sys.stdin)
os.makedirs(folder, exist_ok=True)
training = os.path.join(folder, "training.txt")
with open(training, "w", encoding="utf-8") as f:
    for t in texts:
        for line in t.splitlines():
            if line.strip():
                f.write(line + "\n")
spm.SentencePieceTrainer.train(
    input=training, model_prefix=os.path.join(folder, "tokenizer"), model_type="bpe", vocab_size=4000,
    hard_vocab_limit=False, character_coverage=0.995, byte_fallback=True, normalization_rule_name="identity",
    remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True, allow_whitespace_only_pieces=True,
    unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
results = []
for t in texts:
    ids = sp.encode(t)
    results.append({"ids": ids, "decoded": sp.decode(ids)})
sys.stdout.write(json.dumps(results))
