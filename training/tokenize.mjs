// Tokenizes the generated corpus with the Llama 2 tokenizer (the one the served model uses), through
// @huggingface/transformers' PreTrainedTokenizer, offline. Dialogues are rendered exactly as DialogueService's
// fallback chat template (Llama 2's published template) renders them; the assistant replies (" reply </s>") are
// marked as the tokens that carry the fine-tuning loss.
// Output: data/tokens.json = { pretrain: [[ids...], ...], dialogues: [{ ids, mask }, ...] }.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const here = path.dirname(fileURLToPath(import.meta.url));
const tokDir = path.join(here, '..', 'node_modules', '@lenml', 'tokenizer-llama2', 'models');
const tokenizer = new PreTrainedTokenizer(
  JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')),
  JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8')));
const encode = (text) => tokenizer.encode(text, { add_special_tokens: false });
const BOS = '<s>', EOS = '</s>';

const data = path.join(here, 'data');
const pretrain = fs.readFileSync(path.join(data, 'pretrain.txt'), 'utf8').split('\n').filter((l) => l.length > 0)
  .map((line) => encode(BOS + line + EOS));

// Rendering of ServedModel.FallbackChatTemplate, one piece per message.
function pieces(messages) {
  let system = null, loop = messages;
  if (messages[0].role === 'system') { system = messages[0].content; loop = messages.slice(1); }
  return loop.map((m, i) => {
    let content = m.content;
    if (i === 0 && system !== null) content = '<<SYS>>\n' + system + '\n<</SYS>>\n\n' + content;
    return m.role === 'user'
      ? { text: BOS + '[INST] ' + content.trim() + ' [/INST]', train: false }
      : { text: ' ' + content.trim() + ' ' + EOS, train: true };
  });
}

let dropped = 0;
const dialogues = [];
for (const line of fs.readFileSync(path.join(data, 'dialogues.jsonl'), 'utf8').split('\n')) {
  if (!line) continue;
  const ps = pieces(JSON.parse(line));
  // Tokenize growing prefixes of the whole rendering, so boundaries tokenize exactly as the full text does.
  let text = '', prev = [], ok = true;
  const mask = [];
  for (const p of ps) {
    text += p.text;
    const ids = encode(text);
    for (let i = 0; i < prev.length; i++) if (ids[i] !== prev[i]) { ok = false; break; }
    for (let i = prev.length; i < ids.length; i++) mask.push(p.train ? 1 : 0);
    prev = ids;
  }
  if (!ok) { dropped++; continue; }
  dialogues.push({ ids: prev, mask });
}
fs.writeFileSync(path.join(data, 'tokens.json'), JSON.stringify({ pretrain, dialogues }));
const used = new Set();
for (const d of pretrain) for (const t of d) used.add(t);
for (const d of dialogues) for (const t of d.ids) used.add(t);
console.log(`pretrain: ${pretrain.length} documents, ${pretrain.reduce((s, d) => s + d.length, 0)} tokens; ` +
  `dialogues: ${dialogues.length} (${dropped} dropped at a tokenization boundary), ` +
  `${dialogues.reduce((s, d) => s + d.ids.length, 0)} tokens; distinct token ids: ${used.size}`);
const d0 = dialogues[0];
console.log(JSON.stringify(d0.ids.map((t, i) => [tokenizer.decode([t]), d0.mask[i]])));
