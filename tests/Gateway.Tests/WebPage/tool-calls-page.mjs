// Opens a stored conversation whose reply called a tool in the gateway's web chat page (headless Chromium through
// playwright-core) and checks what the page shows: a block per call with the function's name and its arguments, and
// the tool's result under the call, all as text. Exits non-zero on the first failed check; prints one JSON summary
// line on success.
//
//   node tool-calls-page.mjs <base-url> <conversation-id> [--screenshot FILE]
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [baseUrl, conversationId] = process.argv.slice(2);
assert.ok(baseUrl && conversationId, 'usage: node tool-calls-page.mjs <base-url> <conversation-id> [--screenshot FILE]');
const shotAt = process.argv.indexOf('--screenshot');

const profile = mkdtempSync(path.join(tmpdir(), 'chatservices-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
try {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(baseUrl);
  await page.locator(`#conversation-list li[data-id="${conversationId}"] .conversation-title`).click();

  const call = page.locator('article.message.assistant .tool-call').first();
  await call.waitFor({ timeout: 30_000 });
  const name = await call.locator('.tool-name').textContent();
  const args = JSON.parse(await call.locator('.tool-arguments').textContent());
  const result = await call.locator('.tool-result .tool-result-content').textContent();
  // The result sits under its call, not in a box of its own; no markup from the arguments became elements.
  assert.equal(await page.locator('article.message.tool').count(), 0);
  assert.equal(await call.locator('.tool-arguments *').count(), 0);
  assert.deepEqual(errors, []);
  if (shotAt > 0) await page.screenshot({ path: process.argv[shotAt + 1] });
  console.log(JSON.stringify({ name, arguments: args, result }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
