// The status page's live updates: the page is complete without this
// script (rendered server-side); with it, it follows GET /api/v1/events and,
// on each event, re-reads GET /api/v1/status and patches the node, the
// services table and the exits in place. Exits also get a mark on the
// timeline at once. Served from /ui/page.js under a CSP that forbids inline
// script: everything here is DOM calls, never innerHTML.
'use strict';

(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const SVG = 'http://www.w3.org/2000/svg';
  const TYPES = ['spawned', 'ready', 'unready', 'exited', 'backoff', 'failed',
    'stopped', 'started', 'reload', 'fault', 'shutdown', 'listener', 'gap'];

  function fmtSeconds(sec) {
    sec = Math.floor(sec);
    if (!(sec > 0)) return '-';
    const d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600);
    const m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d > 0) return d + 'd' + h + 'h';
    if (h > 0) return h + 'h' + m + 'm';
    if (m > 0) return m + 'm' + s + 's';
    return s + 's';
  }

  function clock(t) { return new Date(t).toISOString().slice(11, 19) + 'Z'; }

  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const k of kids) e.append(k);
    return e;
  }

  // Sign-in: POST the token as JSON, then load the page with the cookie.
  function signIn() {
    const form = $('#signin');
    const errEl = $('#signin-error');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      errEl.hidden = true;
      const token = form.elements.token.value;
      try {
        const r = await fetch('/api/v1/login', {
          method: 'POST', credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ token: token }),
        });
        if (r.ok) { location.reload(); return; }
        const body = await r.json().catch(() => ({}));
        errEl.textContent = body.error || ('sign-in failed: HTTP ' + r.status);
      } catch (e) {
        errEl.textContent = 'sign-in failed: ' + e;
      }
      errEl.hidden = false;
    });
  }

  // Uptimes tick locally between refreshes.
  let refreshedAt = Date.now();
  function tick() {
    const dt = (Date.now() - refreshedAt) / 1000;
    for (const cell of $$('[data-seconds]')) {
      const base = Number(cell.dataset.seconds);
      const running = cell.id === 'node-uptime' || cell.closest('tr').dataset.state === 'running';
      cell.textContent = fmtSeconds(running ? base + dt : base);
    }
  }

  function setCell(row, cls, text, extra) {
    const c = $('td.' + cls, row);
    c.textContent = text;
    c.className = cls + (extra ? ' ' + extra : '');
    return c;
  }

  function patchRow(name, s) {
    const tbody = $('#services tbody');
    let row = $$('tr', tbody).find((r) => r.dataset.service === name);
    if (!row) {
      row = el('tr');
      row.dataset.service = name;
      for (const cls of ['name', 'state', 'pid', 'uptime', 'restarts', 'ready', 'last-exit']) {
        row.append(el('td', { className: cls }));
      }
      $('td.name', row).textContent = name;
      tbody.append(row);
    }
    row.dataset.state = s.state;
    setCell(row, 'state', s.state, 'state-' + s.state);
    setCell(row, 'pid', s.pid ? String(s.pid) : '-');
    setCell(row, 'uptime', fmtSeconds(s.uptime_seconds)).dataset.seconds = String(Math.round(s.uptime_seconds));
    setCell(row, 'restarts', String(s.restarts));
    setCell(row, 'ready', s.ready ? 'yes' : 'no', s.ready ? 'yes' : 'no');
    setCell(row, 'last-exit', s.last_exit || '-');
  }

  function exitBlock(name, x) {
    let sum = clock(x.time) + ' ';
    const summary = el('summary', {}, sum, el('b', { textContent: name }),
      ' pid ' + x.pid + ': ' + x.description + (x.reason ? ' (' + x.reason + ')' : '') +
      ', up ' + fmtSeconds(x.uptime_seconds) + (x.restart ? ', restart ' + x.restart : ''));
    const d = el('details', { className: 'exit' }, summary);
    d.dataset.service = name;
    if (x.crash_block && x.crash_block.length) {
      d.append(el('h3', { textContent: 'crash' }),
        el('pre', { className: 'crash', textContent: x.crash_block.join('\n') + '\n' }));
    }
    const tail = x.last_lines && x.last_lines.length ? x.last_lines.join('\n') + '\n' : '(no output)';
    d.append(el('h3', { textContent: 'log tail' }), el('pre', { className: 'tail', textContent: tail }));
    return d;
  }

  function patchExits(order, services) {
    const box = $('#exits');
    const open = new Set($$('details[open]', box).map((d) => d.firstChild.textContent));
    const blocks = [];
    for (const name of order) {
      const exits = (services[name].exits || []).slice().reverse();
      for (const x of exits) {
        const b = exitBlock(name, x);
        if (open.has(b.firstChild.textContent)) b.open = true;
        blocks.push(b);
      }
    }
    box.replaceChildren(...blocks);
  }

  function render(st) {
    refreshedAt = Date.now();
    $('#node-id').textContent = (st.node && st.node.id) || '-';
    const up = $('#node-uptime');
    up.dataset.seconds = String(Math.round(st.uptime_seconds));
    up.textContent = fmtSeconds(st.uptime_seconds);
    const ready = $('#node-ready');
    ready.textContent = st.ready ? 'ready' : 'not ready';
    ready.className = st.ready ? 'yes' : 'no';
    const order = $$('#services tbody tr').map((r) => r.dataset.service);
    for (const name of Object.keys(st.services).sort()) {
      if (!order.includes(name)) order.push(name);
    }
    for (const name of order) {
      if (st.services[name]) patchRow(name, st.services[name]);
    }
    patchExits(order.filter((n) => st.services[n]), st.services);
  }

  // Timeline: marks keep their time in data-t and move left as it passes.
  function layoutTimeline() {
    const svg = $('#timeline');
    if (!svg) return;
    const labelW = Number(svg.dataset.labelW), plotW = Number(svg.dataset.plotW);
    const span = Number(svg.dataset.spanMs), from = Date.now() - span;
    for (const m of $$('circle.mark', svg)) {
      const t = Number(m.dataset.t);
      if (t < from) { m.remove(); continue; }
      m.setAttribute('cx', String(labelW + Math.min(plotW - 5, Math.round(plotW * (t - from) / span)))); // r=5: never clipped
    }
    for (const li of $$('#timeline-list li[data-t]')) {
      if (Number(li.dataset.t) < from) li.remove();
    }
  }

  function addMark(ev) {
    const lane = $$('#timeline g.lane').find((g) => g.dataset.lane === ev.service);
    const t = Date.parse(ev.time);
    const d = ev.data || {};
    const title = ev.type === 'failed'
      ? ev.service + ': crash loop, restarts paused'
      : ev.service + ' pid ' + d.pid + ': ' + d.description;
    if (lane) {
      const c = document.createElementNS(SVG, 'circle');
      c.setAttribute('class', 'mark ' + ev.type);
      c.setAttribute('cy', '11');
      c.setAttribute('r', '5');
      c.dataset.t = String(t);
      const tt = document.createElementNS(SVG, 'title');
      tt.textContent = clock(t) + ' ' + title;
      c.append(tt);
      lane.append(c);
    }
    const list = $('#timeline-list');
    const none = $('li.none', list);
    if (none) none.remove();
    const li = el('li', { textContent: clock(t) + ' ' + title });
    li.dataset.t = String(t);
    list.append(li);
    layoutTimeline();
  }

  let pending = null;
  async function refresh() {
    pending = null;
    try {
      const r = await fetch('/api/v1/status', {
        credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' },
      });
      if (r.status === 401) { location.reload(); return; } // the session ended: sign in again
      if (r.ok) render(await r.json());
    } catch (e) {
      // The node is away; the event stream's reconnect brings a new refresh.
    }
  }
  function schedule() {
    if (!pending) pending = setTimeout(refresh, 100);
  }

  function follow() {
    const live = $('#live');
    const es = new EventSource('/api/v1/events');
    es.onopen = () => {
      live.textContent = 'live';
      live.className = 'live on';
      schedule(); // whatever happened while we were away
    };
    es.onerror = () => {
      live.textContent = 'reconnecting';
      live.className = 'live off';
    };
    for (const type of TYPES) {
      es.addEventListener(type, (e) => {
        if (type === 'exited' || type === 'failed') {
          try { addMark(JSON.parse(e.data)); } catch (err) { /* a malformed event only misses its mark */ }
        }
        schedule();
      });
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    if (document.body.dataset.signin) { signIn(); return; }
    for (const r of $$('#services tbody tr')) r.dataset.state = $('td.state', r).textContent.trim();
    layoutTimeline();
    setInterval(tick, 1000);
    setInterval(layoutTimeline, 10000);
    follow();
  });
})();
