// The ChatServices web chat: conversations on the left, the open one on the right, replies streamed over
// Server-Sent Events (fetch + ReadableStream, so a POST body and an AbortController work). No build step.

const $ = (id) => document.getElementById(id);
const els = {
  list: $('conversation-list'), newChat: $('new-chat'), title: $('chat-title'), model: $('model-name'),
  messages: $('messages'), empty: $('empty'), error: $('error'), composer: $('composer'), prompt: $('prompt'),
  send: $('send'), stop: $('stop'), settingsButton: $('settings-button'), settings: $('settings'),
  settingsForm: $('settings-form'), temperature: $('temperature'), temperatureValue: $('temperature-value'),
  maxTokens: $('max-tokens'), apiKey: $('api-key'),
};

const SETTINGS_KEY = 'chatservices.settings';
// Inline icons: no icon font or emoji font is assumed to be installed.
const svg = (d) => `<svg viewBox="0 0 24 24" width="15" height="15" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${d}</svg>`;
const ICONS = {
  pencil: svg('<path d="M12 20h9"/><path d="M16.5 3.5a2.1 2.1 0 0 1 3 3L7 19l-4 1 1-4Z"/>'),
  trash: svg('<path d="M3 6h18"/><path d="M8 6V4h8v2"/><path d="M19 6l-1 14H6L5 6"/><path d="M10 11v6M14 11v6"/>'),
};
const state = {
  conversations: [],
  current: null,          // the open conversation's id, or null for a new chat not yet created
  streaming: null,        // the AbortController of the reply being streamed
  settings: loadSettings(),
};

// ------------------------------------------------------------------------------------------------ settings

function loadSettings() {
  try {
    return { temperature: 0.7, maxTokens: null, apiKey: '', ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || '{}') };
  } catch {
    return { temperature: 0.7, maxTokens: null, apiKey: '' };
  }
}

function saveSettings() {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(state.settings));
}

function openSettings() {
  els.temperature.value = state.settings.temperature;
  els.temperatureValue.textContent = Number(state.settings.temperature).toFixed(2);
  els.maxTokens.value = state.settings.maxTokens ?? '';
  els.apiKey.value = state.settings.apiKey;
  els.settings.showModal();
}

els.temperature.addEventListener('input', () => {
  els.temperatureValue.textContent = Number(els.temperature.value).toFixed(2);
});

els.settings.addEventListener('close', () => {
  if (els.settings.returnValue !== 'save') return;
  const maxTokens = els.maxTokens.value.trim();
  state.settings = {
    temperature: Number(els.temperature.value),
    maxTokens: maxTokens === '' ? null : Number(maxTokens),
    apiKey: els.apiKey.value.trim(),
  };
  saveSettings();
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

function renderList() {
  els.list.replaceChildren(...state.conversations.map((c) => {
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

    const rename = document.createElement('button');
    rename.type = 'button';
    rename.className = 'icon rename';
    rename.innerHTML = ICONS.pencil;
    rename.setAttribute('aria-label', `Rename ${c.title}`);
    rename.addEventListener('click', () => startRename(li, c));

    const remove = document.createElement('button');
    remove.type = 'button';
    remove.className = 'icon delete';
    remove.innerHTML = ICONS.trash;
    remove.setAttribute('aria-label', `Delete ${c.title}`);
    remove.addEventListener('click', () => deleteConversation(c));

    li.append(open, rename, remove);
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
    if (conversation.id === state.current) newChat();
    await loadConversations();
  } catch (e) {
    showError(describe(e));
  }
}

function addMessage(role, content, status) {
  els.empty.hidden = true;
  const div = document.createElement('div');
  div.className = `message ${role}`;
  const label = document.createElement('div');
  label.className = 'role';
  label.textContent = role === 'assistant' ? 'Assistant' : role === 'user' ? 'You' : 'System';
  const body = document.createElement('div');
  body.className = 'content';
  body.textContent = content;
  div.append(label, body);
  if (status && status !== 'complete') markStatus(div, status);
  els.messages.append(div);
  scrollToEnd();
  return div;
}

function markStatus(div, status) {
  div.dataset.status = status;
  let note = div.querySelector('.status');
  if (!note) {
    note = document.createElement('div');
    note.className = 'status';
    div.append(note);
  }
  note.textContent = status === 'cancelled' ? 'Stopped' : status === 'failed' || status === 'error' ? failedNote(div) : status === 'length' ? 'Cut off at the token limit' : status;
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

/** One regenerate button, under the last assistant message, when nothing is streaming. */
function updateRegenerate() {
  for (const b of els.messages.querySelectorAll('.regenerate')) b.remove();
  const last = els.messages.lastElementChild;
  if (state.streaming || !state.current || !last?.classList.contains('assistant')) return;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button ghost regenerate';
  button.textContent = '↻ Regenerate';
  button.addEventListener('click', () => generate({ regenerate: true }));
  last.append(button);
}

function setStreaming(controller) {
  state.streaming = controller;
  els.send.hidden = !!controller;
  els.stop.hidden = !controller;
  els.prompt.disabled = false;
  updateRegenerate();
}

// ------------------------------------------------------------------------------------------------ actions

async function loadConversations() {
  try {
    const page = await api('/api/conversations?page_size=100');
    state.conversations = page.conversations;
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

function clearMessages() {
  for (const m of [...els.messages.querySelectorAll('.message')]) m.remove();
  els.empty.hidden = false;
}

function newChat() {
  state.streaming?.abort();
  state.current = null;
  els.title.textContent = 'New chat';
  clearMessages();
  showError('');
  renderList();
  els.prompt.focus();
}

async function openConversation(id) {
  state.streaming?.abort();
  showError('');
  try {
    const conversation = await api(`/api/conversations/${encodeURIComponent(id)}`);
    state.current = conversation.id;
    els.title.textContent = conversation.title;
    clearMessages();
    for (const m of conversation.messages) {
      if (m.role !== 'system') addMessage(m.role, m.content, m.status);
    }
    renderList();
    updateRegenerate();
  } catch (e) {
    showError(describe(e));
  }
}

/** Sends the composer's text (or regenerates the last reply) and streams the answer into the page. */
async function generate({ regenerate = false } = {}) {
  if (state.streaming) return;
  const text = els.prompt.value.trim();
  if (!regenerate && !text) return;
  showError('');

  const controller = new AbortController();
  setStreaming(controller);
  let reply = null;
  let sent = null;
  try {
    if (!state.current) {
      const created = await api('/api/conversations', { method: 'POST', body: { title: text.slice(0, 60) } });
      state.current = created.id;
      els.title.textContent = created.title;
      state.conversations.unshift(created);
      renderList();
    }
    if (regenerate) {
      const last = els.messages.lastElementChild;
      if (last?.classList.contains('assistant')) last.remove();
    } else {
      sent = addMessage('user', text);
      els.prompt.value = '';
      autosize();
    }

    const body = regenerate ? { regenerate: true } : { content: text };
    body.temperature = state.settings.temperature;
    if (state.settings.maxTokens) body.max_tokens = state.settings.maxTokens;
    const response = await fetch(`/api/conversations/${encodeURIComponent(state.current)}/messages`, {
      method: 'POST', headers: headers(), body: JSON.stringify(body), signal: controller.signal,
    });
    if (!response.ok) {
      // Refused before anything was stored: take the message back into the composer to edit or resend.
      if (sent) {
        sent.remove();
        if (!els.messages.querySelector('.message')) els.empty.hidden = false;
        els.prompt.value = text;
        autosize();
      }
      throw await errorOf(response);
    }

    reply = addMessage('assistant', '');
    reply.classList.add('streaming');
    const content = reply.querySelector('.content');
    await readEvents(response, (name, data) => {
      if (data === '[DONE]') return;
      const event = JSON.parse(data);
      if (name === 'delta') {
        content.textContent += event.text;
        scrollToEnd();
      } else if (name === 'finished' && event.finish_reason !== 'stop') {
        markStatus(reply, event.finish_reason);
      } else if (name === 'error') {
        throw new ApiError(event.error.message, 0);
      }
    });
  } catch (e) {
    if (e.name === 'AbortError') {
      if (reply) markStatus(reply, 'cancelled');
    } else {
      if (reply) markStatus(reply, 'failed');
      showError(describe(e));
    }
  } finally {
    reply?.classList.remove('streaming');
    if (state.streaming === controller) setStreaming(null);
    loadConversations();
  }
}

function autosize() {
  els.prompt.style.height = 'auto';
  els.prompt.style.height = `${Math.min(els.prompt.scrollHeight, 200)}px`;
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

function refresh() {
  loadModel();
  loadConversations();
}

refresh();
els.prompt.focus();
