// Load generator and checker of the fault tests (run by tests/Faults/run-fault-tests.sh; see README.md).
//
// Runs --chats concurrent chat loops for --duration seconds against the Gateway's conversations API: each loop
// creates a conversation and sends it turns (POST /api/conversations/{id}/messages, the reply streamed as SSE),
// then starts another conversation. Every request is classified:
//   completed   the stream ended with a `finished` event and `data: [DONE]`;
//   failed      an HTTP error with an error message, or an SSE `error` event with a message;
//   lost        anything else: a dropped connection, a stream that ends with neither, no answer in time.
// A message counts as committed when the system acknowledged it: the user message once `started` (which carries
// its id) arrived, the assistant reply once `finished` did. After the load, every conversation is read back through
// the API and every committed message must be there, unchanged (a completed reply with its status and text).
// The fault times come from --events (lines "<epoch ms> <what>", written by the script); the figures go to --results.
import { writeFileSync, readFileSync, appendFileSync, renameSync } from 'node:fs';
import os from 'node:os';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const gateway = args.gateway;
const key = args.key;
const chats = Number(args.chats ?? 8);
const durationMs = Number(args.duration ?? 60) * 1000;
const requestTimeoutMs = 45_000;
const turnsPerConversation = 6;
const maxTokens = 96;
const questionWords = 100;
// Every other loop asks for long replies (short questions, two turns per conversation), so that replies are always
// streaming when a replica is killed: the cut mid-stream is exercised in every run, not by chance.
const longLoop = chat => chat % 2 === 1;
const longReply = { turns: 2, maxTokens: 500, questionWords: 20 };

const startedAt = Date.now();
const endAt = startedAt + durationMs;
const requests = [];       // every request: { kind, chat, start, end, firstToken?, outcome, status?, error?, deltas }
const committed = new Map(); // conversation id -> [{ id, role, content }]

const active = new Set(); // turns in flight, for --status
const sleep = ms => new Promise(r => setTimeout(r, ms));
const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

function record(r) {
  requests.push(r);
  if (args.log) appendFileSync(args.log, JSON.stringify(r) + '\n');
  return r;
}

function commit(conversation, message) {
  if (!committed.has(conversation)) committed.set(conversation, []);
  committed.get(conversation).push(message);
}

/** An HTTP error response: failed with a clear error if it carries OpenAI's error shape with a message. */
async function httpError(response, r) {
  const text = await response.text().catch(() => '');
  let message;
  try { message = JSON.parse(text)?.error?.message; } catch { /* not JSON */ }
  r.status = response.status;
  if (message) { r.outcome = 'failed'; r.error = `HTTP ${response.status}: ${message}`; }
  else { r.outcome = 'lost'; r.error = `HTTP ${response.status} without an error message: ${text.slice(0, 200)}`; }
}

async function createConversation(chat) {
  const r = { kind: 'create', chat, start: Date.now(), deltas: 0 };
  const abort = AbortSignal.timeout(requestTimeoutMs);
  try {
    const response = await fetch(`${gateway}/api/conversations`, {
      method: 'POST', headers, body: JSON.stringify({ title: `fault test chat ${chat}` }), signal: abort,
    });
    if (response.status === 201) {
      const body = await response.json();
      r.outcome = 'completed'; r.conversation = body.id;
      committed.has(body.id) || committed.set(body.id, []);
    } else {
      await httpError(response, r);
    }
  } catch (e) {
    r.outcome = 'lost'; r.error = `${e.name}: ${e.cause?.code ?? e.message}`;
  }
  r.end = Date.now();
  return record(r);
}

async function sendMessage(chat, conversation, content, replyTokens) {
  const r = { kind: 'message', chat, conversation, start: Date.now(), deltas: 0 };
  const abort = AbortSignal.timeout(requestTimeoutMs);
  active.add(r);
  try {
    const response = await fetch(`${gateway}/api/conversations/${conversation}/messages`, {
      method: 'POST', headers, body: JSON.stringify({ content, max_tokens: replyTokens, temperature: 0.8 }), signal: abort,
    });
    if (!response.ok) {
      await httpError(response, r);
    } else {
      let text = '', finished = null, error = null, done = false, buffer = '';
      const decoder = new TextDecoder();
      const onEvent = (name, data) => {
        if (data === '[DONE]') { done = true; return; }
        const body = JSON.parse(data);
        switch (name) {
          case 'started':
            r.userMessage = body.user_message_id;
            commit(conversation, { id: body.user_message_id, role: 'user', content });
            break;
          case 'delta':
            if (r.deltas++ === 0) r.firstToken = Date.now();
            text += body.text;
            break;
          case 'finished': finished = body; break;
          case 'error': error = body.error?.message ?? null; r.errorBody = data; break;
        }
      };
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = 'message', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) name = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trimStart();
          }
          if (data) onEvent(name, data);
        }
      }
      if (finished && done) {
        r.outcome = 'completed';
        commit(conversation, { id: finished.assistant_message_id, role: 'assistant', content: text });
      } else if (error) {
        r.outcome = 'failed'; r.error = `error event: ${error}`;
      } else {
        r.outcome = 'lost'; r.error = `stream ended with neither a finish nor an error (finished: ${!!finished}, [DONE]: ${done})`;
      }
    }
  } catch (e) {
    r.outcome = 'lost';
    r.error = e.name === 'TimeoutError' ? `no result within ${requestTimeoutMs / 1000} s` : `${e.name}: ${e.cause?.code ?? e.message}`;
  }
  active.delete(r);
  r.end = Date.now();
  return record(r);
}

const words = ['river', 'lamp', 'orbit', 'cedar', 'quartz', 'meadow', 'signal', 'harbor', 'pixel', 'tundra', 'violet', 'anchor'];
async function chatLoop(chat) {
  let turnCount = 0;
  const shape = longLoop(chat) ? longReply : { turns: turnsPerConversation, maxTokens, questionWords };
  while (Date.now() < endAt) {
    const created = await createConversation(chat);
    if (created.outcome !== 'completed') { await sleep(250); continue; }
    for (let turn = 0; turn < shape.turns && Date.now() < endAt; turn++) {
      // About 200 prompt tokens a turn: prompts of a few hundred to ~1,500 tokens, so that a good share of the
      // turns in flight at any moment are still before their first token (queued or in prefill).
      const text = Array.from({ length: shape.questionWords }, () => words[Math.floor(Math.random() * words.length)]).join(' ');
      const content = `chat ${chat} turn ${turnCount++}: ${text}?`;
      const r = await sendMessage(chat, created.conversation, content, shape.maxTokens);
      if (r.outcome !== 'completed') await sleep(250); // a failed turn: back off a little, keep the conversation
    }
  }
}

/** Reads a conversation back, retrying briefly while the system is still recovering. */
async function readBack(id) {
  let last;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const response = await fetch(`${gateway}/api/conversations/${id}`, { headers, signal: AbortSignal.timeout(10_000) });
      if (response.ok) return await response.json();
      last = `HTTP ${response.status}: ${await response.text()}`;
      if (response.status < 500) break;
    } catch (e) {
      last = `${e.name}: ${e.cause?.code ?? e.message}`;
    }
    await sleep(500);
  }
  throw new Error(`conversation ${id} could not be read: ${last}`);
}

async function verify() {
  const missing = [], changed = [];
  let checked = 0;
  for (const [id, messages] of committed) {
    let stored;
    try {
      stored = new Map((await readBack(id)).messages.map(m => [m.id, m]));
    } catch (e) {
      checked += messages.length;
      for (const m of messages) missing.push({ conversation: id, ...m, reason: e.message });
      continue;
    }
    for (const m of messages) {
      checked++;
      const s = stored.get(m.id);
      if (!s) { missing.push({ conversation: id, ...m }); continue; }
      if (s.role !== m.role || s.content !== m.content || (m.role === 'assistant' && s.status !== 'complete')) {
        changed.push({ conversation: id, id: m.id, sent: m, stored: { role: s.role, status: s.status, content: s.content } });
      }
    }
  }
  return { checked, missing, changed };
}

// Probe turns: on SIGUSR2 (sent by the script just before it kills inference-a) a few turns with long prompts start
// at once, and `<--status>.probe` says they have been sent. The script kills on that signal, so turns that have
// no token yet are in flight at the kill in every run, not by chance: the retry before the first token is exercised.
const probes = args.status ? await Promise.all([0, 1, 2].map(i => createConversation(100 + i))) : [];
process.on('SIGUSR2', () => {
  const text = Array.from({ length: 300 }, (_, i) => words[i % words.length]).join(' ');
  for (const [i, probe] of probes.entries()) {
    if (probe.outcome === 'completed') sendMessage(100 + i, probe.conversation, `probe ${i}: ${text}?`, 16);
  }
  writeFileSync(args.status + '.probe', `${Date.now()}\n`);
});

// ---- run ----
// --status: the turns in flight now (before their first token, streaming), so the script can time a fault.
const status = args.status && setInterval(() => {
  let waiting = 0, streaming = 0;
  for (const r of active) r.deltas ? streaming++ : waiting++;
  writeFileSync(args.status + '.tmp', `${waiting} ${streaming}\n`);
  renameSync(args.status + '.tmp', args.status);
}, 50);
await Promise.all(Array.from({ length: chats }, (_, i) => chatLoop(i)));
const loadEnd = Date.now();
if (status) clearInterval(status);
const verification = await verify();

const events = readFileSync(args.events, 'utf8').trim().split('\n').map(l => {
  const space = l.indexOf(' ');
  return { at: Number(l.slice(0, space)), what: l.slice(space + 1) };
});
const eventAt = what => events.find(e => e.what.startsWith(what))?.at;
const killInference = eventAt('kill -9 inference-a');
const killDialogue = eventAt('kill -9 dialogue-a');
const pgStop = eventAt('PostgreSQL stop');
const pgStarted = eventAt('PostgreSQL started');

const count = list => ({
  sent: list.length,
  completed: list.filter(r => r.outcome === 'completed').length,
  failed: list.filter(r => r.outcome === 'failed').length,
  lost: list.filter(r => r.outcome === 'lost').length,
});
const messages = requests.filter(r => r.kind === 'message');
const phases = [
  ['warm-up (all replicas up)', startedAt, killInference],
  ['after kill -9 inference-a', killInference, killDialogue],
  ['after kill -9 dialogue-a', killDialogue, pgStop],
  ['PostgreSQL restart and after', pgStop, loadEnd + 1],
].map(([name, from, to]) => ({ name, ...count(messages.filter(r => r.start >= from && r.start < to)) }));

// Requests in flight when inference-a died, by whether their first token had arrived.
const inFlight = messages.filter(r => r.start < killInference && r.end > killInference);
const noTokenYet = inFlight.filter(r => !(r.firstToken < killInference));
const hadTokens = inFlight.filter(r => r.firstToken < killInference);
// A request that got no token before the kill must complete (retried on the survivor), unless a token was already
// on its way at the kill and it was then cut mid-stream (it ends with an error event after deltas).
const noTokenFailedEarly = noTokenYet.filter(r => r.outcome !== 'completed' && !(r.outcome === 'failed' && r.deltas > 0));
const cutMidStream = inFlight.filter(r => r.outcome === 'failed' && r.deltas > 0);

const finalWindowStart = startedAt + durationMs * 0.8;
const finalWindow = count(messages.filter(r => r.start >= finalWindowStart));
const afterPg = count(messages.filter(r => r.start >= pgStarted));
const totals = { all: count(requests), messages: count(messages), creates: count(requests.filter(r => r.kind === 'create')) };

const assertions = [
  ['no request lost (every one completed or failed with a clear error)', totals.all.lost === 0, `${totals.all.lost} lost`],
  ['no committed message lost or changed', verification.missing.length === 0 && verification.changed.length === 0,
    `${verification.checked} checked, ${verification.missing.length} missing, ${verification.changed.length} changed`],
  // These two hold only if exercised: a run in which the kill found no such request fails them.
  ['requests without a token at the inference-a kill completed on the survivor', noTokenYet.length > 0 && noTokenFailedEarly.length === 0,
    `${noTokenYet.length} in flight without a token, ${noTokenYet.filter(r => r.outcome === 'completed').length} completed, ${noTokenFailedEarly.length} failed before any token` +
    (noTokenYet.length ? '' : '; NOT EXERCISED: no request was waiting for its first token at the kill')],
  ['replies cut mid-stream end with an error event', cutMidStream.length > 0 && cutMidStream.every(r => r.error?.startsWith('error event:')),
    `${cutMidStream.length} cut mid-stream, ${cutMidStream.filter(r => r.error?.startsWith('error event:')).length} with an error event` +
    (cutMidStream.length ? '' : '; NOT EXERCISED: no reply was streaming from inference-a at the kill')],
  ['the load continues after each fault', phases.slice(1).every(p => p.completed > 0),
    phases.slice(1).map(p => `${p.completed} completed ${p.name}`).join('; ')],
  ['recovered on its own: the last 20 % of the run completes with no failure', finalWindow.completed > 0 && finalWindow.failed === 0 && finalWindow.lost === 0,
    `${finalWindow.sent} sent, ${finalWindow.completed} completed, ${finalWindow.failed} failed`],
];
const passed = assertions.every(a => a[1]);

const secondsIn = t => t === undefined ? 'never' : `${((t - startedAt) / 1000).toFixed(1)} s`;
const row = (name, c) => `| ${name} | ${c.sent} | ${c.completed} | ${c.failed} | ${c.lost} |`;
const failures = [...new Set(requests.filter(r => r.outcome !== 'completed').map(r => r.error))];
const md = `# Fault test results

Written by \`tests/Faults/run-fault-tests.sh\` (see README.md). Run of ${new Date(startedAt).toISOString()} on
${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node.js ${process.version}.

Load: ${chats} concurrent chat loops for ${durationMs / 1000} s through the Gateway's conversations API
(half of them ${turnsPerConversation} turns per conversation, user messages of ${questionWords} words, max_tokens ${maxTokens}; the other half long
replies: ${longReply.turns} turns, ${longReply.questionWords} words, max_tokens ${longReply.maxTokens}); two InferenceService replicas, two DialogueService
replicas, one Gateway (both DialogueService replicas configured), PostgreSQL, each in its own network namespace.

**Result: ${passed ? 'PASSED' : 'FAILED'}**

## Timeline

| when | what |
| --- | --- |
${events.map(e => `| ${secondsIn(e.at)} | ${e.what} |`).join('\n')}
| ${secondsIn(loadEnd)} | load stopped (every loop finished its request in progress) |

## Chat turns (POST /api/conversations/{id}/messages), by when they were sent

A turn in flight when the next fault strikes counts in the phase in which it was sent.

| phase | sent | completed | failed with a clear error | lost |
| --- | ---: | ---: | ---: | ---: |
${phases.map(p => row(p.name, p)).join('\n')}
| **all turns** | **${totals.messages.sent}** | **${totals.messages.completed}** | **${totals.messages.failed}** | **${totals.messages.lost}** |

| all requests | sent | completed | failed with a clear error | lost |
| --- | ---: | ---: | ---: | ---: |
${row('conversations created', totals.creates)}
${row('chat turns', totals.messages)}
${row('**total**', totals.all)}

At the kill of inference-a, ${inFlight.length} turns were in flight: ${noTokenYet.length} without a token yet
(${noTokenYet.filter(r => r.outcome === 'completed').length} of them completed; ${noTokenFailedEarly.length} failed before any token),
${hadTokens.length} streaming (${hadTokens.filter(r => r.outcome === 'completed').length} completed on inference-b, ${cutMidStream.length} cut mid-stream with an error event).
After PostgreSQL was back: ${afterPg.sent} turns sent, ${afterPg.completed} completed, ${afterPg.failed} failed.

Committed messages read back after the run: ${verification.checked} checked (user messages acknowledged by \`started\`,
replies acknowledged by \`finished\`), ${verification.missing.length} missing, ${verification.changed.length} changed.

Errors seen (distinct messages):
${failures.length ? failures.map(f => `- ${String(f).replace(/\s+/g, ' ').slice(0, 300)}`).join('\n') : '- none'}

## Assertions

${assertions.map(([what, ok, detail]) => `- ${ok ? 'PASS' : 'FAIL'}: ${what} (${detail})`).join('\n')}
`;
writeFileSync(args.results, md);
for (const [what, ok, detail] of assertions) console.log(`${ok ? 'PASS' : 'FAIL'}: ${what} (${detail})`);
if (verification.missing.length) console.log('missing:', JSON.stringify(verification.missing.slice(0, 10)));
if (verification.changed.length) console.log('changed:', JSON.stringify(verification.changed.slice(0, 5)));
for (const r of requests.filter(r => r.outcome === 'lost').slice(0, 10)) console.log('lost:', JSON.stringify(r));
process.exit(passed ? 0 : 1);
