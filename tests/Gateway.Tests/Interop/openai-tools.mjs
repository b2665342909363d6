// A tool round trip with the official `openai` npm SDK, unchanged: the model is made to call a function
// (tool_choice naming it, streamed and not), the call is answered with a tool message, and the model replies.
// Exits non-zero on the first failed check; prints one JSON summary line on success (the calls, for the caller to
// validate against the schema).
//
//   node openai-tools.mjs <base-url> [--api-key KEY]
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const args = process.argv.slice(2);
const baseUrl = args[0];
assert.ok(baseUrl, 'usage: node openai-tools.mjs <base-url> [--api-key KEY]');
const keyAt = args.indexOf('--api-key');
const client = new OpenAI({ baseURL: new URL('/v1', baseUrl).href, apiKey: keyAt > 0 ? args[keyAt + 1] : 'sk-no-key-on-loopback', maxRetries: 0, timeout: 120_000 });

const parameters = {
  type: 'object',
  properties: {
    city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] },
    days: { type: 'integer', minimum: 1, maximum: 7 },
  },
  required: ['city', 'days'],
  additionalProperties: false,
};
const tools = [{ type: 'function', function: { name: 'get_forecast', description: 'The weather forecast for a city.', parameters, strict: true } }];
const model = (await client.models.list()).data[0].id;
const messages = [{ role: 'user', content: 'What will the weather be in Oslo this week?' }];
const forced = { type: 'function', function: { name: 'get_forecast' } };

// Non-streaming: the reply is a call.
const first = await client.chat.completions.create({ model, messages, tools, tool_choice: forced, parallel_tool_calls: false, max_tokens: 200, seed: 7 });
const choice = first.choices[0];
assert.equal(choice.finish_reason, 'tool_calls');
assert.equal(choice.message.content, null);
assert.equal(choice.message.tool_calls.length, 1);
const call = choice.message.tool_calls[0];
assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
assert.equal(call.type, 'function');
assert.equal(call.function.name, 'get_forecast');

// Streaming: the SDK's own stream of tool-call deltas, as OpenAI sends them.
const stream = await client.chat.completions.create({ model, messages, tools, tool_choice: 'required', parallel_tool_calls: false, max_tokens: 200, seed: 8, stream: true });
const streamed = [];
let streamedFinish = null;
for await (const chunk of stream) {
  const c = chunk.choices[0];
  if (!c) continue;
  for (const d of c.delta.tool_calls ?? []) {
    if (d.id) {
      assert.equal(d.type, 'function');
      assert.equal(d.function.arguments, '', 'a call opens with empty arguments');
      streamed[d.index] = { id: d.id, name: d.function.name, arguments: '' };
    } else {
      assert.equal(d.id, undefined);
      streamed[d.index].arguments += d.function.arguments;
    }
  }
  if (c.finish_reason) streamedFinish = c.finish_reason;
}
assert.equal(streamedFinish, 'tool_calls');
assert.equal(streamed.length, 1);

// The round trip: the call and its result in the history, then the model answers in text.
const answer = await client.chat.completions.create({
  model,
  messages: [
    ...messages,
    { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', tool_call_id: call.id, content: JSON.stringify({ forecast: 'sunny', high_c: 21 }) },
  ],
  tools,
  tool_choice: 'none',
  max_tokens: 24,
  seed: 9,
});
assert.ok(['stop', 'length'].includes(answer.choices[0].finish_reason));
assert.equal(answer.choices[0].message.tool_calls, undefined);
assert.equal(typeof answer.choices[0].message.content, 'string');

console.log(JSON.stringify({ calls: [call.function.arguments, streamed[0].arguments], answer: answer.choices[0].message.content }));
