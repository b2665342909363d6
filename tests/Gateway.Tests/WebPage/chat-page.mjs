// Drives the gateway's web chat page in headless Chromium (playwright-core, Debian's chromium) through a real
// conversation and checks what the page shows: a streamed reply, regenerate, stop mid-stream, settings that persist
// and reach the request, rename, delete, and an error rendered for the person. Exits non-zero on the first failed
// check; prints one JSON summary line on success.
//
//   node chat-page.mjs <base-url> [--screenshots DIR] [--slow-prompt TEXT] [--oversize CHARS] [--scripted]
//                      [--keyed-url URL --api-key KEY]
//
// --slow-prompt is a message whose reply takes long enough to press Stop in (default "slow story"); --scripted adds
// the checks that need the test upstream's known replies (exact text, a failure in the middle of a stream);
// --keyed-url names a gateway that requires keys, where the page must ask for one and then work with --api-key.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const baseUrl = args[0];
const option = (name) => {
  const i = args.indexOf(name);
  return i > 0 ? args[i + 1] : undefined;
};
assert.ok(baseUrl, 'usage: node chat-page.mjs <base-url> [--screenshots DIR] [--slow-prompt TEXT] [--scripted]');
const scripted = args.includes('--scripted');
// Each step's wait. Against the whole running system a step waits on a real model, on a 2-core machine that may be
// running other test projects at the same time: a generous bound there, a tight one against the scripted upstream.
const stepTimeout = scripted ? 15_000 : 60_000;
const slowPrompt = option('--slow-prompt') ?? 'slow story';
const oversize = Number(option('--oversize') ?? 1_100_000); // characters: above Gateway:MaxRequestBodyBytes
const screenshots = option('--screenshots');
if (screenshots) mkdirSync(screenshots, { recursive: true });

const profile = mkdtempSync(path.join(tmpdir(), 'chatservices-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
const summary = {};
const shot = async (page, name) => {
  if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`) });
};

try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  page.on('dialog', (d) => d.accept()); // the delete confirmation
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await page.goto(baseUrl);
  await page.waitForFunction(() => document.getElementById('model-name').textContent.trim().length > 0);
  summary.model = (await page.textContent('#model-name')).trim();
  await shot(page, '1-empty');

  const assistants = page.locator('.message.assistant');
  const lastReply = () => assistants.last().locator('.content');
  const idle = () => page.waitForSelector('#send:not([hidden])');
  const send = async (text) => {
    await page.fill('#prompt', text);
    await page.press('#prompt', 'Enter');
  };

  // 1. A new chat: the question appears, the reply streams in, the chat is listed under its first words.
  const question = 'Hello from the browser';
  await send(question);
  await page.waitForSelector('.message.user >> text=' + question);
  await page.waitForSelector('.message.assistant');
  await idle();
  const reply = await lastReply().textContent();
  assert.ok(reply.length > 0, 'a reply is shown');
  if (scripted) assert.equal(reply, `Hello! You said: ${question}`);
  await page.waitForSelector(`.conversation.active >> text=${question}`);
  assert.equal((await page.textContent('#chat-title')).trim(), question);
  summary.reply = reply;
  await shot(page, '2-reply');

  // 2. Regenerate: the last reply is replaced by a new one, not added to.
  await page.click('.message.assistant .regenerate');
  await idle();
  assert.equal(await assistants.count(), 1, 'regenerate replaces the reply');
  assert.ok((await lastReply().textContent()).length > 0);
  assert.equal(await page.locator('.message.user').count(), 1);

  // 3. Settings: temperature and max tokens persist across a reload and reach the request.
  await page.click('#settings-button');
  await page.fill('#temperature', '0.3');
  await page.fill('#max-tokens', '4');
  await shot(page, '3-settings');
  await page.click('#settings-save');
  await page.reload();
  await page.waitForFunction(() => document.getElementById('model-name').textContent.trim().length > 0);
  await page.click('#settings-button');
  assert.equal(await page.inputValue('#temperature'), '0.3');
  assert.equal(await page.inputValue('#max-tokens'), '4');
  await page.click('#settings-cancel');
  await page.click(`.conversation >> text=${question}`);
  await page.waitForSelector('.message.assistant');
  await send('settings check one two three four five six');
  await page.waitForFunction(() => document.querySelectorAll('.message.assistant').length === 2);
  await idle();
  if (scripted) {
    assert.equal(await lastReply().textContent(), 'Hello! You said: settings '); // four tokens
    assert.equal((await assistants.last().locator('.status').textContent()).trim(), 'Cut off at the token limit');
  }
  await page.click('#settings-button');
  await page.fill('#max-tokens', '');
  await page.click('#settings-save');

  // 4. Stop: a slow reply is stopped mid-stream; the page says so and the text stops growing.
  await page.click('#new-chat');
  assert.equal(await page.locator('.message').count(), 0);
  await send(slowPrompt);
  await page.waitForFunction(() => {
    const replies = document.querySelectorAll('.message.assistant .content');
    return replies.length === 1 && replies[0].textContent.length > 0;
  });
  await shot(page, '4-streaming');
  await page.click('#stop');
  await idle();
  await page.waitForSelector('.message.assistant[data-status="cancelled"]');
  assert.equal((await assistants.last().locator('.status').textContent()).trim(), 'Stopped');
  const stoppedText = await lastReply().textContent();
  await page.waitForTimeout(400);
  assert.equal(await lastReply().textContent(), stoppedText, 'no text arrives after Stop');
  summary.stoppedAt = stoppedText.length;
  await shot(page, '5-stopped');

  // 5. Rename the first chat; delete the stopped one.
  const first = page.locator('.conversation', { hasText: question });
  await first.hover();
  await first.locator('.rename').click();
  await page.fill('.rename-input', 'Renamed in the browser');
  await page.press('.rename-input', 'Enter');
  await page.waitForSelector('.conversation >> text=Renamed in the browser');
  assert.equal(await page.locator('.conversation', { hasText: question }).count(), 0);

  const stopped = page.locator('.conversation.active');
  const stoppedTitle = (await stopped.textContent()).trim();
  await stopped.hover();
  await stopped.locator('.delete').click();
  await page.waitForFunction((t) => ![...document.querySelectorAll('.conversation-title')].some((b) => b.textContent === t), stoppedTitle.replace(/[✎🗑]/g, ''));
  assert.equal((await page.textContent('#chat-title')).trim(), 'New chat');

  // 6. An error is shown to the person: a message over the gateway's body limit (any gateway), and a failure in
  //    the middle of a stream (test upstream).
  await send('x'.repeat(oversize));
  await page.waitForSelector('#error:not([hidden])');
  const refused = await page.textContent('#error');
  assert.match(refused, /larger than the limit/);
  summary.error = refused;
  await shot(page, '6-error');

  if (scripted) {
    await page.click('#new-chat');
    await send('fail:midstream');
    await page.waitForSelector('#error:not([hidden])');
    assert.match(await page.textContent('#error'), /the model runner failed/);
    await page.waitForSelector('.message.assistant[data-status="failed"]');
    assert.equal(await lastReply().textContent(), 'Hello! You said: ');
    // The failed reply is marked, says how the conversation goes on, and the conversation does go on.
    assert.match(await assistants.last().locator('.status').textContent(), /^Failed part-way: this partial reply stays/);
    await send('after the failure');
    await page.waitForFunction(() => [...document.querySelectorAll('.message.assistant .content')].at(-1)?.textContent === 'Hello! You said: after the failure');
    assert.equal(await page.locator('.message.assistant[data-status="failed"]').count(), 1);
  }

  // 7. A gateway that requires keys: the page says where to enter one, and works once it is entered.
  const keyedUrl = option('--keyed-url');
  if (keyedUrl) {
    const keyed = await context.newPage();
    keyed.setDefaultTimeout(stepTimeout);
    keyed.on('pageerror', (e) => pageErrors.push(e.message));
    await keyed.goto(keyedUrl);
    await keyed.waitForSelector('#error:not([hidden])');
    assert.match(await keyed.textContent('#error'), /API key.*Open Settings/);
    await keyed.click('#settings-button');
    await keyed.fill('#api-key', option('--api-key'));
    await keyed.click('#settings-save');
    await keyed.waitForFunction(() => document.getElementById('model-name').textContent.trim().length > 0);
    await keyed.fill('#prompt', 'Hello with a key');
    await keyed.press('#prompt', 'Enter');
    await keyed.waitForSelector('#send:not([hidden])');
    await keyed.waitForSelector('.message.assistant');
    assert.ok((await keyed.locator('.message.assistant .content').last().textContent()).length > 0);
    await keyed.close();
  }

  assert.deepEqual(pageErrors, [], 'no script errors on the page');
  console.log(JSON.stringify({ ok: true, ...summary }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
