// Omnigate operator console: one dependency-free module, embedded in the gateway binary and
// served under a strict CSP. Every node is built with the DOM API, never innerHTML: reasons,
// headers and bodies shown here come from attacker-controlled webhook deliveries.

const TOKEN_KEY = 'omnigate.adminToken';
const APP_TITLE = 'Omnigate console';
const PAGE = 50;
const FOLLOW_MS = 2000;
// An unsigned provider's webhook URL ends in a secret the API shows only when it is set; until
// then the path ends in this placeholder.
const URL_SECRET = '{url_secret}';
// Following a busy shop must not grow the page without bound.
const MAX_EVENTS_SHOWN = 500;

const $ = (sel, root = document) => root.querySelector(sel);
const enc = encodeURIComponent;

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** el('a', {href, class, onclick}, ...children): strings become text nodes, null/false vanish. */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else if (k === 'value' || k === 'checked') node[k] = v; // properties, not default values
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  add(node, children);
  return node;
}

function add(node, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === '') continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

const code = (text) => el('code', null, text);
const muted = (text) => el('span', { class: 'muted' }, text);
const dash = () => muted('—');
const td = (...children) => el('td', null, ...children);
const button = (text, attrs) => el('button', { type: 'button', ...attrs }, text);
const srOnly = (text) => el('span', { class: 'sr-only' }, text);
const req = () => el('span', { class: 'req' }, ' (required)');
/** A labelled form field: label (text or nodes), the control, and an optional hint below. */
const field = (id, label, input, hint) => el('div', { class: 'field' }, el('label', { for: id }, label), input, hint);

/** A definition list from [term, value] pairs; pairs with a null value are left out. */
function dl(pairs, cls = 'props') {
  return el('dl', { class: cls }, pairs.filter((p) => p && p[1] != null)
    .map(([t, d]) => el('div', null, el('dt', null, t), el('dd', null, d))));
}

/** A table in a scrolling wrapper, so a wide table never widens the page on a phone. */
function table(id, caption, headers, tbody) {
  const capId = id + '-caption';
  return el('div', { class: 'table-wrap', role: 'region', tabindex: '0', 'aria-labelledby': capId },
    el('table', { id },
      el('caption', { id: capId, class: 'sr-only' }, caption),
      el('thead', null, el('tr', null, headers.map((h) => el('th', { scope: 'col' }, h)))),
      tbody));
}

const emptyRow = (cols, text) => el('tr', { class: 'empty' }, el('td', { colspan: cols }, text));
const list = (items, fn = code) => (items && items.length
  ? el('ul', { class: 'inline-list' }, items.map((i) => el('li', null, fn(i)))) : dash());

/** Times stay exactly as the API wrote them (RFC 3339 UTC), with a short relative hint. */
function time(ts) {
  if (!ts) return dash();
  const r = relative(ts);
  return el('span', { class: 'ts' }, el('time', { datetime: ts }, ts), r && el('span', { class: 'rel' }, ` (${r})`));
}

function relative(ts) {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '';
  let s = Math.round((Date.now() - t) / 1000);
  const future = s < 0;
  s = Math.abs(s);
  const [n, unit] = s < 60 ? [s, 's'] : s < 3600 ? [Math.floor(s / 60), 'min']
    : s < 86400 ? [Math.floor(s / 3600), 'h'] : [Math.floor(s / 86400), 'd'];
  if (s < 5) return 'just now';
  return future ? `in ${n} ${unit}` : `${n} ${unit} ago`;
}

const fmtInt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '—');
const fmtBytes = (n) => (typeof n !== 'number' ? '—' : n < 1024 ? `${n} B`
  : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);

/** datetime-local has no zone; the console means UTC, so "2025-03-14T09:00" → "…T09:00:00Z". */
function localToUtc(value) {
  if (!value) return undefined;
  return (value.length === 16 ? `${value}:00` : value) + 'Z';
}

function copyButton(getText) {
  const b = button('Copy', { class: 'secondary small' });
  b.addEventListener('click', () => {
    // Clipboard access can be refused (permissions, insecure origin): the text stays selectable.
    navigator.clipboard?.writeText(getText()).then(() => { b.textContent = 'Copied'; }, () => {});
  });
  return b;
}

function badge(text, tone) {
  return el('span', { class: `badge ${tone || ''}` }, text);
}

// ---------------------------------------------------------------------------------------------
// Token, API and error reporting

const token = {
  get() { try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; } },
  set(v) { sessionStorage.setItem(TOKEN_KEY, v); },
  clear() { try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage disabled */ } },
};

class ApiError extends Error {
  constructor(problem, status, auth = false) {
    super(problem.title);
    this.problem = problem;
    this.status = status;
    this.auth = auth; // a 401: already handled by showing the login form
  }
}

/**
 * Calls the gateway's admin API with the bearer token. Resolves with the JSON answer (null for
 * 204); rejects with an ApiError holding an RFC 9457 problem, also for network failures.
 */
async function api(path, { method = 'GET', query, body } = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v != null && v !== '') params.set(k, v);
  const qs = params.toString();
  const headers = { Accept: 'application/json, application/problem+json' };
  const t = token.get();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(qs ? `${path}?${qs}` : path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store', credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError({ title: 'Network error', detail: `The gateway could not be reached (${e.message}).` }, 0);
  }
  if (res.status === 401) {
    onUnauthorized();
    throw new ApiError({ title: 'Token refused', status: 401 }, 401, true);
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: reported below */ }
  if (!res.ok) {
    const problem = data && typeof data === 'object' && data.title ? data
      : { title: `HTTP ${res.status} ${res.statusText}`.trim(), status: res.status, detail: text.slice(0, 300) || null };
    throw new ApiError(problem, res.status);
  }
  if (data === null && text) throw new ApiError({ title: 'Unexpected answer', detail: 'The gateway did not answer with JSON.' }, res.status);
  return data; // null for an empty 2xx answer
}

/** The nodes showing a problem: title (and status), detail, and the `errors` list if any. */
function problemNodes(p) {
  return [
    el('p', { class: 'problem-title' }, el('strong', null, String(p.title || 'Error')), p.status ? ` (HTTP ${p.status})` : ''),
    p.detail != null && el('p', null, String(p.detail)),
    Array.isArray(p.errors) && p.errors.length > 0 && el('ul', null,
      p.errors.map((e) => el('li', null, typeof e === 'string' ? e : JSON.stringify(e)))),
  ];
}

function showError(problem) {
  const box = $('#error');
  box.replaceChildren(...problemNodes(problem).filter(Boolean),
    button('Dismiss', { class: 'link', onclick: clearError }));
  box.hidden = false;
}

function clearError() {
  const box = $('#error');
  box.hidden = true;
  box.replaceChildren();
}

/** The one catch-all for page actions: a 401 is already on the login form, the rest go to #error. */
function report(err) {
  if (err instanceof ApiError) { if (!err.auth) showError(err.problem); return; }
  console.error(err);
  showError({ title: 'Unexpected error', detail: String(err && err.message ? err.message : err) });
}

/** Shows a failed action's problem in its own result region (a 401 is on the login form already). */
function failIn(region, e) {
  if (!(e instanceof ApiError)) report(e);
  else if (!e.auth) setStatus(region, problemNodes(e.problem), 'error');
}

/** Puts a result (or a problem, without the global banner) into a page's status region. */
function setStatus(region, nodes, tone) {
  region.classList.toggle('error', tone === 'error');
  region.replaceChildren();
  add(region, [nodes]);
  region.hidden = false;
}

function statusRegion(id) {
  return el('div', { id, class: 'status', role: 'status', hidden: true });
}

function confirmDialog(text, yesLabel) {
  const d = $('#confirm');
  $('#confirm-text').textContent = text;
  $('#confirm-yes').textContent = yesLabel;
  d.returnValue = '';
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'yes'), { once: true });
    d.showModal();
  });
}

/** Lets a form's submit run an async action once at a time, with its buttons disabled meanwhile. */
function busy(form, fn) {
  return async (event) => {
    event?.preventDefault();
    const buttons = [...form.querySelectorAll('button')];
    buttons.forEach((b) => { b.disabled = true; });
    try { await fn(); } catch (e) { report(e); } finally { buttons.forEach((b) => { b.disabled = false; }); }
  };
}

// ---------------------------------------------------------------------------------------------
// Login and routing

const pages = {
  sources: { title: 'Sources', render: renderSources },
  events: { title: 'Events', render: renderEvents },
  quarantine: { title: 'Quarantine', render: renderQuarantine },
  plugins: { title: 'Plugins', render: renderPlugins },
  health: { title: 'Health', render: renderHealth },
};
let current = null; // { name, ctl: { open?(arg), cleanup?() } }

function setTitle(...parts) {
  document.title = [...parts, APP_TITLE].join(' · ');
}

function leavePage() {
  current?.ctl?.cleanup?.();
  current = null;
  $('#view').replaceChildren(); // drop what was shown: nothing of it should outlive the session
}

function showLogin(message) {
  leavePage();
  clearError();
  $('#nav').hidden = true;
  $('#logout').hidden = true;
  $('#view').hidden = true;
  $('#login-view').hidden = false;
  $('#login-error').textContent = message || '';
  setTitle('Sign in');
  $('#token').focus();
}

function onUnauthorized() {
  // Several calls can be refused at once: only the first one (the token still set) says so.
  if (!token.get()) return;
  token.clear();
  showLogin(current ? 'Token refused: the session ended, sign in again.' : 'Token refused');
}

async function login(event) {
  event.preventDefault();
  const input = $('#token');
  const value = input.value.trim();
  if (!value) return;
  $('#login-error').textContent = '';
  token.set(value);
  input.value = '';
  try {
    await api('/v1/status');
  } catch (e) {
    if (e instanceof ApiError && e.auth) {
      $('#login-error').textContent = 'Token refused'; // onUnauthorized cleared the token
      return;
    }
    // Anything else (store down, network) is not the token's fault: go in and show it.
    route(true);
    report(e);
    return;
  }
  route(true);
}

function logout() {
  token.clear();
  showLogin('');
}

/** Hash routes: #/page or #/page/<arg> (a detail, e.g. #/quarantine/<id>). */
function route(fromNavigation = false) {
  if (!token.get()) { showLogin($('#login-error').textContent); return; }
  const m = /^#\/([a-z]+)(?:\/(.*))?$/.exec(location.hash);
  if (!m || !pages[m[1]]) {
    history.replaceState(null, '', '#/sources');
    route(fromNavigation);
    return;
  }
  const [, name, rawArg] = m;
  let arg = null;
  try { arg = rawArg ? decodeURIComponent(rawArg) : null; } catch { arg = rawArg; }
  $('#login-view').hidden = true;
  $('#nav').hidden = false;
  $('#logout').hidden = false;
  $('#view').hidden = false;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  setTitle(pages[name].title);
  if (current && current.name === name && current.ctl.open) {
    current.ctl.open(arg); // same page, another detail: keep the loaded list
    return;
  }
  leavePage();
  clearError();
  current = { name, ctl: pages[name].render($('#view'), arg) || {} };
  // Move focus to the new page's heading so keyboard and screen-reader users land on it (unless
  // the page already moved it, to a detail opened by a deep link).
  if (fromNavigation && !$('#view').contains(document.activeElement)) $('#view h1')?.focus();
}

function pageHeader(title, ...tools) {
  return el('div', { class: 'page-head' }, el('h1', { tabindex: '-1' }, title),
    tools.length > 0 && el('div', { class: 'tools' }, tools));
}

/**
 * Fills a table page by page from a `{<key>: [...], next, done}` list: load(true) starts over,
 * the returned `more` button (shown while !done) appends the next page.
 */
function pager({ id, label = 'Load more', tbody, fetchPage, key, row, cols, empty }) {
  const more = button(label, { id, class: 'secondary more', hidden: true });
  let next = null;
  async function load(reset) {
    more.disabled = true;
    try {
      const page = await fetchPage(reset ? null : next);
      if (reset) tbody.replaceChildren();
      tbody.querySelector('tr.empty')?.remove();
      for (const item of page[key] || []) tbody.append(row(item));
      if (!tbody.children.length) tbody.append(emptyRow(cols, empty));
      next = page.next;
      more.hidden = !!page.done;
    } finally { more.disabled = false; }
  }
  more.addEventListener('click', () => load(false).catch(report));
  return { more, load };
}

// ---------------------------------------------------------------------------------------------
// Sources

let providersPromise = null;
let eventTypesPromise = null;

function providers() {
  // Cached for the session; a failure is not cached, so opening the form again retries.
  if (!providersPromise) providersPromise = api('/v1/providers').then((r) => r.providers || [])
    .catch((e) => { providersPromise = null; throw e; });
  return providersPromise;
}

function eventTypes() {
  if (!eventTypesPromise) eventTypesPromise = api('/v1/event-types').then((r) => (r.event_types || []).map((t) => t.type))
    .catch((e) => { eventTypesPromise = null; throw e; });
  return eventTypesPromise;
}

/** The gateway's public URL for the path when it is configured (OMNIGATE_PUBLIC_URL, as the API
 * says in `webhook_url`), else this console's own origin. */
const webhookUrl = (path, src) => (src && src.webhook_url) || location.origin + path;

function renderSources(view) {
  const tbody = el('tbody');
  const { more, load } = pager({
    id: 'sources-more', tbody, key: 'sources', row: sourceRow, cols: 8, empty: 'No sources yet: add one with “New source”.',
    fetchPage: (after) => api('/v1/sources', { query: { limit: PAGE, after } }),
  });
  const created = statusRegion('source-created');
  created.tabIndex = -1; // focused after creation, so the Copy button is one Tab away
  const rotateResult = statusRegion('rotate-result');
  const form = sourceForm(onCreated);
  const rotate = rotateForm(onRotated);

  view.append(
    pageHeader('Sources', button('New source', { id: 'new-source', onclick: () => form.open() })),
    created, form.node, rotate.node, rotateResult,
    table('sources-table', 'Sources', ['Source', 'Tenant', 'Provider / mode', 'Webhook URL', 'Secrets',
      'Deliveries (last hour)', 'Last delivery', 'Actions'], tbody),
    more);

  tbody.addEventListener('click', (e) => {
    const b = e.target.closest('.rotate-secret');
    if (b) rotate.open(b.closest('tr').dataset.sourceId, b);
  });

  async function onCreated(src) {
    const url = webhookUrl(src.webhook_path, src);
    const poll = src.mode === 'poll';
    const info = (await providers().catch(() => [])).find((p) => p.provider === src.provider);
    setStatus(created, [
      el('p', null, 'Source ', code(src.id), ` created for tenant ${src.tenant}.`),
      el('p', { class: 'url-line' }, el('span', null, poll ? 'Webhook URL (unused: the gateway polls this source): ' : 'Webhook URL: '),
        el('code', { id: 'webhook-url' }, url), ' ', copyButton(() => url)),
      el('p', { class: 'hint' }, info && info.url_secret
        ? 'This URL contains the source’s URL secret and is shown only now: copy it into the provider before leaving this page.'
        : poll ? 'Nothing needs to be set up on the provider’s side.'
          : 'Set this URL in the provider’s webhook settings, with the same secret.'),
    ]);
    created.focus();
    load(true).catch(report);
  }

  function onRotated(src, oldPath) {
    const row = tbody.querySelector(`tr[data-source-id="${CSS.escape(src.id)}"]`);
    if (row) row.replaceWith(sourceRow(src));
    const previous = (src.secrets || []).find((s) => s.expires_at);
    const nodes = [el('p', null, 'New secret of ', code(src.id), ' is current.',
      previous ? [' The previous one keeps verifying until ', time(previous.expires_at), '.'] : '')];
    // An unsigned source's URL secret changed with it: the new URL is shown only in this answer.
    if (oldPath && oldPath.includes(URL_SECRET) && !src.webhook_path.includes(URL_SECRET)) {
      const url = webhookUrl(src.webhook_path, src);
      nodes.push(el('p', { class: 'url-line' }, 'New webhook URL (shown only now): ', code(url), ' ', copyButton(() => url)));
    }
    setStatus(rotateResult, nodes);
  }

  rotate.getPath = (id) => tbody.querySelector(`tr[data-source-id="${CSS.escape(id)}"]`)?.dataset.path;
  load(true).catch(report);
  providers().catch(() => {}); // warm the cache; errors show when the form is opened
  return {};
}

function sourceRow(s) {
  const push = s.mode !== 'poll';
  const path = s.webhook_path || '';
  let urlCell;
  if (!push) urlCell = muted('polled: no webhooks');
  else if (path.includes(URL_SECRET)) {
    urlCell = [code(webhookUrl(path, s)),
      el('p', { class: 'hint' }, 'The real URL, with its secret, was shown only when the secret was set.')];
  } else urlCell = code(webhookUrl(path, s));
  return el('tr', { 'data-source-id': s.id, 'data-path': path },
    td(s.name && el('div', null, s.name), code(s.id)),
    td(s.tenant),
    td(s.provider, el('div', { class: 'muted' }, s.mode || 'push')),
    el('td', { class: 'wrap' }, urlCell),
    td(secretsCell(s.secrets)),
    td(deliveriesCell(s.deliveries)),
    td(time(s.deliveries && s.deliveries.last_delivery_at)),
    td(push && button('Rotate secret', { class: 'rotate-secret secondary small' })));
}

function secretsCell(secrets) {
  if (!secrets || !secrets.length) return dash();
  return el('ul', { class: 'plain' }, secrets.map((x) => el('li', null,
    x.expires_at ? badge('previous') : badge('current', 'ok'), ' created ', time(x.created_at),
    x.expires_at && [', expires ', time(x.expires_at)])));
}

// Outcomes that mean a delivery was taken; a quarantined one was taken but needs a fix; the
// rest (bad signature, stale, too large, …) were refused and need a look.
const GOOD_OUTCOMES = new Set(['accepted', 'duplicate', 'spooled', 'handshake']);
const outcomeTone = (o) => (GOOD_OUTCOMES.has(o) ? 'ok' : o === 'quarantined' ? 'warn' : 'bad');

function deliveriesCell(d) {
  if (!d) return dash();
  const entries = Object.entries(d.outcomes || {}).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
  const span = d.window_minutes && d.window_minutes !== 60 ? el('div', { class: 'hint' }, `last ${d.window_minutes} min`) : null;
  if (!entries.length) return [muted('none'), span];
  return [el('ul', { class: 'plain outcomes' }, entries.map(([o, n]) => el('li', null,
    badge(fmtInt(n), outcomeTone(o)), ' ', o.replace(/_/g, ' ')))), span];
}

/** The "New source" form: provider first, then that provider's own fields. */
function sourceForm(onCreated) {
  const select = el('select', { id: 'provider', name: 'provider', required: true, 'aria-describedby': 'provider-verification' });
  const verification = el('div', { id: 'provider-verification', class: 'hint' });
  const fieldsBox = el('fieldset', { class: 'provider-fields' });
  let known = []; // the providers offered, from GET /v1/providers
  let chosen = null;

  const node = el('form', { id: 'source-form', class: 'panel', hidden: true, 'aria-labelledby': 'source-form-title' },
    el('h2', { id: 'source-form-title', tabindex: '-1' }, 'New source'),
    el('div', { class: 'grid' },
      field('provider', 'Provider', select, verification),
      field('tenant', ['Tenant', req()], tenantInput('tenant', { 'aria-describedby': 'tenant-hint' }),
        el('p', { id: 'tenant-hint', class: 'hint' }, 'The shop whose log receives the events: letters, digits, “.”, “_”, “-”.')),
      field('source-name', 'Name (optional)', el('input', { id: 'source-name', name: 'name', autocomplete: 'off' }))),
    fieldsBox,
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Create source'),
      button('Cancel', { class: 'secondary', onclick: () => { node.hidden = true; $('#new-source')?.focus(); } })));

  select.addEventListener('change', () => showFields());
  node.addEventListener('submit', busy(node, submit));

  function showFields() {
    chosen = known.find((p) => p.provider === select.value) || null;
    fieldsBox.replaceChildren();
    verification.replaceChildren();
    if (!chosen) return;
    add(verification, [
      el('p', null, el('strong', null, 'Verification: '), chosen.verification || '—'),
      chosen.mode === 'poll' && el('p', null, 'The gateway polls this provider’s API: it sends no webhooks.'),
      chosen.topics && chosen.topics.length > 0 && el('details', null,
        el('summary', null, `Topics it maps (${chosen.topics.length})`), list(chosen.topics)),
    ]);
    add(fieldsBox, [el('legend', null, `${chosen.title || chosen.provider} settings`),
      (chosen.fields || []).length ? chosen.fields.map(fieldInput) : el('p', { class: 'hint' }, 'This provider needs nothing more.')]);
  }

  async function open() {
    node.hidden = false;
    $('#source-form-title').focus();
    if (select.options.length) return;
    const offered = await providers().catch((e) => { report(e); return null; });
    if (!offered || select.options.length) return;
    known = offered;
    select.replaceChildren(...known.map((p) => el('option', { value: p.provider },
      `${p.title || p.provider} (${p.provider}${p.mode === 'poll' ? ', polled' : ''})`)));
    showFields();
  }

  async function submit() {
    clearError();
    if (!chosen) throw new ApiError({ title: 'Choose a provider', detail: 'The provider list has not loaded yet.' }, 0);
    const body = { tenant: $('#tenant').value.trim(), provider: chosen.provider };
    const name = $('#source-name').value.trim();
    if (name) body.name = name;
    for (const f of chosen.fields || []) {
      const input = document.getElementById(fieldId(f.name));
      const value = readField(f, input);
      if (value !== undefined) setPath(body, f.name, value);
    }
    const src = await api('/v1/sources', { method: 'POST', body });
    node.reset();
    node.hidden = true;
    showFields();
    onCreated(src);
  }

  return { node, open };
}

/** Tenants are 1–128 of A-Z a-z 0-9 . _ - (escaped for the `v`-flag regex of `pattern`). */
const tenantInput = (id, attrs) => el('input', {
  id, name: 'tenant', required: true, pattern: '[A-Za-z0-9._\\-]{1,128}', maxlength: 128, autocomplete: 'off', spellcheck: 'false', ...attrs,
});

const fieldId = (name) => 'field-' + name.replace(/\./g, '-');

function fieldInput(f) {
  const id = fieldId(f.name);
  const hintId = `${id}-hint`;
  const hint = (f.description || f.example) && el('p', { id: hintId, class: 'hint' }, f.description,
    f.example != null && [f.description ? ' Example: ' : 'Example: ', code(String(f.example))]);
  const common = { id, name: f.name, 'aria-describedby': hint ? hintId : null, autocomplete: 'off', spellcheck: 'false' };
  const label = [code(f.name), f.required && req()];
  if (f.kind === 'boolean') {
    return el('div', { class: 'field check' }, el('input', { ...common, type: 'checkbox' }), el('label', { for: id }, label), hint);
  }
  const input = f.kind === 'json'
    ? el('textarea', { ...common, rows: 4, required: f.required, class: 'mono' })
    : el('input', {
      ...common, required: f.required,
      type: { secret: 'password', url: 'url', integer: 'number' }[f.kind] || 'text',
      step: f.kind === 'integer' ? 1 : null,
      inputmode: f.kind === 'integer' ? 'numeric' : null,
    });
  return field(id, label, input, hint);
}

/** A field's value for the request body, or undefined to leave an empty optional field out. */
function readField(f, input) {
  if (!input) return undefined;
  if (f.kind === 'boolean') return input.checked ? true : f.required ? false : undefined;
  const raw = input.value.trim();
  if (raw === '') return undefined; // required ones were stopped by the browser's validation
  const fail = (detail) => {
    input.focus();
    throw new ApiError({ title: `Check the field “${f.name}”`, detail }, 0);
  };
  if (f.kind === 'integer') {
    const n = Number(raw);
    if (!Number.isInteger(n)) fail('It must be a whole number.');
    return n;
  }
  if (f.kind === 'json') {
    try { return JSON.parse(raw); } catch (e) { return fail(`It is not valid JSON: ${e.message}`); }
  }
  return raw;
}

/** setPath(o, 'options.api.store_hash', v) → o.options.api.store_hash = v. */
function setPath(obj, dotted, value) {
  const parts = dotted.split('.');
  if (parts.some((p) => p === '__proto__' || p === 'constructor' || p === 'prototype')) return;
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] && typeof o[p] === 'object') ? o[p] : (o[p] = {});
  o[parts[parts.length - 1]] = value;
}

function rotateForm(onRotated) {
  let sourceId = null;
  let opener = null;
  const label = el('span');
  const node = el('form', { id: 'rotate-form', class: 'panel', hidden: true, 'aria-labelledby': 'rotate-title' },
    el('h2', { id: 'rotate-title', tabindex: '-1' }, 'Rotate secret of ', label),
    el('p', { class: 'hint' }, 'The new secret is current at once; the previous one keeps verifying until the time below ',
      '(24 hours by default), so the provider can be switched without losing deliveries.'),
    el('div', { class: 'grid' },
      field('rotate-secret', ['New secret', req()],
        el('input', { id: 'rotate-secret', name: 'secret', type: 'password', required: true, autocomplete: 'new-password', spellcheck: 'false' })),
      field('rotate-expires', 'Previous secret valid until (UTC, optional)',
        el('input', { id: 'rotate-expires', name: 'expires_at', type: 'datetime-local', step: 1 }))),
    el('div', { class: 'actions' }, el('button', { type: 'submit' }, 'Rotate'),
      button('Cancel', { class: 'secondary', onclick: close })));

  node.addEventListener('submit', busy(node, async () => {
    clearError();
    const body = { secret: $('#rotate-secret').value };
    const expires = localToUtc($('#rotate-expires').value);
    if (expires) body.expires_at = expires;
    const oldPath = ctl.getPath?.(sourceId);
    const src = await api(`/v1/sources/${enc(sourceId)}`, { method: 'PATCH', body });
    close();
    onRotated(src, oldPath);
  }));

  function open(id, from) {
    sourceId = id;
    opener = from;
    label.replaceChildren(code(id));
    node.reset();
    node.hidden = false;
    $('#rotate-secret').focus();
  }

  function close() {
    node.reset();
    node.hidden = true;
    opener?.isConnected && opener.focus();
  }

  const ctl = { node, open, getPath: null };
  return ctl;
}

// ---------------------------------------------------------------------------------------------
// Events

const memo = { eventsTenant: '', quarantineTenant: '' }; // filters kept across page switches

function renderEvents(view, arg) {
  const tenant = tenantInput('events-tenant', { value: arg || memo.eventsTenant });
  const type = el('select', { id: 'events-type', name: 'type' }, el('option', { value: '' }, 'All types'));
  const since = el('input', { id: 'events-since', name: 'since', type: 'datetime-local', step: 1 });
  const until = el('input', { id: 'events-until', name: 'until', type: 'datetime-local', step: 1 });
  const follow = el('input', { id: 'events-follow', type: 'checkbox' });
  const listEl = el('ol', { id: 'events-list', class: 'events' });
  const status = el('p', { id: 'events-status', class: 'status', role: 'status' });
  const more = button('Older', { id: 'events-more', class: 'secondary more', hidden: true, onclick: () => older().catch(report) });
  const form = el('form', { id: 'events-filter', class: 'panel filters' },
    el('div', { class: 'grid' },
      field('events-tenant', ['Tenant', req()], tenant),
      field('events-type', 'Type', type),
      field('events-since', 'Since (UTC)', since),
      field('events-until', 'Until (UTC)', until)),
    el('div', { class: 'actions' }, el('button', { id: 'events-load', type: 'submit' }, 'Load'),
      el('span', { class: 'check' }, follow, el('label', { for: 'events-follow' }, 'Follow new events'))));

  view.append(pageHeader('Events'), form, status, listEl, more);

  let query = null; // the filters of the list shown: "Older" and following keep to them
  let before = null;
  let cursor = null;
  let loaded = false;
  const shown = new Set();
  let followGen = 0;
  let timer = null;

  eventTypes().then((types) => {
    const keep = type.value;
    add(type, types.map((t) => el('option', { value: t }, t)));
    type.value = keep;
  }).catch(report);

  form.addEventListener('submit', busy(form, load));
  follow.addEventListener('change', () => {
    if (!follow.checked) { stopFollow(); setStatus(status, 'Stopped following.'); return; }
    if (loaded) startFollow();
    else form.requestSubmit(); // following starts from the first page's tail
  });

  async function load() {
    clearError();
    stopFollow();
    const q = { tenant: tenant.value.trim(), type: type.value, range: { since: localToUtc(since.value), until: localToUtc(until.value) } };
    memo.eventsTenant = q.tenant;
    const page = await api(eventsPath(q), { query: { order: 'newest_first', limit: PAGE, type: q.type, ...q.range } });
    query = q; // only now: a refused filter leaves the list shown (and what follows it) alone
    listEl.replaceChildren();
    shown.clear();
    loaded = true;
    cursor = page.tail ?? null; // absent tail: follow from the start of the log
    append(page, false);
    setStatus(status, page.events.length ? `${shown.size} events shown, newest first.` : 'No events match these filters.');
    if (follow.checked) startFollow();
  }

  async function older() {
    more.disabled = true;
    try {
      const page = await api(eventsPath(), { query: { order: 'newest_first', limit: PAGE, type: query.type, ...query.range, before } });
      append(page, false);
      setStatus(status, `${shown.size} events shown.`);
    } finally { more.disabled = false; }
  }

  function eventsPath(q = query) { return `/v1/tenants/${enc(q.tenant)}/events`; }

  function append(page, onTop) {
    for (const ev of page.events || []) {
      if (shown.has(ev.id)) continue;
      shown.add(ev.id);
      if (onTop) listEl.prepend(eventItem(ev)); else listEl.append(eventItem(ev));
    }
    if (!onTop) { before = page.next; more.hidden = !!page.done; }
  }

  /** Keeps the newest MAX_EVENTS_SHOWN: older ones leave the page (load again to page back). */
  function trim() {
    if (listEl.children.length <= MAX_EVENTS_SHOWN) return;
    while (listEl.children.length > MAX_EVENTS_SHOWN) {
      shown.delete(listEl.lastElementChild.dataset.eventId);
      listEl.lastElementChild.remove();
    }
    more.hidden = true;
    setStatus(status, `Showing the newest ${MAX_EVENTS_SHOWN} events; press Load to page back from the newest.`);
  }

  function startFollow() {
    stopFollow();
    if (query.range.until) {
      // Events written from now on are all after "Until": there is nothing to follow.
      follow.checked = false;
      setStatus(status, 'Following shows new events: clear “Until” to follow.');
      return;
    }
    const gen = ++followGen;
    setStatus(status, `Following new events of ${query.tenant}…`);
    timer = setTimeout(() => tick(gen), FOLLOW_MS);
  }

  function stopFollow() {
    followGen++;
    clearTimeout(timer);
    timer = null;
  }

  // One poll: oldest first from the cursor; a page that is not done is read on at once (at most
  // a few pages a tick), so a burst is caught up without waiting a tick per 100 events.
  async function tick(gen) {
    try {
      let fresh = 0;
      for (let i = 0; i < 5; i++) {
        const page = await api(eventsPath(), { query: { after: cursor, limit: 100, type: query.type, since: query.range.since } });
        if (gen !== followGen) return;
        const count = shown.size;
        for (const ev of page.events || []) {
          if (!shown.has(ev.id)) { shown.add(ev.id); listEl.prepend(eventItem(ev)); }
        }
        fresh += shown.size - count;
        trim();
        if (page.next) cursor = page.next;
        if (page.done || !page.next) break;
      }
      if (fresh) setStatus(status, `${fresh} new event${fresh === 1 ? '' : 's'} (following).`);
    } catch (e) {
      if (e instanceof ApiError && e.auth) return;
      report(e); // keep following: a network blip should not end the watch
    }
    if (gen === followGen) timer = setTimeout(() => tick(gen), FOLLOW_MS);
  }

  if (tenant.value) form.requestSubmit();
  return { cleanup: stopFollow };
}

function eventItem(ev) {
  const src = ev.source || {};
  return el('li', { class: 'event', 'data-event-id': ev.id },
    el('div', { class: 'event-head' }, el('strong', { class: 'event-type' }, ev.type), ' ', code(ev.id)),
    dl([
      ['Occurred', time(ev.occurred_at)],
      ['Received', time(ev.received_at)],
      ev.subject && ['Subject', code(ev.subject)],
      src.provider && ['Source', [src.provider, src.topic ? ` · ${src.topic}` : '', src.id ? [' · ', code(src.id)] : '']],
    ], 'props inline'),
    el('details', null, el('summary', null, 'Event JSON'), el('pre', { class: 'json' }, JSON.stringify(ev, null, 2))));
}

// ---------------------------------------------------------------------------------------------
// Quarantine

function renderQuarantine(view, arg) {
  const tenant = el('input', { id: 'quarantine-tenant', name: 'tenant', autocomplete: 'off', spellcheck: 'false', value: memo.quarantineTenant });
  const form = el('form', { id: 'quarantine-filter', class: 'panel filters' },
    el('div', { class: 'grid' }, field('quarantine-tenant', 'Tenant (optional)', tenant)),
    el('div', { class: 'actions' }, el('button', { id: 'quarantine-load', type: 'submit' }, 'Load')));
  const status = statusRegion('quarantine-status');
  const detail = el('section', { id: 'quarantine-detail', class: 'panel detail', hidden: true, 'aria-labelledby': 'quarantine-detail-title' });
  const tbody = el('tbody');
  let q = null; // the tenant filter of the list shown
  const { more, load: loadPage } = pager({
    id: 'quarantine-more', label: 'Older', tbody, key: 'entries', row: quarantineRow, cols: 8, empty: 'Nothing in quarantine.',
    fetchPage: (before) => api('/v1/quarantine', { query: { limit: PAGE, tenant: q, before } }),
  });
  let openId = null;

  view.append(pageHeader('Quarantine'),
    el('p', { class: 'hint' }, 'Verified deliveries that could not be normalized, newest first. Fix the cause, then replay them, or discard them.'),
    form, status, detail,
    table('quarantine-table', 'Quarantine entries', ['Received', 'Tenant', 'Provider', 'Topic', 'Reason', 'Body', 'Replayed into', ''], tbody),
    more);

  form.addEventListener('submit', busy(form, () => { clearError(); return load(); }));

  function load() {
    q = tenant.value.trim();
    memo.quarantineTenant = q;
    return loadPage(true);
  }

  async function open(id) {
    openId = id;
    if (!id) { detail.hidden = true; detail.replaceChildren(); setTitle('Quarantine'); return; }
    setTitle(`Quarantine ${id}`, 'Quarantine');
    detail.hidden = false;
    detail.replaceChildren(el('h2', { id: 'quarantine-detail-title', tabindex: '-1' }, 'Quarantine entry ', code(id)), el('p', null, 'Loading…'));
    detail.scrollIntoView({ block: 'start' });
    $('#quarantine-detail-title').focus();
    let entry;
    try { entry = await api(`/v1/quarantine/${enc(id)}`); } catch (e) {
      if (openId === id) { detail.lastChild.replaceWith(el('p', null, 'Could not load this entry.')); report(e); }
      return;
    }
    if (openId !== id) return; // another entry was opened meanwhile
    const focused = detail.contains(document.activeElement);
    detail.replaceChildren(...quarantineDetail(entry, { replay, discard }));
    if (focused) $('#quarantine-detail-title').focus(); // the loading title had it
  }

  async function replay(entry, result, buttons) {
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const r = await api(`/v1/quarantine/${enc(entry.id)}/replay`, { method: 'POST' });
      const ids = r.event_ids || [];
      setStatus(result, ids.length
        ? [el('p', null, `Replayed into ${ids.length} event${ids.length === 1 ? '' : 's'}:`), list(ids)]
        : el('p', null, 'Replayed: the delivery produced no events.'));
      const cell = tbody.querySelector(`tr[data-quarantine-id="${CSS.escape(entry.id)}"] td.replayed`);
      cell?.replaceChildren(list(ids));
      $('#quarantine-replayed')?.replaceChildren(list(ids));
    } catch (e) {
      failIn(result, e);
    } finally { buttons.forEach((b) => { b.disabled = false; }); }
  }

  async function discard(entry) {
    const yes = await confirmDialog(`Discard quarantine entry ${entry.id} for good? Its stored delivery and replay result `
      + 'are deleted and cannot be recovered.', 'Discard');
    if (!yes) return;
    try {
      await api(`/v1/quarantine/${enc(entry.id)}`, { method: 'DELETE' });
    } catch (e) { report(e); return; }
    setStatus(status, ['Discarded ', code(entry.id), '.']);
    location.hash = '#/quarantine'; // closes the detail through the router
    $('#view h1')?.focus();
    await loadPage(true).catch(report);
  }

  load().catch(report);
  if (arg) open(arg);
  return { open };
}

function quarantineRow(e) {
  return el('tr', { 'data-quarantine-id': e.id },
    td(time(e.received_at)),
    td(e.tenant),
    td(e.provider),
    td(e.topic ? code(e.topic) : dash()),
    el('td', { class: 'reason-cell' }, el('div', { class: 'clamp', title: e.reason }, e.reason)),
    el('td', { class: 'num' }, fmtBytes(e.body_bytes)),
    el('td', { class: 'replayed' }, list(e.replayed_event_ids)),
    td(el('a', { class: 'quarantine-open', href: `#/quarantine/${enc(e.id)}` }, 'Open', srOnly(` entry ${e.id}`))));
}

function quarantineDetail(q, actions) {
  const result = statusRegion('quarantine-result');
  const replayBtn = button('Replay', { id: 'quarantine-replay' });
  const discardBtn = button('Discard…', { id: 'quarantine-discard', class: 'danger' });
  replayBtn.addEventListener('click', () => actions.replay(q, result, [replayBtn, discardBtn]));
  discardBtn.addEventListener('click', () => actions.discard(q));
  const headers = Object.entries(q.headers || {}).sort(([a], [b]) => a.localeCompare(b));
  const text = q.body != null;
  return [
    el('div', { class: 'detail-head' },
      el('h2', { id: 'quarantine-detail-title', tabindex: '-1' }, 'Quarantine entry ', code(q.id)),
      el('a', { href: '#/quarantine', class: 'close' }, 'Close', srOnly(' the entry'))),
    el('h3', { class: 'reason-label' }, 'Why it was quarantined'),
    el('p', { id: 'quarantine-reason', class: 'reason' }, q.reason),
    dl([
      ['Received', time(q.received_at)],
      ['Tenant', q.tenant],
      ['Source', code(q.source_id)],
      ['Provider', q.provider],
      ['Topic', q.topic ? code(q.topic) : dash()],
      ['Replayed into', el('span', { id: 'quarantine-replayed' }, list(q.replayed_event_ids))],
    ]),
    el('div', { class: 'actions' }, replayBtn, discardBtn),
    result,
    el('h3', null, `Headers (${headers.length})`),
    headers.length ? el('dl', { class: 'headers' }, headers.map(([k, v]) => el('div', null, el('dt', null, k), el('dd', null, v)))) : dash(),
    el('h3', { id: 'quarantine-body-label' }, text ? 'Body (as received, UTF-8)' : 'Body (base64: the bytes are not valid UTF-8)'),
    el('pre', { id: 'quarantine-body', class: 'body', tabindex: '0', 'aria-labelledby': 'quarantine-body-label' }, text ? q.body : q.body_base64),
  ];
}

// ---------------------------------------------------------------------------------------------
// Plugins

function renderPlugins(view, arg) {
  const tbody = el('tbody');
  const { more, load } = pager({
    id: 'plugins-more', tbody, key: 'plugins', row: pluginRow, cols: 6, empty: 'No plugins registered.',
    fetchPage: (after) => api('/v1/plugins', { query: { limit: PAGE, after } }),
  });
  const detail = el('section', { id: 'plugin-detail', class: 'panel detail', hidden: true, 'aria-labelledby': 'plugin-detail-title' });
  let openId = null;

  view.append(pageHeader('Plugins'), detail,
    table('plugins-table', 'Plugins', ['Plugin', 'Subscriptions', 'Delivery', 'Keys', 'Created', ''], tbody), more);

  async function open(id, keepResult = false) {
    openId = id;
    if (!id) { detail.hidden = true; detail.replaceChildren(); setTitle('Plugins'); return; }
    const prior = keepResult ? $('#plugin-result', detail) : null;
    const result = prior || statusRegion('plugin-result');
    const body = el('div', null, el('p', null, 'Loading…'));
    if (!keepResult) {
      detail.replaceChildren(el('div', { class: 'detail-head' },
        el('h2', { id: 'plugin-detail-title', tabindex: '-1' }, 'Plugin ', code(id)),
        el('a', { href: '#/plugins', class: 'close' }, 'Close', srOnly(' the plugin'))), result, body);
      detail.hidden = false;
      detail.scrollIntoView({ block: 'start' });
      $('#plugin-detail-title').focus();
    }
    let p;
    try { p = await api(`/v1/plugins/${enc(id)}`); } catch (e) {
      if (openId === id) { body.replaceChildren(el('p', null, 'Could not load this plugin.')); report(e); }
      return;
    }
    if (openId !== id) return;
    setTitle(`Plugin ${p.name || id}`, 'Plugins');
    $('#plugin-detail-title', detail).replaceChildren('Plugin ', p.name ? `${p.name} ` : '', code(id));
    const fresh = pluginDetail(p, { replay: (ids) => replayDead(id, ids, result) });
    if (keepResult) detail.lastChild.replaceWith(fresh); else body.replaceWith(fresh);
  }

  async function replayDead(id, ids, result) {
    try {
      const r = await api(`/v1/plugins/${enc(id)}/dead-letters/replay`, { method: 'POST', body: ids ? { ids } : {} });
      const n = r.replayed ?? 0;
      setStatus(result, `Replayed ${n} dead letter${n === 1 ? '' : 's'}.`);
    } catch (e) {
      failIn(result, e);
      return;
    }
    if (openId === id) await open(id, true);
  }

  load(true).catch(report);
  if (arg) open(arg);
  return { open: (id) => open(id) };
}

function pluginRow(p) {
  return el('tr', { 'data-plugin-id': p.id },
    td(el('div', null, p.name), code(p.id)),
    td(list(p.event_types)),
    td(p.delivery && p.delivery.mode ? p.delivery.mode : 'pull'),
    el('td', { class: 'num' }, fmtInt((p.keys || []).length)),
    td(time(p.created_at)),
    td(el('a', { class: 'plugin-open', href: `#/plugins/${enc(p.id)}` }, 'Open', srOnly(` plugin ${p.name || p.id}`))));
}

function pluginDetail(p, actions) {
  const inbox = p.inbox || {};
  const d = p.delivery;
  const keys = (k) => list(k, (x) => [code(x.id), ' created ', time(x.created_at), x.expires_at ? [', expires ', time(x.expires_at)] : '']);
  return el('div', null,
    dl([
      ['Subscriptions', list(p.event_types)],
      ['Publishes', list((p.publishes || []).map((t) => t.type))],
      ['API keys', keys(p.keys)],
      ['Created', time(p.created_at)],
    ]),
    el('h3', null, 'Inbox'),
    el('div', { class: 'stats' },
      stat('Waiting', inbox.waiting), stat('In flight', inbox.in_flight), stat('Dead letters', inbox.dead_letters, inbox.dead_letters > 0)),
    d && d.mode === 'push' ? pushSection(d, keys) : el('p', { class: 'hint' }, 'Pull delivery: the plugin pulls its inbox with its API key.'),
    installationsSection(p.id),
    deadLettersSection(p.id, actions.replay));
}

function stat(label, value, alert = false) {
  return el('div', { class: `stat${alert ? ' alert' : ''}` }, el('span', { class: 'stat-value' }, fmtInt(value)), el('span', { class: 'stat-label' }, label));
}

function pushSection(d, keys) {
  const tbody = el('tbody', null, (d.endpoints || []).map((e) => el('tr', null,
    el('td', { class: 'wrap' }, code(e.url)),
    td(badge(e.status, { healthy: 'ok', failing: 'bad', paused: 'warn' }[e.status])),
    el('td', { class: 'num' }, fmtInt(e.consecutive_failures)),
    td(time(e.failing_since)),
    el('td', { class: 'wrap' }, e.last_error || dash(), e.last_error_at && el('div', null, time(e.last_error_at))),
    td(time(e.last_success_at)))));
  if (!tbody.children.length) tbody.append(emptyRow(6, 'Nothing pushed yet.'));
  return el('section', { 'aria-labelledby': 'push-title' },
    el('h3', { id: 'push-title' }, 'Push delivery'),
    dl([
      ['URL', d.url ? code(d.url) : dash()],
      ['State', d.paused_at ? [badge('paused', 'warn'), ' since ', time(d.paused_at)] : badge('running', 'ok')],
      d.max_in_flight != null && ['Max in flight', fmtInt(d.max_in_flight)],
      d.signing_secrets && ['Signing secrets', keys(d.signing_secrets)],
    ]),
    table('endpoints-table', 'Push endpoints', ['Endpoint', 'Status', 'Failures in a row', 'Failing since', 'Last error', 'Last success'], tbody));
}

/** A paged sub-list of the plugin detail: its own table and "Load more". */
function pagedSection({ id, title, path, key, headers, row, empty, tools = [] }) {
  const tbody = el('tbody');
  const { more, load } = pager({ id: `${id}-more`, tbody, key, row, cols: headers.length, empty,
    fetchPage: (after) => api(path, { query: { limit: PAGE, after } }) });
  load(true).catch(report);
  return { tbody, node: el('section', { 'aria-labelledby': `${id}-title` },
    el('div', { class: 'section-head' }, el('h3', { id: `${id}-title` }, title), tools),
    table(`${id}-table`, title, headers, tbody), more) };
}

function installationsSection(pluginId) {
  return pagedSection({
    id: 'installations', title: 'Installations', key: 'installations', empty: 'Not installed in any shop.',
    path: `/v1/plugins/${enc(pluginId)}/installations`,
    headers: ['Tenant', 'Scopes', 'Push URL', 'Installed'],
    row: (i) => el('tr', { 'data-tenant': i.tenant },
      td(i.tenant), td(list(i.scopes)),
      el('td', { class: 'wrap' }, i.push_url ? code(i.push_url) : dash()), td(time(i.installed_at))),
  }).node;
}

function deadLettersSection(pluginId, replay) {
  const all = button('Replay all', { id: 'dead-replay-all', class: 'secondary' });
  all.addEventListener('click', () => {
    all.disabled = true;
    Promise.resolve(replay(null)).finally(() => { all.disabled = false; });
  });
  const section = pagedSection({
    id: 'dead-letters', title: 'Dead letters', key: 'dead_letters', empty: 'No dead letters.',
    path: `/v1/plugins/${enc(pluginId)}/dead-letters`,
    headers: ['Event type', 'Event id', 'Tenant', 'Attempts', 'Last failure', ''],
    tools: [all],
    row: (x) => {
      const ev = x.event || {};
      const last = (x.failures || []).slice(-1)[0];
      return el('tr', { 'data-dead-id': x.id },
        td(ev.type || dash()), td(ev.id ? code(ev.id) : dash()), td(ev.tenant || dash()),
        el('td', { class: 'num' }, fmtInt(x.attempts)),
        el('td', { class: 'wrap' }, last ? [last.reason || muted('no reason given'), el('div', null, time(last.at))]
          : muted('no reason given')),
        td(button('Replay', { class: 'dead-replay secondary small', 'aria-label': `Replay dead letter ${x.id}` })));
    },
  });
  section.tbody.addEventListener('click', (e) => {
    const b = e.target.closest('.dead-replay');
    if (!b) return;
    b.disabled = true;
    Promise.resolve(replay([b.closest('tr').dataset.deadId])).finally(() => { b.disabled = false; });
  });
  return section.node;
}

// ---------------------------------------------------------------------------------------------
// Health

function renderHealth(view) {
  const refresh = button('Refresh', { id: 'health-refresh', onclick: () => load().catch(report) });
  const summary = el('div');
  const router = el('div');
  const status = el('p', { id: 'health-status', class: 'status', role: 'status' });
  view.append(pageHeader('Health', refresh), status, summary, el('h2', null, 'Router partitions'),
    el('p', { class: 'hint' }, 'Not yet routed: log entries the router has not copied to plugin inboxes yet (— when unknown).'),
    router);

  async function load() {
    refresh.disabled = true;
    try {
      const s = await api('/v1/status');
      const reachable = s.store === 'reachable';
      const spool = s.spool;
      summary.replaceChildren(dl([
        ['Store', el('span', { id: 'store-status' }, badge(s.store || 'unknown', reachable ? 'ok' : 'bad'))],
        ['Spool', spool ? [`${fmtInt(spool.records)} deliveries waiting, ${fmtBytes(spool.bytes)}`,
          spool.oldest_received_at ? [', oldest received ', time(spool.oldest_received_at)] : '']
          : muted('no spool')],
      ]));
      router.replaceChildren(routerTable(s.router || []));
      status.textContent = `Checked at ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}.`;
    } finally { refresh.disabled = false; }
  }

  load().catch(report);
  return {};
}

/**
 * One row per log partition. Columns follow what the gateway reports: `lag` (or `unrouted`),
 * and `pending` and `last_written_at` when present, so the page works with either shape.
 */
function routerTable(parts) {
  const has = (k) => parts.some((r) => r[k] != null);
  const num = (v) => el('td', { class: 'num' }, v == null ? dash() : fmtInt(v));
  const cols = [['Partition', (r) => td(String(r.partition))], ['Not yet routed', (r) => num(r.lag ?? r.unrouted)]];
  if (has('pending')) cols.push(['Pending (read, not acknowledged)', (r) => num(r.pending)]);
  if (has('last_written_at')) cols.push(['Newest entry written', (r) => td(time(r.last_written_at))]);
  const tbody = el('tbody', null, parts.map((r) => el('tr', { 'data-partition': r.partition }, cols.map(([, cell]) => cell(r)))));
  if (!parts.length) tbody.append(emptyRow(cols.length, 'No partitions reported (the store may be unreachable).'));
  return table('router-table', 'Router partitions', cols.map(([h]) => h), tbody);
}

// ---------------------------------------------------------------------------------------------
// Start

$('#login').addEventListener('submit', login);
$('#logout').addEventListener('click', logout);
$('#skip').addEventListener('click', (e) => { e.preventDefault(); $('#main').focus(); }); // a plain #main would be read as a route
window.addEventListener('hashchange', () => route(true));
route();
