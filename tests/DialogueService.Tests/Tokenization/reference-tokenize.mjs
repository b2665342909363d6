// Reference tokenizer for the conformance tests and the tokenizer benchmark: @huggingface/transformers'
// PreTrainedTokenizer on a tokenizer.json + tokenizer_config.json, fully offline.
//
// usage: node reference-tokenize.mjs <tokenizer.json> <tokenizer_config.json> [encode|bench]
// stdin: a JSON array of strings.
// encode (default): writes one JSON object per text, as a JSON array:
//   { ids: encode(text) (special tokens added, special-token strings parsed),
//     plain: encode(text, { add_special_tokens: false }),
//     decoded: decode(ids), decodedSkip: decode(ids, { skip_special_tokens: true }) }
// bench <seconds> <rounds>: after a warm-up pass, encodes the texts in a loop for about seconds/rounds, rounds
//   times, and writes { tokensPerPass, rounds: [{ tokens, seconds }] } (load time excluded). Special tokens are not
//   added (special-token strings in the text are parsed: this implementation always does).
import fs from 'node:fs';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const [tokenizerPath, configPath, mode = 'encode', benchSeconds = '5', benchRounds = '1'] = process.argv.slice(2);
const tokenizer = new PreTrainedTokenizer(
  JSON.parse(fs.readFileSync(tokenizerPath, 'utf8')),
  JSON.parse(fs.readFileSync(configPath, 'utf8')),
);
const texts = JSON.parse(fs.readFileSync(0, 'utf8'));

if (mode === 'bench') {
  let tokensPerPass = 0;
  for (const t of texts) tokensPerPass += tokenizer.encode(t, { add_special_tokens: false }).length; // warm-up
  const rounds = [];
  const limit = (Number(benchSeconds) * 1000) / Number(benchRounds);
  for (let r = 0; r < Number(benchRounds); r++) {
    let tokens = 0;
    const start = performance.now();
    do {
      for (const t of texts) tokens += tokenizer.encode(t, { add_special_tokens: false }).length;
    } while (performance.now() - start < limit);
    rounds.push({ tokens, seconds: (performance.now() - start) / 1000 });
  }
  process.stdout.write(JSON.stringify({ tokensPerPass, rounds }));
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
