// Drives a running ChatServices gateway with the official `openai` npm SDK, unchanged: models, chat completions
// (non-streaming and streaming, with usage), legacy completions, and typed errors. Exits non-zero on the first
// failed check; prints one JSON summary line on success.
//
//   node openai-sdk.mjs <base-url> [--api-key KEY] [--expect-reply-prefix TEXT] [--check-auth]
//
// <base-url> is the gateway's root (http://127.0.0.1:8080). Without --expect-reply-prefix the checks hold for any
// model: non-empty replies, consistent usage, streamed text equal to its deltas. --check-auth also checks that a
// wrong key is refused (only where the gateway requires keys).
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const args = process.argv.slice(2);
const baseUrl = args[0];
const option = (name) => {
  const i = args.indexOf(name);
  return i > 0 ? args[i + 1] : undefined;
};
assert.ok(baseUrl, 'usage: node openai-sdk.mjs <base-url> [--api-key KEY] [--expect-reply-prefix TEXT]');
const apiKey = option('--api-key') ?? 'sk-no-key-on-loopback';
const expectPrefix = option('--expect-reply-prefix');

const client = new OpenAI({ baseURL: new URL('/v1', baseUrl).href, apiKey, maxRetries: 0, timeout: 60_000 });
const summary = {};

// Models.
const models = [];
for await (const m of client.models.list()) models.push(m);
assert.ok(models.length >= 1, 'at least one model is listed');
const model = models[0].id;
assert.equal(models[0].object, 'model');
const retrieved = await client.models.retrieve(model);
assert.equal(retrieved.id, model);
summary.model = model;

// Chat completion, non-streaming.
const question = 'Say hello to the SDK.';
const completion = await client.chat.completions.create({
  model,
  messages: [{ role: 'system', content: 'You are brief.' }, { role: 'user', content: question }],
  max_tokens: 32,
  temperature: 0,
});
assert.match(completion.id, /^chatcmpl-/);
assert.equal(completion.object, 'chat.completion');
assert.equal(completion.model, model);
assert.equal(completion.choices.length, 1);
const choice = completion.choices[0];
assert.equal(choice.message.role, 'assistant');
assert.equal(typeof choice.message.content, 'string');
assert.ok(choice.message.content.length > 0, 'the reply is not empty');
assert.ok(['stop', 'length'].includes(choice.finish_reason), `finish_reason ${choice.finish_reason}`);
assert.ok(completion.usage.prompt_tokens > 0);
assert.ok(completion.usage.completion_tokens > 0);
assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + completion.usage.completion_tokens);
if (expectPrefix) assert.ok(choice.message.content.startsWith(expectPrefix), `reply "${choice.message.content}"`);
summary.reply = choice.message.content;
summary.usage = completion.usage;

// Chat completion, streaming, with usage.
const stream = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: question }],
  max_tokens: 32,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = '';
let chunks = 0;
let role;
let finishReason;
let streamUsage;
for await (const chunk of stream) {
  chunks++;
  assert.equal(chunk.object, 'chat.completion.chunk');
  if (chunk.usage) streamUsage = chunk.usage;
  for (const c of chunk.choices) {
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) streamed += c.delta.content;
    if (c.finish_reason) finishReason = c.finish_reason;
  }
}
assert.equal(role, 'assistant');
assert.ok(streamed.length > 0, 'the streamed reply is not empty');
assert.ok(['stop', 'length'].includes(finishReason), `stream finish_reason ${finishReason}`);
assert.ok(streamUsage && streamUsage.completion_tokens > 0, 'the stream reported usage');
assert.equal(streamUsage.total_tokens, streamUsage.prompt_tokens + streamUsage.completion_tokens);
if (expectPrefix) assert.ok(streamed.startsWith(expectPrefix), `streamed "${streamed}"`);
summary.streamed = streamed;
summary.chunks = chunks;
summary.streamUsage = streamUsage;

// The SDK's stream helper assembles the same text.
const runner = client.chat.completions.stream({ model, messages: [{ role: 'user', content: question }], max_tokens: 32, temperature: 0 });
const final = await runner.finalChatCompletion();
assert.ok(final.choices[0].message.content.length > 0);

// Legacy completions.
const legacy = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 16, temperature: 0 });
assert.equal(legacy.object, 'text_completion');
assert.equal(typeof legacy.choices[0].text, 'string');
assert.ok(legacy.usage.total_tokens > 0);
summary.legacy = legacy.choices[0].text;

// Typed errors.
await assert.rejects(
  client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
  (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
await assert.rejects(
  client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 7 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'temperature');
if (args.includes('--check-auth')) {
  const stranger = new OpenAI({ baseURL: new URL('/v1', baseUrl).href, apiKey: 'sk-wrong', maxRetries: 0 });
  await assert.rejects(stranger.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
}

console.log(JSON.stringify({ ok: true, ...summary }));
