// Assistant replies as Markdown (CommonMark + GitHub tables, task lists, strikethrough), rendered while they stream.
//
// Model output is untrusted. Three layers keep it inert: raw HTML in a reply is shown as text, not parsed; what
// marked produces is sanitised by DOMPurify (HTML profile only: no SVG or MathML, no style, no forms, no images,
// no link but http(s) and mailto); and the page's Content-Security-Policy forbids inline script and foreign origins.
//
// Streaming without flicker: a reply is split into top-level blocks (paragraphs, lists, tables, code…); each block
// keeps its DOM node while its source text is unchanged, so only the block being written is rendered again.

import { Marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.js';
import hljs from './vendor/highlight.min.js';

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const parser = new Marked({
  gfm: true,
  renderer: {
    // Raw HTML is text: a reply that writes <b> shows "<b>", as chat pages do.
    html: ({ text, block }) => (block ? `<p class="raw-html">${escapeHtml(text.trimEnd())}</p>` : escapeHtml(text)),
    // No image is fetched for a reply (it would tell a foreign server that the page was read): a link instead.
    image: ({ href, text }) => `<a href="${escapeHtml(href ?? '')}">${escapeHtml(text || href || 'image')}</a>`,
  },
});

const SANITIZE = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ['style', 'form', 'button', 'textarea', 'select', 'option', 'img', 'picture', 'video', 'audio', 'source',
    'iframe', 'frame', 'object', 'embed', 'link', 'meta', 'base', 'dialog', 'template'],
  FORBID_ATTR: ['style', 'id', 'name', 'srcset', 'formaction', 'action', 'background'],
};
const LINK = /^(?:https?:|mailto:)/i;

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    // Only absolute web and mail links: no page-relative URL, no other scheme.
    if (!LINK.test(node.getAttribute('href') ?? '')) node.removeAttribute('href');
    if (node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
  } else if (node.tagName === 'INPUT') {
    // Only the read-only check boxes of task lists.
    if (node.getAttribute('type') !== 'checkbox') node.remove();
    else node.setAttribute('disabled', '');
  }
});

const sanitize = (html) => DOMPurify.sanitize(html, SANITIZE);

/** The source text each block node was rendered from. */
const sources = new WeakMap();

/**
 * Renders `text` into `container`, reusing the nodes of blocks whose source has not changed since the last call.
 * Call it again with the longer text as a reply streams; the last call leaves the complete rendering.
 */
export function renderMarkdown(container, text) {
  const tokens = parser.lexer(text);
  const blocks = tokens.filter((t) => t.type !== 'space');
  let i = 0;
  for (; i < blocks.length; i++) {
    const token = blocks[i];
    const existing = container.children[i];
    if (existing && sources.get(existing) === token.raw) continue;
    const block = document.createElement('div');
    block.className = 'md-block';
    const list = [token];
    list.links = tokens.links; // reference-style links defined elsewhere in the reply
    block.innerHTML = sanitize(parser.parser(list));
    decorateCode(block);
    sources.set(block, token.raw);
    if (existing) existing.replaceWith(block);
    else container.append(block);
  }
  while (container.children.length > i) container.lastElementChild.remove();
}

/** Code blocks: highlighted, with the language shown and a copy button. */
function decorateCode(block) {
  for (const code of block.querySelectorAll('pre > code')) {
    const pre = code.parentElement;
    const source = code.textContent;
    const declared = [...code.classList].find((c) => c.startsWith('language-'))?.slice(9) ?? '';
    const language = hljs.getLanguage(declared) ? declared : '';
    if (language) {
      code.innerHTML = sanitize(hljs.highlight(source, { language, ignoreIllegals: true }).value);
      code.classList.add('hljs');
    }

    const head = document.createElement('div');
    head.className = 'code-head';
    const label = document.createElement('span');
    label.className = 'code-language';
    label.textContent = declared || 'text';
    const copy = document.createElement('button');
    copy.type = 'button';
    copy.className = 'copy-code';
    copy.textContent = 'Copy';
    copy.setAttribute('aria-label', `Copy ${declared || 'text'} code`);
    copy.addEventListener('click', () => copyText(source, copy));
    head.append(label, copy);

    const frame = document.createElement('div');
    frame.className = 'code-block';
    pre.replaceWith(frame);
    frame.append(head, pre);
  }
}

/** Puts `text` on the clipboard and says so on the button for a moment. */
export async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    button.textContent = 'Copy failed';
  }
  setTimeout(() => { button.textContent = label; }, 1500);
}
