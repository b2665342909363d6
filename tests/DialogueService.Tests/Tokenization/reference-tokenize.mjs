// Reference tokenizer for the conformance tests and the tokenizer benchmark: @huggingface/transformers'
// PreTrainedTokenizer on a tokenizer.json + tokenizer_config.json, fully offline.
//
// usage: node reference-tokenize.mjs <tokenizer.json> <tokenizer_config.json> [encode|bench]
// stdin: a JSON array of strings.
// encode (default): writes one JSON object per text, as a JSON array:
//   { ids: encode(text) (special tokens added, special-token strings parsed),
//     plain: encode(text, { add_special_tokens: false }),
//     decoded: decode(ids), decodedSkip: decode(ids, { skip_special_tokens: true }) }
// bench <seconds>: encodes the texts in a loop for about that long (after a warm-up pass) and writes
//   { tokens, seconds, passes } (load time excluded).
import fs from 'node:fs';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const [tokenizerPath, configPath, mode = 'encode', benchSeconds = '5'] = process.argv.slice(2);
const tokenizer = new PreTrainedTokenizer(
  JSON.parse(fs.readFileSync(tokenizerPath, 'utf8')),
  JSON.parse(fs.readFileSync(configPath, 'utf8')),
);
const texts = JSON.parse(fs.readFileSync(0, 'utf8'));

if (mode === 'bench') {
  for (const t of texts) tokenizer.encode(t, { add_special_tokens: false }); // warm-up (fills the BPE cache, JIT)
  let tokens = 0;
  let passes = 0;
  const start = performance.now();
  const limit = Number(benchSeconds) * 1000;
  do {
    for (const t of texts) tokens += tokenizer.encode(t, { add_special_tokens: false }).length;
    passes++;
  } while (performance.now() - start < limit);
  process.stdout.write(JSON.stringify({ tokens, seconds: (performance.now() - start) / 1000, passes }));
} else {
  const results = texts.map((text) => {
    const ids = tokenizer.encode(text);
    return {
      ids,
      plain: tokenizer.encode(text, { add_special_tokens: false }),
      decoded: ids.length ? tokenizer.decode(ids) : '',
      decodedSkip: ids.length ? tokenizer.decode(ids, { skip_special_tokens: true }) : '',
    };
  });
  process.stdout.write(JSON.stringify(results));
}
