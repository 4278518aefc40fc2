// zoomrtms-host status page: live engagements and level meters over
// Server-Sent Events, recent engagements from disk (src/host/host-status.h).
//
// The events are read with fetch() streaming, not EventSource: EventSource
// cannot send the `Authorization: Bearer` header the host's API rule needs.
// The token is typed into the page or given in the URL fragment (#token=…,
// never sent to a server, removed from the address bar at once) and kept in
// sessionStorage. Every value from the host is put in the page as text
// (textContent), never as HTML: ids and names come from webhooks.
'use strict';

const TOKEN_KEY = 'zoomrtms-api-token';
let token = sessionStorage.getItem(TOKEN_KEY) || '';
let liveTimeOffset = 0;     // host clock − browser clock, ms

(function tokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (!m) return;
  token = decodeURIComponent(m[1]);
  sessionStorage.setItem(TOKEN_KEY, token);
  history.replaceState(null, '', location.pathname + location.search);
})();

function authHeaders() {
  return token ? { Authorization: 'Bearer ' + token } : {};
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function setConn(kind, text) {
  const c = document.getElementById('conn');
  c.className = 'conn conn-' + kind;
  c.textContent = text;
}

function hhmmss(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '–';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + ':' + String(m).padStart(2, '0') : String(m)) + ':' + String(r).padStart(2, '0');
}

function localTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

// -60 dBFS … 0 dBFS → 0 … 100 %
function dbToPercent(db) {
  return Math.max(0, Math.min(100, (db + 60) / 60 * 100));
}

function partyText(p) {
  const who = p.name || p.mode || 'party';
  return p.channel ? who + ' (' + p.channel + ')' : who;
}

// Contact Center with layout=stereo: customer left, agent right
// (zoomrtmssrc's "layout" property)
const CUSTOMER = ['caller', 'customer', 'consumer'], AGENT = ['callee', 'agent'];
function channelName(e, i, n) {
  if (n === 1) return 'mono';
  if (n !== 2) return 'ch ' + (i + 1);
  const side = i === 0 ? 'left' : 'right';
  if (e.product !== 'contact_center') return side;
  const roles = i === 0 ? CUSTOMER : AGENT;
  const p = (e.parties || []).find((x) => roles.includes(String(x.mode).toLowerCase()));
  return p ? side + ' · ' + (p.name || p.mode) : side;
}


function renderLive(live) {
  if (live.time) liveTimeOffset = Date.parse(live.time) - Date.now();
  const box = document.getElementById('live');
  const list = live.engagements || [];
  document.getElementById('live-count').textContent = String(live.total || list.length);
  document.getElementById('live-empty').hidden = list.length > 0;
  const seen = new Set();
  for (const e of list) {
    seen.add(e.dir_name);
    let card = box.querySelector('[data-dir="' + CSS.escape(e.dir_name) + '"]');
    if (!card) {
      card = el('article', 'eng');
      card.dataset.dir = e.dir_name;
      box.appendChild(card);
    }
    card.replaceChildren();
    const h = el('h3', null, e.id || e.dir_name);
    card.appendChild(h);
    const meta = el('div', 'meta');
    const st = el('span', 'state state-' + String(e.state || '').toLowerCase(), e.state);
    meta.appendChild(st);
    meta.appendChild(document.createTextNode(' ' + (e.product || '') + ' · ' +
        (e.pipeline || '') + ' · '));
    const dur = el('span', 'duration', hhmmss(e.duration_s));
    dur.dataset.start = String(Date.parse(e.start_time));
    meta.appendChild(dur);
    meta.appendChild(document.createTextNode(' · ' + (e.frames || 0) + ' packets · ' +
        (e.interruptions || 0) + ' interruptions'));
    card.appendChild(meta);
    const parties = el('div', 'parties');
    for (const p of e.parties || [])
      parties.appendChild(el('span', 'party', partyText(p)));
    if (!(e.parties || []).length) parties.appendChild(el('span', 'party', 'no party yet'));
    card.appendChild(parties);
    const m = e.meters || {};
    const peaks = m.peak_db || [], rmss = m.rms_db || [];
    for (let i = 0; i < rmss.length; i++) {
      const row = el('div', 'meter-row');
      row.appendChild(el('span', 'ch', channelName(e, i, rmss.length)));
      const bar = el('div', 'meter');
      bar.dataset.channel = String(i);
      bar.dataset.rmsDb = String(rmss[i]);
      bar.dataset.peakDb = String(peaks[i]);
      const rms = el('div', 'rms');
      rms.style.width = dbToPercent(rmss[i]).toFixed(1) + '%';
      const pk = el('div', 'peak');
      pk.style.left = 'calc(' + dbToPercent(peaks[i]).toFixed(1) + '% - 2px)';
      bar.appendChild(rms);
      bar.appendChild(pk);
      row.appendChild(bar);
      row.appendChild(el('span', 'db', rmss[i].toFixed(1) + ' dB'));
      card.appendChild(row);
    }
    if (!rmss.length) card.appendChild(el('div', 'meta', 'no level (not PCM yet)'));
  }
  for (const card of Array.from(box.children))
    if (!seen.has(card.dataset.dir)) card.remove();
}

function fileLink(dir, f) {
  const url = '/status/files/' + encodeURIComponent(dir) + '/' + encodeURIComponent(f.name);
  const a = el('a', null, f.name);
  a.href = url;
  a.title = f.bytes + ' bytes';
  a.target = '_blank';
  a.rel = 'noopener';
  // a link cannot carry the Bearer header: fetch it, hand the browser a blob
  a.addEventListener('click', async (ev) => {
    if (!token) return;
    ev.preventDefault();
    const r = await fetch(url, { headers: authHeaders() });
    if (!r.ok) { alert('HTTP ' + r.status); return; }
    const blob = await r.blob();
    const obj = URL.createObjectURL(blob);
    const tmp = document.createElement('a');
    tmp.href = obj;
    if (/^(audio|text)\//.test(blob.type) || blob.type === 'application/json') tmp.target = '_blank';
    else tmp.download = f.name;
    tmp.click();
    setTimeout(() => URL.revokeObjectURL(obj), 60000);
  });
  return a;
}

function renderRecent(list) {
  const table = document.getElementById('recent');
  const body = table.tBodies[0];
  body.replaceChildren();
  document.getElementById('recent-empty').hidden = list.length > 0;
  table.hidden = list.length === 0;
  for (const e of list) {
    const tr = el('tr');
    tr.dataset.dir = e.dir_name;
    tr.appendChild(el('td', null, e.id || e.dir_name));
    tr.appendChild(el('td', null, e.state));
    tr.appendChild(el('td', null, localTime(e.start_time)));
    tr.appendChild(el('td', null, hhmmss(e.audio_duration_s ?? e.duration_s)));
    const sr = e.stop_reason;
    tr.appendChild(el('td', null, sr ? (sr.name || sr.code || '') + (sr.source ? ' (' + sr.source + ')' : '') : '–'));
    tr.appendChild(el('td', null, (e.parties || []).map(partyText).join(', ') || '–'));
    const files = el('td', 'files');
    for (const f of e.files || []) files.appendChild(fileLink(e.dir_name, f));
    tr.appendChild(files);
    body.appendChild(tr);
  }
}

function handleEvent(block) {
  let type = 'message', data = '';
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) type = line.slice(6).trim();
    else if (line.startsWith('data:')) data += line.slice(5).replace(/^ /, '');
  }
  if (!data) return;
  const value = JSON.parse(data);
  if (type === 'live') renderLive(value);
  else if (type === 'recent') renderRecent(value);
}

function showAuth(status) {
  document.getElementById('auth').hidden = false;
  document.getElementById('auth-why').textContent = status === 403
      ? 'This host answers loopback clients only: it has no [http] api-token set.'
      : (token ? 'The token was refused.' : 'This host needs its API token ([http] api-token).');
  setConn('bad', status === 403 ? 'forbidden' : 'token needed');
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function follow() {
  for (;;) {
    let status = 0;
    try {
      const res = await fetch('/status/events', { headers: authHeaders(), cache: 'no-store' });
      status = res.status;
      if (status === 401 || status === 403) { showAuth(status); return; }
      if (!res.ok || !res.body) throw new Error('HTTP ' + status);
      document.getElementById('auth').hidden = true;
      setConn('live', 'live');
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          handleEvent(buf.slice(0, i));
          buf = buf.slice(i + 2);
        }
      }
    } catch (err) {
      console.warn('status stream:', err);
    }
    setConn('wait', status === 503 ? 'too many pages open, retrying' : 'reconnecting…');
    await sleep(status === 503 ? 10000 : 2000);
  }
}

// durations tick between updates
setInterval(() => {
  const now = Date.now() + liveTimeOffset;
  document.getElementById('clock').textContent = new Date(now).toLocaleTimeString();
  for (const d of document.querySelectorAll('#live .duration')) {
    const start = Number(d.dataset.start);
    if (isFinite(start)) d.textContent = hhmmss((now - start) / 1000);
  }
}, 1000);

document.getElementById('auth').addEventListener('submit', (ev) => {
  ev.preventDefault();
  token = document.getElementById('token').value.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  follow();
});

follow();
