// Drives the gateway's web chat page in headless Chromium (playwright-core, Debian's chromium) through a real
// conversation and checks what the page shows: a streamed reply, regenerate and edit (both branch, ‹ 1/2 ›), stop
// mid-stream (button and Esc), settings that persist and reach the request, a system prompt, rename, search, delete,
// keyboard shortcuts, the Content-Security-Policy, dark theme, a 390 px wide phone layout, and an error rendered for
// the person. Exits non-zero on the first failed check; prints one JSON summary line on success.
//
//   node chat-page.mjs <base-url> [--screenshots DIR] [--slow-prompt TEXT] [--oversize CHARS] [--scripted]
//                      [--keyed-url URL --api-key KEY] [--readme-screenshots DIR]
//
// --slow-prompt is a message whose reply takes long enough to press Stop in (default "slow story"); --scripted adds
// the checks that need the test upstream's known replies (exact text, a failure in the middle of a stream, the
// Markdown fixture and the XSS catalogue of fixtures/, streamed in awkward pieces); --keyed-url names a gateway that
// requires keys, where the page must ask for one and then work with --api-key; --readme-screenshots is where the
// light and dark screenshots of a rendered reply go (the README shows them).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const fixture = (name) => readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', `${name}.md`), 'utf8');

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
const readmeScreenshots = option('--readme-screenshots');
if (readmeScreenshots) mkdirSync(readmeScreenshots, { recursive: true });
const origin = new URL(baseUrl).origin;

const profile = mkdtempSync(path.join(tmpdir(), 'chatservices-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
});
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
const summary = {};
// Every request the pages make that leaves for another origin (hostile replies must cause none).
const foreignRequests = [];
context.on('request', (r) => {
  if (!r.url().startsWith('data:') && new URL(r.url()).origin !== origin && new URL(r.url()).origin !== new URL(option('--keyed-url') ?? baseUrl).origin) foreignRequests.push(r.url());
});
const shot = async (page, name) => {
  if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`) });
};

try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(stepTimeout);
  page.on('dialog', (d) => d.accept()); // the delete confirmation
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  const loaded = await page.goto(baseUrl);
  await page.waitForFunction(() => document.getElementById('model-name').textContent.trim().length > 0);
  summary.model = (await page.textContent('#model-name')).trim();
  await shot(page, '1-empty');

  // 0. The page is served with a Content-Security-Policy that forbids inline script, and the browser enforces it.
  const csp = loaded.headers()['content-security-policy'] ?? '';
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inline = true';
    document.body.append(s);
    return window.__inline;
  }), undefined, 'inline script is refused');
  assert.equal(await page.getAttribute('#messages', 'aria-live'), 'off', 'streamed text is not read out piece by piece');

  const assistants = page.locator('.message.assistant');
  const lastReply = () => assistants.last().locator('.content');
  const replyText = async () => (await lastReply().innerText()).trim();
  const idle = () => page.waitForSelector('#send:not([hidden])');
  const send = async (text) => {
    await page.fill('#prompt', text);
    await page.press('#prompt', 'Enter');
  };
  const branchOf = (message) => message.locator('.branch-index').textContent();

  // 1. A new chat: the question appears, the reply streams in, the chat is listed under its first words.
  const question = 'Hello from the browser';
  await send(question);
  await page.waitForSelector('.message.user >> text=' + question);
  await page.waitForSelector('.message.assistant');
  await idle();
  const reply = await replyText();
  assert.ok(reply.length > 0, 'a reply is shown');
  if (scripted) assert.equal(reply, `Hello! You said: ${question}`);
  await page.waitForSelector(`.conversation.active >> text=${question}`);
  assert.equal((await page.textContent('#chat-title')).trim(), question);
  // Screen readers get the finished reply once, from the live region; every reply shows its tokens and finish reason.
  await page.waitForFunction(() => document.getElementById('announcer').textContent.trim().length > 0);
  const words = (text) => text.replace(/\s+/g, ' ').trim();
  assert.equal(words(await page.textContent('#announcer')), words(reply));
  assert.match(await assistants.last().locator('.usage').textContent(), scripted ? /^\d+ prompt \+ \d+ reply tokens · finish: stop$/ : /^\d+ prompt \+ \d+ reply tokens · finish: (stop|length)$/);
  summary.reply = reply;
  await shot(page, '2-reply');

  // 2. Regenerate: a new reply takes the old one's place; the old one stays reachable with ‹ ›.
  await page.click('.message.assistant .regenerate');
  await idle();
  await page.waitForSelector('.message.assistant .branch-index');
  assert.equal(await assistants.count(), 1, 'regenerate replaces the reply on screen');
  assert.equal(await branchOf(assistants.last()), '2/2');
  assert.ok((await replyText()).length > 0);
  assert.equal(await page.locator('.message.user').count(), 1);
  await page.click('.message.assistant .branch-prev');
  assert.equal(await branchOf(assistants.last()), '1/2');
  assert.equal(await replyText(), reply, 'the first attempt is still there');
  await page.click('.message.assistant .branch-next');
  assert.equal(await branchOf(assistants.last()), '2/2');

  // 3. Settings: temperature, top p and max tokens persist across a reload and reach the request.
  await page.click('#settings-button');
  await page.fill('#temperature', '0.3');
  await page.fill('#top-p', '0.9');
  await page.fill('#max-tokens', '4');
  await shot(page, '3-settings');
  await page.click('#settings-save');
  await page.reload();
  await page.waitForFunction(() => document.getElementById('model-name').textContent.trim().length > 0);
  await page.click('#settings-button');
  assert.equal(await page.inputValue('#temperature'), '0.3');
  assert.equal(await page.inputValue('#top-p'), '0.9');
  assert.equal(await page.inputValue('#max-tokens'), '4');
  await page.click('#settings-cancel');
  await page.click(`.conversation >> text=${question}`);
  await page.waitForSelector('.message.assistant');
  await send('settings check one two three four five six');
  await page.waitForFunction(() => document.querySelectorAll('.message.assistant').length === 2);
  await idle();
  if (scripted) {
    assert.equal(await replyText(), 'Hello! You said: settings'); // four tokens
    assert.match((await assistants.last().locator('.status').textContent()).trim(), /^Cut off at the token limit/);
    assert.match(await assistants.last().locator('.usage').textContent(), /\+ 4 reply tokens · finish: length$/);
  }
  await page.click('#settings-button');
  await page.fill('#max-tokens', '');
  await page.click('#settings-save');
  if (scripted) {
    // A reply cut at the token limit can be continued: the model goes on from its last word, and the longer reply
    // takes the cut one's place (which stays reachable with ‹ ›).
    await assistants.last().locator('.continue').click();
    await idle();
    await page.waitForSelector('.message.assistant:last-child .branch-index');
    assert.equal(await assistants.count(), 2);
    assert.equal(await replyText(), 'Hello! You said: settings check one two three four five six');
    assert.equal(await branchOf(assistants.last()), '2/2');
    assert.equal(await assistants.last().locator('.status').count(), 0, 'no longer cut off');
  }

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
  const stoppedText = await replyText();
  await page.waitForTimeout(400);
  assert.equal(await replyText(), stoppedText, 'no text arrives after Stop');
  summary.stoppedAt = stoppedText.length;
  await shot(page, '5-stopped');

  // Esc stops a reply too, and Ctrl+K starts a new chat.
  await send(slowPrompt);
  await page.waitForFunction(() => {
    const replies = document.querySelectorAll('.message.assistant .content');
    return replies.length === 2 && replies[1].textContent.length > 0;
  });
  await page.keyboard.press('Escape');
  await idle();
  await page.waitForFunction(() => document.querySelectorAll('.message.assistant[data-status="cancelled"]').length === 2);
  const stoppedTitle = (await page.textContent('#chat-title')).trim();

  // 5. Rename the first chat; delete the stopped one.
  const first = page.locator('.conversation', { hasText: question });
  await first.hover();
  await first.locator('.rename').click();
  await page.fill('.rename-input', 'Renamed in the browser');
  await page.press('.rename-input', 'Enter');
  await page.waitForSelector('.conversation >> text=Renamed in the browser');
  assert.equal(await page.locator('.conversation', { hasText: question }).count(), 0);

  // Search by title: only matching chats are listed.
  await page.fill('#search', 'renamed in the');
  await page.waitForFunction(() => document.querySelectorAll('.conversation').length === 1);
  assert.equal((await page.textContent('.conversation-title')).trim(), 'Renamed in the browser');
  await page.fill('#search', '');
  await page.waitForFunction(() => document.querySelectorAll('.conversation').length > 1);

  const stopped = page.locator('.conversation.active');
  await stopped.hover();
  await stopped.locator('.delete').click();
  await page.waitForFunction((t) => ![...document.querySelectorAll('.conversation-title')].some((b) => b.textContent === t), stoppedTitle);
  assert.equal((await page.textContent('#chat-title')).trim(), 'New chat');

  // 5b. Edit a sent message: the conversation branches there; the old branch stays reachable with ‹ ›. (Short
  //     replies from here on: a real model would otherwise write up to its default length each time.)
  await page.click('#settings-button');
  await page.fill('#max-tokens', '16');
  await page.click('#settings-save');
  await send('first question');
  await page.waitForSelector('.message.assistant');
  await idle();
  await send('second question');
  await page.waitForFunction(() => document.querySelectorAll('.message.assistant').length === 2);
  await idle();
  const users = page.locator('.message.user');
  await users.first().locator('.edit').click();
  await page.fill('.edit-input', 'first question, edited');
  await page.click('.edit-send');
  await idle();
  await page.waitForSelector('.message.user .branch-index');
  assert.equal(await users.count(), 1, 'the edited branch has one turn so far');
  assert.equal((await users.first().locator('.content').textContent()).trim(), 'first question, edited');
  assert.equal(await branchOf(users.first()), '2/2');
  if (scripted) assert.equal(await replyText(), 'Hello! You said: first question, edited');
  await users.first().locator('.branch-prev').click();
  assert.equal(await branchOf(users.first()), '1/2');
  assert.deepEqual((await users.locator('.content').allTextContents()).map((t) => t.trim()), ['first question', 'second question']);
  assert.equal(await assistants.count(), 2, 'the old branch is whole');
  // The page remembers nothing the server does not: reopening the chat shows the newest branch again.
  await page.reload();
  await page.click('.conversation >> text=first question');
  await page.waitForSelector('.message.user .branch-index');
  assert.equal(await branchOf(users.first()), '2/2');
  await shot(page, '5b-branch');

  // 5c. Keyboard: Ctrl+K starts a new chat; keyboard focus is visible.
  await page.keyboard.press('Control+K');
  assert.equal((await page.textContent('#chat-title')).trim(), 'New chat');
  assert.equal(await page.locator('.message').count(), 0);
  await page.focus('#prompt');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'send');
  assert.notEqual(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none', 'focus is visible');

  // 5d. A system prompt for a new chat is stored with it, shown in its settings, and can be changed there.
  await page.click('#settings-button');
  await page.fill('#system-prompt', 'Answer like a pirate.');
  await page.click('#settings-save');
  await send('system prompt check');
  await idle();
  const withPrompt = await page.evaluate(async () => {
    const id = document.querySelector('.conversation.active').dataset.id;
    return (await (await fetch(`/api/conversations/${id}`)).json()).system_prompt;
  });
  assert.equal(withPrompt, 'Answer like a pirate.');
  await page.click('#settings-button');
  assert.equal(await page.inputValue('#system-prompt'), 'Answer like a pirate.');
  await page.fill('#system-prompt', 'Answer like a poet.');
  await page.click('#settings-save');
  await page.waitForFunction(async () => {
    const id = document.querySelector('.conversation.active').dataset.id;
    return (await (await fetch(`/api/conversations/${id}`)).json()).system_prompt === 'Answer like a poet.';
  });
  await page.keyboard.press('Control+K');
  await page.click('#settings-button');
  await page.fill('#system-prompt', '');
  await page.fill('#max-tokens', '');
  await page.click('#settings-save');

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
    assert.equal(await replyText(), 'Hello! You said:');
    // The failed reply is marked, says how the conversation goes on, and the conversation does go on.
    assert.match(await assistants.last().locator('.status').textContent(), /^Failed part-way: this partial reply stays/);
    await send('after the failure');
    await page.waitForFunction(() => [...document.querySelectorAll('.message.assistant .content')].at(-1)?.textContent.trim() === 'Hello! You said: after the failure');
    assert.equal(await page.locator('.message.assistant[data-status="failed"]').count(), 1);
  }

  if (scripted) {
    // 8. Markdown: the fixture, streamed in awkward pieces, renders as headings, a table, nested lists, task lists
    //    and highlighted code with its language and a copy button.
    //    While it streams, a block that another block follows keeps its node: only the block being written is
    //    rendered again (no flicker, no jumps).
    await page.keyboard.press('Control+K');
    const markdown = fixture('markdown');
    await page.evaluate(() => {
      window.__streamedFrames = 0;
      window.__replacedBlocks = [];
      let previous = [];
      const watch = () => {
        const content = document.querySelector('.message.assistant.streaming .content');
        if (content) {
          window.__streamedFrames++;
          for (const block of previous.slice(0, -1)) if (!block.isConnected) window.__replacedBlocks.push(block.textContent.slice(0, 40));
          previous = [...content.children];
        } else previous = [];
        requestAnimationFrame(watch);
      };
      requestAnimationFrame(watch);
    });
    await send('fixture-slow:markdown');
    await idle();
    const streamedFrames = await page.evaluate(() => window.__streamedFrames);
    assert.ok(streamedFrames >= 10, `the reply streamed over many frames (${streamedFrames})`);
    assert.deepEqual(await page.evaluate(() => window.__replacedBlocks), [], 'finished blocks are never rendered again');
    summary.streamedFrames = streamedFrames;
    await page.waitForSelector('.message.assistant .usage');
    const reply = assistants.last().locator('.content');
    assert.equal((await reply.locator('h1').textContent()).trim(), 'Trip plan');
    assert.equal((await reply.locator('h2').textContent()).trim(), 'Budget');
    assert.deepEqual(await reply.locator('table th').allTextContents(), ['Item', 'Cost', 'Notes']);
    assert.deepEqual(await reply.locator('table tbody tr').evaluateAll((rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
      [['Train', '120', 'return'], ['Hotel', '340', '3 nights']]);
    assert.deepEqual(await reply.locator('ul > li > ul > li > ol > li').allTextContents(), ['Cathedral', 'Market']);
    assert.deepEqual(await reply.locator('li input[type="checkbox"]').evaluateAll((b) => b.map((x) => [x.checked, x.disabled])), [[true, true], [false, true]]);
    assert.equal(await reply.locator('del').textContent(), 'old');
    assert.equal(await reply.locator('strong').textContent(), 'plan');
    assert.equal((await reply.locator('blockquote').textContent()).trim(), 'Prices change; check before booking.');
    assert.equal(await reply.locator('.code-block .code-language').textContent(), 'python');
    assert.equal(await reply.locator('.code-block code .hljs-keyword').first().textContent(), 'def');
    const link = reply.locator('a', { hasText: 'the timetable' });
    assert.equal(await link.getAttribute('href'), 'https://example.org/timetable');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    assert.equal(await link.getAttribute('target'), '_blank');

    // 9. Dark theme from prefers-color-scheme: dark page, dark code colours. The README's screenshots show both.
    await page.evaluate(() => { document.getElementById('messages').scrollTop = 0; });
    if (readmeScreenshots) await page.screenshot({ path: path.join(readmeScreenshots, 'chat-light.png') });
    const lightKeyword = await reply.locator('.hljs-keyword').first().evaluate((e) => getComputedStyle(e).color);
    await page.emulateMedia({ colorScheme: 'dark' });
    const luminance = await page.evaluate(() => {
      const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    });
    assert.ok(luminance < 0.2, `the dark theme has a dark background (luminance ${luminance})`);
    assert.notEqual(await reply.locator('.hljs-keyword').first().evaluate((e) => getComputedStyle(e).color), lightKeyword, 'code takes dark colours');
    if (readmeScreenshots) await page.screenshot({ path: path.join(readmeScreenshots, 'chat-dark.png') });
    await page.emulateMedia({ colorScheme: 'light' });
    summary.darkLuminance = Number(luminance.toFixed(3));

    // The copy buttons put the code, and the whole reply as written, on the clipboard.
    await reply.locator('.copy-code').click();
    await page.waitForFunction(() => document.querySelector('.copy-code').textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'def total(costs):\n    return sum(costs)  # 460\n');
    await assistants.last().locator('.copy-reply').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), markdown);

    // 10. Hostile output: the XSS catalogue, split across SSE chunks at awkward places, runs nothing and fetches
    //     nothing from another origin; what is left is inert text, safe links and a code block.
    await page.keyboard.press('Control+K');
    await send('fixture:xss-catalogue');
    await idle();
    await page.waitForSelector('.message.assistant .usage');
    await page.waitForTimeout(500); // time for anything that would fire late (onerror, animation, refresh)
    assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no payload ran');
    assert.equal(page.url().startsWith(baseUrl), true, 'the page was not navigated away');
    const hostile = assistants.last().locator('.content');
    assert.equal(await hostile.locator('script, iframe, object, embed, img, svg, math, style, form, button:not(.copy-code), base, meta, link, video, details, body, noscript, input:not([type="checkbox"])').count(), 0);
    assert.equal(await hostile.evaluate((root) => [...root.querySelectorAll('*')].flatMap((e) => [...e.attributes]).filter((a) => a.name.startsWith('on') || a.name === 'style').length), 0);
    const hrefs = await hostile.locator('a[href]').evaluateAll((links) => links.map((a) => [a.getAttribute('href'), a.rel]));
    assert.ok(hrefs.length > 0);
    for (const [href, rel] of hrefs) {
      assert.match(href, /^https:\/\//, `only http(s) links survive: ${href}`);
      assert.equal(rel, 'noopener noreferrer');
    }
    assert.match(await hostile.locator('.code-block code').textContent(), /<script>window.__pwned = 'inside a code block/);
    summary.hostileLinks = hrefs.length;
  }

  // 11. A phone, 390 px wide: the conversation list is behind a button and the input stays on screen.
  const phone = await context.newPage();
  phone.setDefaultTimeout(stepTimeout);
  phone.on('pageerror', (e) => pageErrors.push(e.message));
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.goto(baseUrl);
  await phone.waitForFunction(() => document.querySelectorAll('.conversation').length > 0);
  const onScreen = async (selector) => {
    const box = await phone.locator(selector).boundingBox();
    return box !== null && box.x >= 0 && box.y >= 0 && box.x + box.width <= 390 && box.y + box.height <= 844;
  };
  assert.equal(await phone.locator('#sidebar').isVisible(), false, 'the list is hidden');
  assert.ok(await onScreen('#prompt'), 'the input is on screen');
  await phone.click('#sidebar-toggle');
  assert.equal(await phone.getAttribute('#sidebar-toggle', 'aria-expanded'), 'true');
  await phone.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().left >= 0);
  await phone.locator('.conversation-title', { hasText: 'first question' }).click();
  await phone.waitForSelector('.message.assistant');
  await phone.waitForFunction(() => document.getElementById('sidebar').getBoundingClientRect().right <= 0);
  assert.ok(await onScreen('#prompt'), 'the input is on screen with a conversation open');
  assert.ok(await onScreen('#send'), 'the send button is on screen');
  assert.ok(await phone.evaluate(() => document.documentElement.scrollWidth <= 390), 'nothing is wider than the screen');
  await shot(phone, '11-phone');
  await phone.close();

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
  assert.deepEqual(foreignRequests, [], 'no request left for another origin');
  console.log(JSON.stringify({ ok: true, ...summary }));
} catch (e) {
  // What the page showed when a check failed.
  for (const p of context.pages()) console.error(`--- ${p.url()}: error "${await p.textContent('#error').catch(() => '')}"; last message: ${await p.locator('.message').last().innerHTML().catch(() => '(none)')}`);
  throw e;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
