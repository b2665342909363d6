// The ChatServices web chat: conversations on the left, the open one on the right, replies streamed over
// Server-Sent Events (fetch + ReadableStream, so a POST body and an AbortController work) and rendered as Markdown
// (markdown.js). No bundler: ES modules, and libraries that the Gateway build copies into vendor/.
//
// A conversation is a tree: an edited message or a regenerated reply is a sibling of the one it replaces. The page
// shows one path through it, from the first message down, choosing at each fork the sibling picked with ‹ › (the
// newest by default).

import { renderMarkdown, copyText } from './markdown.js';

const $ = (id) => document.getElementById(id);
const els = {
  sidebar: $('sidebar'), sidebarToggle: $('sidebar-toggle'), scrim: $('scrim'), search: $('search'),
  list: $('conversation-list'), newChat: $('new-chat'), title: $('chat-title'), model: $('model-name'),
  messages: $('messages'), empty: $('empty'), announcer: $('announcer'), error: $('error'), composer: $('composer'),
  prompt: $('prompt'), send: $('send'), stop: $('stop'), settingsButton: $('settings-button'), settings: $('settings'),
  systemPrompt: $('system-prompt'),
  temperature: $('temperature'), temperatureValue: $('temperature-value'), topP: $('top-p'), topPValue: $('top-p-value'),
  maxTokens: $('max-tokens'), apiKey: $('api-key'),
};

const SETTINGS_KEY = 'chatservices.settings';
const CHAT_SETTINGS_KEY = (id) => `chatservices.chat.${id}`;
const DEFAULTS = { temperature: 0.7, topP: 1, maxTokens: null, systemPrompt: '' };
// Inline icons: no icon font or emoji font is assumed to be installed.
const svg = (d) => `<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${d}</svg>`;
const ICONS = {
  pencil: svg('<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4Z"/>'),
  trash: svg('<path d="M3 6h18"/><path d="M8 6V4h8v2"/><path d="M19 6l-1 14H6L5 6"/><path d="M10 11v6M14 11v6"/>'),
};
const state = {
  conversations: [],
  current: null,          // the open conversation's id, or null for a new chat not yet created
  systemPrompt: '',       // the open conversation's
  messages: [],           // the open conversation's messages, every branch, in sequence order
  picked: new Map(),      // parent id ('' for the first messages) → the index of the sibling shown
  stale: false,           // a reply ended without the server confirming it: the tree lacks its last messages
  streaming: null,        // the AbortController of the reply being streamed
  settings: loadSettings(),
};

// ------------------------------------------------------------------------------------------------ settings

/** The browser's settings: the API key and the generation settings new chats start with. */
function loadSettings() {
  try {
    return { ...DEFAULTS, apiKey: '', ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') };
  } catch {
    return { ...DEFAULTS, apiKey: '' };
  }
}

/** The open chat's generation settings (kept in this browser), falling back to those for new chats. */
function chatSettings() {
  const { temperature, topP, maxTokens } = state.settings;
  const own = state.current ? JSON.parse(localStorage.getItem(CHAT_SETTINGS_KEY(state.current)) || 'null') : null;
  return { temperature, topP, maxTokens, ...own };
}

function openSettings() {
  const chat = chatSettings();
  els.systemPrompt.value = state.current ? state.systemPrompt : state.settings.systemPrompt;
  els.temperature.value = chat.temperature;
  els.topP.value = chat.topP;
  els.maxTokens.value = chat.maxTokens ?? '';
  els.apiKey.value = state.settings.apiKey;
  showRangeValues();
  els.settings.showModal();
}

function showRangeValues() {
  els.temperatureValue.textContent = Number(els.temperature.value).toFixed(2);
  els.topPValue.textContent = Number(els.topP.value).toFixed(2);
}

els.temperature.addEventListener('input', showRangeValues);
els.topP.addEventListener('input', showRangeValues);

els.settings.addEventListener('close', async () => {
  if (els.settings.returnValue !== 'save') return;
  const maxTokens = els.maxTokens.value.trim();
  const chat = { temperature: Number(els.temperature.value), topP: Number(els.topP.value), maxTokens: maxTokens === '' ? null : Number(maxTokens) };
  if (state.current) localStorage.setItem(CHAT_SETTINGS_KEY(state.current), JSON.stringify(chat));
  const systemPrompt = els.systemPrompt.value.trim();
  state.settings = { ...chat, systemPrompt, apiKey: els.apiKey.value.trim() };
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(state.settings));
  if (state.current && systemPrompt !== state.systemPrompt) {
    try {
      const updated = await api(`/api/conversations/${encodeURIComponent(state.current)}`, { method: 'PATCH', body: { system_prompt: systemPrompt } });
      state.systemPrompt = updated.system_prompt ?? '';
    } catch (e) {
      showError(describe(e));
    }
  }
  refresh();
});

// --------------------------------------------------------------------------------------------------- HTTP

function headers(json = true) {
  const h = {};
  if (json) h['Content-Type'] = 'application/json';
  if (state.settings.apiKey) h.Authorization = `Bearer ${state.settings.apiKey}`;
  return h;
}

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

async function errorOf(response) {
  try {
    const body = await response.json();
    if (body?.error?.message) return new ApiError(body.error.message, response.status);
  } catch { /* not JSON */ }
  return new ApiError(`The server answered ${response.status} ${response.statusText}.`, response.status);
}

async function api(path, { method = 'GET', body } = {}) {
  const response = await fetch(path, {
    method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/** Reads a text/event-stream body, calling onEvent(name, data) for each event. */
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) onEvent(name, data.join('\n'));
    }
  }
}

// --------------------------------------------------------------------------------------------- rendering

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

/** An error as the person should read it: a missing or wrong key says where to enter one. */
function describe(error) {
  return error.status === 401 ? `${error.message} Open Settings to enter your API key.` : error.message;
}

function iconButton(className, icon, label, onClick) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = `icon ${className}`;
  button.innerHTML = icon;
  button.setAttribute('aria-label', label);
  button.addEventListener('click', onClick);
  return button;
}

function renderList() {
  const query = els.search.value.trim().toLowerCase();
  const shown = state.conversations.filter((c) => !query || c.title.toLowerCase().includes(query));
  els.list.replaceChildren(...shown.map((c) => {
    const li = document.createElement('li');
    li.className = 'conversation' + (c.id === state.current ? ' active' : '');
    li.dataset.id = c.id;

    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'conversation-title';
    open.textContent = c.title;
    open.title = c.title;
    open.setAttribute('aria-current', c.id === state.current ? 'page' : 'false');
    open.addEventListener('click', () => openConversation(c.id));

    li.append(open,
      iconButton('rename', ICONS.pencil, `Rename ${c.title}`, () => startRename(li, c)),
      iconButton('delete', ICONS.trash, `Delete ${c.title}`, () => deleteConversation(c)));
    return li;
  }));
}

function startRename(li, conversation) {
  const input = document.createElement('input');
  input.className = 'rename-input';
  input.value = conversation.title;
  input.setAttribute('aria-label', 'New title');
  li.replaceChildren(input);
  input.focus();
  input.select();
  let done = false;
  const finish = async (save) => {
    if (done) return;
    done = true;
    const title = input.value.trim();
    if (save && title && title !== conversation.title) {
      try {
        await api(`/api/conversations/${encodeURIComponent(conversation.id)}`, { method: 'PATCH', body: { title } });
        if (conversation.id === state.current) els.title.textContent = title;
      } catch (e) {
        showError(describe(e));
      }
    }
    await loadConversations();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
}

async function deleteConversation(conversation) {
  if (!confirm(`Delete "${conversation.title}"?`)) return;
  try {
    await api(`/api/conversations/${encodeURIComponent(conversation.id)}`, { method: 'DELETE' });
    localStorage.removeItem(CHAT_SETTINGS_KEY(conversation.id));
    if (conversation.id === state.current) newChat();
    await loadConversations();
  } catch (e) {
    showError(describe(e));
  }
}

/** The messages shown: from a first message down, at each fork the picked sibling (the newest unless chosen). */
function activePath() {
  const children = new Map();
  for (const m of state.messages) {
    const key = m.parent_id ?? '';
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(m);
  }
  const path = [];
  for (let key = ''; children.has(key);) {
    const siblings = children.get(key);
    const index = Math.min(state.picked.get(key) ?? siblings.length - 1, siblings.length - 1);
    const message = siblings[index];
    path.push({ message, siblings, index });
    key = message.id;
  }
  return path;
}

/** Shows the active path of the open conversation, keeping the reader's scroll position. */
function renderConversation() {
  const top = els.messages.scrollTop;
  for (const m of [...els.messages.querySelectorAll('.message')]) m.remove();
  const path = activePath().filter(({ message }) => message.role !== 'system');
  for (const entry of path) {
    // A tool result is shown under the call it answers; one whose call is not on screen gets a box of its own.
    const call = entry.message.role === 'tool' && entry.message.tool_call_id
      ? [...els.messages.querySelectorAll('.tool-call')].find((c) => c.dataset.callId === entry.message.tool_call_id)
      : null;
    if (call) call.append(toolResult(entry.message));
    else els.messages.append(messageElement(entry));
  }
  els.empty.hidden = path.length > 0;
  els.messages.scrollTop = top;
}

function messageElement({ message, siblings, index }) {
  const div = newMessage(message.role);
  div.dataset.id = message.id;
  setContent(div, message.content ?? '');
  if (message.tool_calls?.length) div.querySelector('.content').after(toolCalls(message.tool_calls));
  const meta = div.querySelector('.meta');
  if (siblings.length > 1) meta.append(branchSwitch(message.parent_id ?? '', index, siblings.length));
  if (message.role === 'user') {
    meta.append(iconButton('edit', ICONS.pencil, 'Edit message', () => startEdit(div, message)));
  } else if (message.role === 'assistant') {
    addReplyActions(div, message);
    if (message.usage || message.finish_reason) showUsage(div, message.usage, message.finish_reason);
  }
  if (message.status && message.status !== 'complete') markStatus(div, message.status);
  else if (message.finish_reason === 'length') markStatus(div, 'length');
  return div;
}

/**
 * The tools a reply called: a block per call with the function's name and its arguments (pretty-printed when they
 * are JSON), as text, never markup. Results are added under their call by toolResult.
 */
function toolCalls(calls) {
  const list = document.createElement('div');
  list.className = 'tool-calls';
  for (const call of calls) {
    const block = document.createElement('section');
    block.className = 'tool-call';
    block.dataset.callId = call.id;
    block.setAttribute('aria-label', `Tool call ${call.name}`);
    const name = document.createElement('div');
    name.className = 'tool-name';
    name.textContent = `ƒ ${call.name}`;
    const args = document.createElement('pre');
    args.className = 'tool-arguments';
    args.textContent = prettyJson(call.arguments);
    block.append(name, args);
    list.append(block);
  }
  return list;
}

/** A tool's result, shown under the call it answers. */
function toolResult(message) {
  const result = document.createElement('div');
  result.className = 'tool-result';
  const label = document.createElement('div');
  label.className = 'tool-result-label';
  label.textContent = 'Result';
  const body = document.createElement('pre');
  body.className = 'tool-result-content';
  body.textContent = prettyJson(message.content ?? '');
  result.append(label, body);
  return result;
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A message box: role, content, and a line for its controls. */
function newMessage(role) {
  const div = document.createElement('article');
  div.className = `message ${role}`;
  const label = document.createElement('div');
  label.className = 'role';
  label.textContent = role === 'assistant' ? 'Assistant' : role === 'user' ? 'You' : role === 'tool' ? 'Tool result' : 'System';
  const body = document.createElement('div');
  body.className = role === 'assistant' ? 'content markdown' : 'content';
  const meta = document.createElement('div');
  meta.className = 'meta';
  div.append(label, body, meta);
  return div;
}

/** User text is shown as it was typed; an assistant's reply is rendered as Markdown. */
function setContent(div, text) {
  const body = div.querySelector('.content');
  div.dataset.text = text;
  if (div.classList.contains('assistant')) renderMarkdown(body, text);
  else body.textContent = text;
}

/** ‹ i/n ›: which of the alternatives at this fork is shown. */
function branchSwitch(parentKey, index, count) {
  const nav = document.createElement('span');
  nav.className = 'branch';
  nav.setAttribute('role', 'group');
  nav.setAttribute('aria-label', 'Versions');
  const step = (delta, text, label) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = `icon branch-${delta < 0 ? 'prev' : 'next'}`;
    b.textContent = text;
    b.setAttribute('aria-label', label);
    b.disabled = index + delta < 0 || index + delta >= count;
    b.addEventListener('click', () => {
      state.picked.set(parentKey, index + delta);
      renderConversation();
    });
    return b;
  };
  const where = document.createElement('span');
  where.className = 'branch-index';
  where.textContent = `${index + 1}/${count}`;
  nav.append(step(-1, '‹', 'Previous version'), where, step(1, '›', 'Next version'));
  return nav;
}

function addReplyActions(div, message) {
  const meta = div.querySelector('.meta');
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'button ghost small copy-reply';
  copy.textContent = 'Copy';
  copy.setAttribute('aria-label', 'Copy reply');
  copy.addEventListener('click', () => copyText(div.dataset.text ?? '', copy));
  meta.append(copy);
  if (!state.current) return;
  const again = document.createElement('button');
  again.type = 'button';
  again.className = 'button ghost small regenerate';
  again.textContent = '↻ Regenerate';
  again.addEventListener('click', () => generate({ regenerate: true, parentId: message?.parent_id ?? undefined, from: div }));
  meta.append(again);
}

/** Tokens and finish reason of a reply. */
function showUsage(div, usage, finishReason) {
  let note = div.querySelector('.usage');
  if (!note) {
    note = document.createElement('span');
    note.className = 'usage';
    div.querySelector('.meta').append(note);
  }
  const parts = [];
  if (usage) parts.push(`${usage.prompt_tokens} prompt + ${usage.completion_tokens} reply tokens`);
  if (finishReason) parts.push(`finish: ${finishReason}`);
  note.textContent = parts.join(' · ');
}

function markStatus(div, status) {
  div.dataset.status = status;
  let note = div.querySelector('.status');
  if (!note) {
    note = document.createElement('div');
    note.className = 'status';
    div.querySelector('.meta').before(note);
  }
  note.textContent = status === 'cancelled' ? 'Stopped' : status === 'failed' || status === 'error' ? failedNote(div) : status === 'length' ? 'Cut off at the token limit' : status;
  if (status === 'length' && state.current && !note.querySelector('.continue')) {
    const more = document.createElement('button');
    more.type = 'button';
    more.className = 'button ghost small continue';
    more.textContent = 'Continue';
    more.addEventListener('click', () => continueReply(div));
    note.append(' ', more);
  }
}

/** Replaces a user message's text with an editor; sending it starts a new branch beside the message. */
function startEdit(div, message) {
  if (state.streaming) return;
  const body = div.querySelector('.content');
  const editor = document.createElement('textarea');
  editor.className = 'edit-input';
  editor.value = message.content;
  editor.setAttribute('aria-label', 'Edit message');
  const save = document.createElement('button');
  save.type = 'button';
  save.className = 'button primary small edit-send';
  save.textContent = 'Send';
  const cancel = document.createElement('button');
  cancel.type = 'button';
  cancel.className = 'button ghost small edit-cancel';
  cancel.textContent = 'Cancel';
  const actions = document.createElement('div');
  actions.className = 'edit-actions';
  actions.append(cancel, save);
  body.replaceChildren(editor, actions);
  editor.focus();
  const send = () => {
    const text = editor.value.trim();
    if (text) generate({ content: text, parentId: message.parent_id ?? '', from: div });
  };
  save.addEventListener('click', send);
  cancel.addEventListener('click', renderConversation);
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === 'Escape') {
      e.stopPropagation();
      renderConversation();
    }
  });
}

/** Asks for more of a reply cut at the token limit: the model goes on from its last word; the longer reply is
 *  stored beside the cut one. */
function continueReply(div) {
  const message = state.messages.find((m) => m.id === div.dataset.id);
  if (message) generate({ continueReply: true, parentId: message.id, fork: message.parent_id ?? '', from: div, continued: message.content });
}

/** How the conversation goes on after a failed reply (DialogueService builds later prompts this way). */
function failedNote(div) {
  return div.querySelector('.content').textContent
    ? 'Failed part-way: this partial reply stays in the conversation. Regenerate it, or go on.'
    : 'Failed before replying: the message above is left out of what the model sees next. Regenerate to answer it, or go on.';
}

function scrollToEnd() {
  els.messages.scrollTop = els.messages.scrollHeight;
}

/** Whether the reader is at the end of the messages (then streaming text keeps them there). */
function atEnd() {
  return els.messages.scrollHeight - els.messages.scrollTop - els.messages.clientHeight < 40;
}

function setStreaming(controller) {
  state.streaming = controller;
  els.send.hidden = !!controller;
  els.stop.hidden = !controller;
  els.prompt.disabled = false;
  for (const b of els.messages.querySelectorAll('.regenerate, .continue, .edit')) b.disabled = !!controller;
}

// ------------------------------------------------------------------------------------------------ actions

async function loadConversations() {
  try {
    const all = [];
    let token = null;
    do {
      const page = await api('/api/conversations?page_size=100' + (token ? `&page_token=${encodeURIComponent(token)}` : ''));
      all.push(...page.conversations);
      token = page.next_page_token;
    } while (token && all.length < 1000);
    state.conversations = all;
    renderList();
  } catch (e) {
    showError(describe(e));
  }
}

async function loadModel() {
  try {
    const models = await api('/v1/models');
    els.model.textContent = models.data[0]?.id ?? '';
  } catch (e) {
    showError(describe(e));
  }
}

function showConversation(conversation) {
  state.current = conversation.id;
  state.systemPrompt = conversation.system_prompt ?? '';
  state.messages = conversation.messages ?? [];
  state.stale = false;
  els.title.textContent = conversation.title;
}

function newChat() {
  state.streaming?.abort();
  state.current = null;
  state.messages = [];
  state.picked = new Map();
  els.title.textContent = 'New chat';
  renderConversation();
  showError('');
  renderList();
  closeSidebar();
  els.prompt.focus();
}

async function openConversation(id) {
  state.streaming?.abort();
  showError('');
  try {
    const conversation = await api(`/api/conversations/${encodeURIComponent(id)}`);
    state.picked = new Map();
    showConversation(conversation);
    renderConversation();
    scrollToEnd();
    renderList();
    closeSidebar();
  } catch (e) {
    showError(describe(e));
  }
}

/** Reads the open conversation again (after a reply was stored), showing the branch just written. */
async function reloadConversation(forkKey) {
  const conversation = await api(`/api/conversations/${encodeURIComponent(state.current)}`);
  if (conversation.id !== state.current) return;
  state.picked.delete(forkKey);
  showConversation(conversation);
  renderConversation();
}

/** The id the next message follows: the last one shown (undefined when the page may not know it: the server's latest). */
function tailId() {
  if (state.stale) return undefined;
  const path = activePath();
  return path.length ? path[path.length - 1].message.id : '';
}

/**
 * Sends a message (the composer's, or `content`) or regenerates a reply, and streams the answer into the page.
 * `parentId` places the turn in the tree (see the API's parent_message_id); `from` is the message element the turn
 * replaces on screen (an edited message, a regenerated reply), which goes with everything below it.
 */
async function generate({ content, regenerate = false, continueReply = false, continued = '', parentId, fork, from } = {}) {
  if (state.streaming) return;
  const generateOnly = regenerate || continueReply;
  const fromComposer = content === undefined && !generateOnly;
  const text = fromComposer ? els.prompt.value.trim() : content ?? '';
  if (!generateOnly && !text) return;
  showError('');

  const controller = new AbortController();
  setStreaming(controller);
  let reply = null;
  let sent = null;
  let finished = null;
  let finishReason = null;
  let usage = null;
  let produced = continued;
  let frame = 0;
  const parent = fromComposer ? tailId() : parentId;
  try {
    if (!state.current) {
      const created = await api('/api/conversations', {
        method: 'POST', body: { title: text.slice(0, 60), system_prompt: state.settings.systemPrompt || undefined },
      });
      showConversation(created);
      state.conversations.unshift(created);
      renderList();
    }
    if (from) {
      while (from.nextElementSibling) from.nextElementSibling.remove();
      from.remove();
    }
    if (!generateOnly) {
      els.empty.hidden = true;
      sent = newMessage('user');
      setContent(sent, text);
      els.messages.append(sent);
      if (fromComposer) {
        els.prompt.value = '';
        autosize();
      }
      scrollToEnd();
    }

    const settings = chatSettings();
    const body = regenerate ? { regenerate: true } : continueReply ? { continue: true } : { content: text };
    if (parent !== undefined) body.parent_message_id = parent;
    body.temperature = settings.temperature;
    if (settings.topP < 1) body.top_p = settings.topP;
    if (settings.maxTokens) body.max_tokens = settings.maxTokens;
    const response = await fetch(`/api/conversations/${encodeURIComponent(state.current)}/messages`, {
      method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      // Refused before anything was stored: take the message back into the composer to edit or resend.
      if (sent) {
        sent.remove();
        sent = null;
        if (!els.messages.querySelector('.message')) els.empty.hidden = false;
        els.prompt.value = text;
        autosize();
      }
      throw await errorOf(response);
    }

    reply = newMessage('assistant');
    if (produced) setContent(reply, produced);
    reply.classList.add('streaming');
    reply.setAttribute('aria-busy', 'true');
    els.messages.append(reply);
    scrollToEnd();
    const paint = () => {
      frame = 0;
      const follow = atEnd();
      setContent(reply, produced);
      if (follow) scrollToEnd();
    };
    await readEvents(response, (name, data) => {
      if (data === '[DONE]') return;
      const event = JSON.parse(data);
      if (name === 'delta') {
        produced += event.text;
        // One rendering per frame, however many pieces arrive in it.
        if (!frame) frame = requestAnimationFrame(paint);
      } else if (name === 'finished') {
        finished = event.assistant_message_id || null;
        finishReason = event.finish_reason;
      } else if (name === 'usage') {
        usage = event;
      } else if (name === 'error') {
        throw new ApiError(event.error.message, 0);
      }
    });
    cancelAnimationFrame(frame);
    paint();
    showUsage(reply, usage, finishReason);
    if (finishReason && finishReason !== 'stop') markStatus(reply, finishReason);
    els.announcer.textContent = reply.querySelector('.content').innerText;
  } catch (e) {
    cancelAnimationFrame(frame);
    if (reply) setContent(reply, produced);
    if (e.name === 'AbortError') {
      if (reply) markStatus(reply, 'cancelled');
    } else {
      if (reply) markStatus(reply, 'failed');
      showError(describe(e));
    }
  } finally {
    reply?.classList.remove('streaming');
    reply?.removeAttribute('aria-busy');
    if (state.streaming === controller) setStreaming(null);
    if (finished) {
      // Stored: show the conversation as the server has it, on the branch just written.
      try {
        await reloadConversation(fork ?? parent ?? '');
      } catch (e) {
        showError(describe(e));
      }
    } else if (reply || sent) {
      state.stale = true;
      if (reply) addReplyActions(reply, null);
    }
    loadConversations();
  }
}

function autosize() {
  els.prompt.style.height = 'auto';
  els.prompt.style.height = `${Math.min(els.prompt.scrollHeight, 200)}px`;
}

// ---------------------------------------------------------------------------------------- small screens

function openSidebar() {
  document.body.classList.add('sidebar-open');
  els.sidebarToggle.setAttribute('aria-expanded', 'true');
  els.scrim.hidden = false;
  els.search.focus();
}

function closeSidebar() {
  if (!document.body.classList.contains('sidebar-open')) return;
  document.body.classList.remove('sidebar-open');
  els.sidebarToggle.setAttribute('aria-expanded', 'false');
  els.scrim.hidden = true;
}

// ----------------------------------------------------------------------------------------------- wiring

els.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  generate();
});
els.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    generate();
  }
});
els.prompt.addEventListener('input', autosize);
els.stop.addEventListener('click', () => state.streaming?.abort());
els.newChat.addEventListener('click', newChat);
els.settingsButton.addEventListener('click', openSettings);
els.search.addEventListener('input', renderList);
els.sidebarToggle.addEventListener('click', () => (document.body.classList.contains('sidebar-open') ? closeSidebar() : openSidebar()));
els.scrim.addEventListener('click', closeSidebar);

// Esc stops a reply (or closes the conversation list); Ctrl+K (⌘K) starts a new chat.
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && !els.settings.open) {
    if (state.streaming) state.streaming.abort();
    else closeSidebar();
  } else if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === 'k') {
    e.preventDefault();
    newChat();
  }
});

function refresh() {
  loadModel();
  loadConversations();
}

refresh();
els.prompt.focus();
