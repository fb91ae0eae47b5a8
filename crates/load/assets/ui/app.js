// pique load: the web UI. The server keeps the run's state; this page draws it from the
// server-sent events of /api/events (a snapshot, then one small event per change).
'use strict';

const $ = (id) => document.getElementById(id);
const P = { p50: 0, p90: 4, p95: 5, p99: 7 }; // indexes into percentiles_ms (Locust's list)

const ui = {
  state: null,        // the server's state, kept up to date by the events
  plans: null,        // /api/plans
  sort: { key: null, dir: -1 },
  tab: 'stats',
  charts: {},         // uPlot instances by element id
  serverKeys: '',     // series names of the server charts, to rebuild them when they change
  dirty: false,
};
window.pique = ui; // for the browser test and for poking at it from the console

// ---------- formatting ----------
const num = (v, d = 0) => (v == null || !isFinite(v)) ? '-' :
  Number(v).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
const ms = (v) => v == null ? '-' : (v >= 100 ? num(v, 0) : num(v, v >= 10 ? 1 : 2));
const pct = (v) => v == null ? '-' : num(v * 100, 2) + ' %';
function clock(s) {
  if (s == null || !isFinite(s)) return '-';
  s = Math.max(0, Math.floor(s));
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  const two = (x) => String(x).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const cls = (s) => String(s).replace(/[^a-z]+/gi, '-').toLowerCase();

// ---------- the event stream ----------
function connect() {
  const es = new EventSource('/api/events');
  const on = (kind, apply) => es.addEventListener(kind, (e) => {
    const data = JSON.parse(e.data);
    if (kind !== 'snapshot' && !ui.state) return;
    apply(data);
    if (ui.state) ui.state.seq = Number(e.lastEventId) || ui.state.seq;
    schedule();
  });
  on('snapshot', (s) => { ui.state = s; });
  on('status', (d) => Object.assign(ui.state, d));
  on('second', (d) => {
    const s = ui.state, h = s.history;
    for (const k of Object.keys(h)) h[k].push(d.point[k]);
    Object.assign(s, {
      elapsed_s: d.elapsed_s, requests: d.requests, aggregated: d.aggregated,
      failures: d.failures, not_run: d.not_run, capacity: d.capacity,
    });
  });
  on('server', (d) => {
    const sv = ui.state.server;
    sv.sources = d.sources; sv.notes = d.notes;
    if (d.sample) sv.samples.push(d.sample);
  });
  on('grading', (g) => { ui.state.grading = g; });
  on('workers', (w) => { ui.state.workers = w; });
  es.onopen = () => { $('conn').textContent = 'live: connected to the load generator'; };
  es.onerror = () => { $('conn').textContent = 'connection lost, reconnecting ...'; };
}

function schedule() {
  if (ui.dirty) return;
  ui.dirty = true;
  requestAnimationFrame(() => { ui.dirty = false; render(); });
}

// ---------- plans and the forms ----------
async function loadPlans() {
  const r = await fetch('/api/plans');
  ui.plans = await r.json();
  const sel = $('plan');
  sel.innerHTML = '';
  for (const p of ui.plans.plans) {
    const o = document.createElement('option');
    o.value = p.id;
    o.textContent = p.error ? `${p.id} (invalid)` : `${p.name} (${p.id})`;
    o.disabled = !!p.error;
    sel.appendChild(o);
  }
  sel.value = ui.plans.selected;
  describePlan();
  const d = ui.plans.defaults;
  if (d.host) $('host').value = d.host;
  if (d.users) $('users').value = d.users;
  if (d.spawn_rate) $('spawn-rate').value = d.spawn_rate;
  if (d.run_time) $('run-time').value = d.run_time;
  schedule();
}

function selectedPlan() {
  return ui.plans && ui.plans.plans.find((p) => p.id === $('plan').value);
}

function describePlan() {
  const p = selectedPlan();
  if (!p) return;
  $('plan-about').textContent = p.error ? p.error : [p.description, p.shape].filter(Boolean).join(' | ');
  $('host').placeholder = p.host || 'http://127.0.0.1:8080';
  $('users').placeholder = p.users != null ? `plan: ${p.users}` : '';
  $('spawn-rate').placeholder = p.spawn_rate != null ? `plan: ${p.spawn_rate}` : 'plan';
  $('run-time').placeholder = p.run_time ? `plan: ${p.run_time}` : 'plan: its shape';
}

async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body ?? {}) });
  if (r.ok) return null;
  try { return (await r.json()).detail || r.statusText; } catch (_) { return r.statusText; }
}

async function start(e) {
  e.preventDefault();
  const n = (id) => $(id).value.trim() === '' ? null : Number($(id).value);
  const t = (id) => $(id).value.trim() || null;
  $('start').disabled = true;
  const err = await post('/api/start', {
    plan: $('plan').value, host: t('host'), users: n('users'), spawn_rate: n('spawn-rate'), run_time: t('run-time'),
  });
  $('start').disabled = false;
  $('start-error').hidden = !err;
  $('start-error').textContent = err || '';
  if (!err) ui.formOpen = false;
}

async function stop() {
  $('stop').disabled = true;
  const err = await post('/api/stop');
  if (err) alert(err);
}

async function steer(e) {
  e.preventDefault();
  const users = Number($('steer-users').value);
  const rate = $('steer-rate').value.trim() === '' ? null : Number($('steer-rate').value);
  const err = await post('/api/users', { users, spawn_rate: rate });
  $('steer-note').textContent = err ? err : `asked for ${users} users` + (rate ? ` at ${rate}/s` : ' at once');
  $('steer-note').className = err ? 'error' : 'muted';
}

// ---------- rendering ----------
function render() {
  const s = ui.state;
  if (!s) return;
  renderHeader(s);
  renderForms(s);
  renderBanner(s);
  if (ui.tab === 'stats') renderStats(s);
  if (ui.tab === 'charts') renderCharts(s);
  if (ui.tab === 'failures') renderFailures(s);
  if (ui.tab === 'server') renderServer(s);
  if (ui.tab === 'grading') renderGrading(s);
  if (ui.tab === 'workers') renderWorkers(s);
  if (ui.tab === 'downloads') renderDownloads(s);
  renderCounts(s);
}

function last(a) { return a && a.length ? a[a.length - 1] : null; }

function renderHeader(s) {
  const st = $('status');
  st.textContent = s.status;
  st.className = 'badge ' + s.status;
  const run = s.run;
  $('run-plan').textContent = run ? `${run.plan}` : 'no run yet';
  $('run-host').textContent = run ? `${run.host} | ${run.shape}` : '';
  const live = s.status === 'running' || s.status === 'stopping';
  const h = s.history;
  const agg = s.aggregated && s.aggregated;
  $('h-users').textContent = live ? num(last(h.users)) : (run ? '0' : '-');
  $('h-rps').textContent = live ? num(last(h.rps), 1) : (agg ? num(agg.rps, 1) : '-');
  $('h-fail').textContent = agg ? `${num(agg.failures)} (${pct(agg.count ? agg.failures / agg.count : 0)})` : '-';
  $('h-p95').textContent = live ? ms(last(h.p95)) : (agg ? ms(agg.percentiles_ms[P.p95]) : '-');
  $('h-elapsed').textContent = run ? clock(s.elapsed_s) : '-';
  $('h-remaining').textContent = live && run ? clock(run.limit_s - s.elapsed_s) : '-';
  document.title = run ? `${s.status} ${run.plan} - pique load` : 'pique load';
}

function renderForms(s) {
  const live = s.status === 'running' || s.status === 'stopping';
  const attached = ui.plans && ui.plans.attached;
  $('stop').hidden = !live;
  $('stop').disabled = s.status !== 'running';
  $('new-run').hidden = live || attached || !ui.plans || ui.formOpen || s.status === 'idle';
  $('newrun').hidden = live || attached || !ui.plans || !(ui.formOpen || s.status === 'idle');
  const steerable = s.status === 'running' && s.run && s.run.model !== 'capacity';
  $('steer').hidden = !steerable;
  if (steerable && document.activeElement !== $('steer-users') && !$('steer-users').value) {
    $('steer-users').value = s.steer ? s.steer.users : s.run.target_users;
  }
  if (!live) { $('steer-users').value = ''; $('steer-note').textContent = ''; }
}

function renderBanner(s) {
  const b = $('banner');
  const o = s.outcome;
  if (s.status === 'failed' && o) {
    b.hidden = false; b.className = 'failed';
    b.textContent = 'The run failed: ' + (o.error || 'unknown error');
  } else if (s.status === 'finished' && o) {
    b.hidden = false; b.className = '';
    const report = o.files.includes('report.html') ? ' <a id="open-report" href="/files/report.html" target="_blank">Open the report</a>' : '';
    b.innerHTML = `Finished (${esc(o.stop_reason)}). Verdict: <b>${esc(o.verdict)}</b>; thresholds ${o.exit_code === 0 ? 'held' : 'failed'} (exit code ${o.exit_code}).${report}`;
  } else if (s.status === 'stopping') {
    b.hidden = false; b.className = '';
    b.textContent = 'Stopping: in-flight requests are finishing and the report is being written ...';
  } else {
    b.hidden = true;
  }
}

function renderCounts(s) {
  const fails = s.failures.reduce((a, f) => a + f.occurrences, 0);
  const fc = $('fail-count');
  fc.textContent = fails ? num(fails) : '';
  fc.className = 'count fail';
  const g = s.grading, gb = $('grade-badge');
  if (g) {
    const failing = g.verdict.startsWith('FAIL');
    gb.textContent = failing ? 'fail' : g.verdict.startsWith('PASS') ? 'pass' : '';
    gb.className = 'count ' + (failing ? 'fail' : 'pass');
  } else gb.textContent = '';
  const showWorkers = (s.run && s.run.distributed) || s.workers.length > 0;
  $('workers-tab').hidden = !showWorkers;
  $('worker-count').textContent = showWorkers ? String(s.workers.length) : '';
}

const COLS = {
  method: (r) => r.method, name: (r) => r.name, count: (r) => r.count, failures: (r) => r.failures,
  p50: (r) => r.percentiles_ms[P.p50], p90: (r) => r.percentiles_ms[P.p90],
  p95: (r) => r.percentiles_ms[P.p95], p99: (r) => r.percentiles_ms[P.p99],
  avg_ms: (r) => r.avg_ms, min_ms: (r) => r.min_ms, max_ms: (r) => r.max_ms,
  avg_content_size: (r) => r.avg_content_size,
};

function rowCells(r, live) {
  const rate = live ? r.current_rps : r.rps;
  const frate = live ? r.current_fps : r.failures_per_s;
  return `<td>${esc(r.method)}</td><td class="left">${esc(r.name)}${r.kind === 'completion' ? ' <span class="muted">(completion)</span>' : ''}</td>` +
    `<td>${num(r.count)}</td><td class="${r.failures ? 'bad' : ''}">${num(r.failures)}</td>` +
    `<td>${ms(r.percentiles_ms[P.p50])}</td><td>${ms(r.percentiles_ms[P.p90])}</td>` +
    `<td>${ms(r.percentiles_ms[P.p95])}</td><td>${ms(r.percentiles_ms[P.p99])}</td>` +
    `<td>${ms(r.avg_ms)}</td><td>${ms(r.min_ms)}</td><td>${ms(r.max_ms)}</td>` +
    `<td>${num(r.avg_content_size)}</td><td>${num(rate, 1)}</td><td>${num(frate, 2)}</td>`;
}

function renderStats(s) {
  const live = s.status === 'running' || s.status === 'stopping';
  const rows = s.requests.slice();
  const { key, dir } = ui.sort;
  const val = key === 'rps' ? (r) => (live ? r.current_rps : r.rps)
    : key === 'fps' ? (r) => (live ? r.current_fps : r.failures_per_s) : COLS[key];
  if (val) rows.sort((a, b) => { const x = val(a), y = val(b); return (x < y ? -1 : x > y ? 1 : 0) * dir; });
  const t = $('stats-table');
  t.tBodies[0].innerHTML = rows.map((r) => `<tr class="${r.kind === 'completion' ? 'completion' : ''}">${rowCells(r, live)}</tr>`).join('');
  t.tFoot.innerHTML = s.aggregated && rows.length ? `<tr>${rowCells({ ...s.aggregated, method: '', name: 'Aggregated' }, live)}</tr>` : '';
  $('stats-empty').hidden = rows.length > 0;
  $('rps-head').textContent = live ? 'Current RPS' : 'RPS';
  $('fps-head').textContent = live ? 'Current failures/s' : 'Failures/s';
  for (const th of t.tHead.querySelectorAll('th[data-key]')) {
    th.classList.toggle('sorted', th.dataset.key === key);
    th.classList.toggle('asc', th.dataset.key === key && dir === 1);
  }
}

function sortBy(k) {
  ui.sort = ui.sort.key === k ? { key: k, dir: -ui.sort.dir } : { key: k, dir: (k === 'name' || k === 'method') ? 1 : -1 };
  schedule();
}

// ---------- charts (uPlot) ----------
const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];

function chart(id, title, series, data, yLabel) {
  const el = $(id);
  const width = Math.max(320, el.clientWidth - 16);
  let u = ui.charts[id];
  if (u && u.series.length !== series.length + 1) { u.destroy(); u = null; }
  if (!u) {
    el.innerHTML = '';
    u = new uPlot({
      title, width, height: 220,
      scales: { x: { time: true } },
      axes: [{}, { label: yLabel, size: 60 }],
      series: [{}, ...series.map((s, i) => ({ label: s, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true }))],
    }, data, el);
    ui.charts[id] = u;
  } else {
    if (Math.abs(u.width - width) > 4) u.setSize({ width, height: 220 });
    u.setData(data);
  }
}

function renderCharts(s) {
  const h = s.history;
  const t0 = s.run ? Date.parse(s.run.started_at) / 1000 : 0;
  const x = h.t.map((t) => t0 + t);
  $('chart-points').textContent = String(h.t.length);
  chart('chart-rps', 'Requests/s and failures/s', ['requests/s', 'failures/s'], [x, h.rps, h.fps], 'per second');
  chart('chart-rt', 'Response times (ms, each second)', ['p50', 'p95', 'p99'], [x, h.p50, h.p95, h.p99], 'ms');
  chart('chart-users', 'Users', ['users'], [x, h.users], 'users');
}

// ---------- server side ----------
const SERVER_CHARTS = [
  { id: 'db', title: 'Database connections', keys: (k) => ['db_pool_in_use', 'db_pool_max', 'pg_connections', 'pg_active'].filter((x) => k.has(x)) },
  { id: 'queues', title: 'Job queue depth', keys: (k) => [...k].filter((x) => x.startsWith('queue_depth:')).sort() },
  { id: 'cache', title: 'Cache hit rate (%)', keys: (k) => ['cache_hit_rate'].filter((x) => k.has(x)), scale: 100 },
  { id: 'redis', title: 'Redis memory (MB)', keys: (k) => ['redis_used_memory'].filter((x) => k.has(x)), scale: 1 / 1048576 },
  { id: 'cpu', title: 'Server CPU (cores)', keys: (k) => ['cpu_cores'].filter((x) => k.has(x)) },
  { id: 'srps', title: 'Server requests/s', keys: (k) => ['server_rps'].filter((x) => k.has(x)) },
];

function latest(samples, key) {
  for (let i = samples.length - 1; i >= 0; i--) if (key in samples[i].values) return samples[i].values[key];
  return null;
}

function renderServer(s) {
  const sv = s.server, samples = sv.samples;
  const keys = new Set(samples.flatMap((x) => Object.keys(x.values)));
  $('server-empty').hidden = samples.length > 0;
  $('server-notes').innerHTML = sv.notes.map((n) => `<li>${esc(n)}</li>`).join('');
  const card = (label, value, sub) => `<div class="card"><span>${esc(label)}</span><b>${value}</b>${sub ? ` <small>${esc(sub)}</small>` : ''}</div>`;
  const L = (k) => latest(samples, k);
  const cards = [];
  if (keys.has('db_pool_in_use')) cards.push(card('DB pool in use', num(L('db_pool_in_use')), L('db_pool_max') != null ? `of ${num(L('db_pool_max'))}` : ''));
  if (keys.has('pg_connections')) cards.push(card('PostgreSQL connections', num(L('pg_connections')), L('pg_connection_usage') != null ? pct(L('pg_connection_usage')) + ' of max' : ''));
  for (const k of [...keys].filter((x) => x.startsWith('queue_depth:')).sort()) cards.push(card('Queue ' + k.slice(12), num(L(k)), 'waiting'));
  if (keys.has('cache_hit_rate')) cards.push(card('Cache hit rate', pct(L('cache_hit_rate')), 'last interval'));
  if (keys.has('redis_used_memory')) cards.push(card('Redis memory', num(L('redis_used_memory') / 1048576, 1) + ' MB', L('redis_memory_usage') != null ? pct(L('redis_memory_usage')) + ' of maxmemory' : ''));
  if (keys.has('cpu_cores')) cards.push(card('Server CPU', num(L('cpu_cores'), 2), 'cores'));
  if (keys.has('server_rps')) cards.push(card('Server requests/s', num(L('server_rps'), 1), ''));
  $('server-cards').innerHTML = cards.join('');

  const wanted = SERVER_CHARTS.map((c) => ({ ...c, k: c.keys(keys) })).filter((c) => c.k.length);
  const sig = wanted.map((c) => c.id + ':' + c.k.join(',')).join('|');
  const box = $('server-charts');
  if (sig !== ui.serverKeys) {
    for (const id of Object.keys(ui.charts)) if (id.startsWith('srv-')) { ui.charts[id].destroy(); delete ui.charts[id]; }
    box.innerHTML = wanted.map((c) => `<div class="chart" id="srv-${c.id}"></div>`).join('');
    ui.serverKeys = sig;
  }
  const t0 = s.run ? Date.parse(s.run.started_at) / 1000 : 0;
  const x = samples.map((p) => t0 + p.t);
  for (const c of wanted) {
    const ys = c.k.map((k) => samples.map((p) => (k in p.values ? p.values[k] * (c.scale || 1) : null)));
    chart('srv-' + c.id, c.title, c.k.map((k) => k.replace('queue_depth:', '')), [x, ...ys], '');
  }
}

// ---------- failures, grading, workers, downloads ----------
function renderFailures(s) {
  $('failures-table').tBodies[0].innerHTML = s.failures.map((f) =>
    `<tr><td>${esc(f.method)}</td><td class="left">${esc(f.name)}</td><td>${esc(f.category)}</td><td class="left">${esc(f.error)}</td><td>${num(f.occurrences)}</td></tr>`).join('');
  $('failures-empty').hidden = s.failures.length > 0;
  $('notrun-table').tBodies[0].innerHTML = s.not_run.map((n) =>
    `<tr><td>${esc(n.method)}</td><td class="left">${esc(n.name)}</td><td>${num(n.skipped)}</td><td>${num(n.unmet)}</td></tr>`).join('');
  $('notrun-empty').hidden = s.not_run.length > 0;
}

function thresholdState(t, g) {
  if (t.skipped) return 'skipped';
  if (t.measured == null) return g.last ? 'fail' : 'pending';
  return t.passed ? 'pass' : 'fail';
}

function renderGrading(s) {
  const g = s.grading;
  const v = $('verdict');
  if (!g) {
    v.textContent = s.run ? 'graded every few seconds once data comes in' : 'not graded yet';
    v.className = 'verdict'; $('graded-at').textContent = '';
    $('thresholds-table').tBodies[0].innerHTML = ''; $('grades-table').tBodies[0].innerHTML = '';
    $('thresholds-empty').hidden = true;
  } else {
    v.textContent = g.verdict;
    v.className = 'verdict ' + (g.verdict.startsWith('PASS') ? 'pass' : g.verdict.startsWith('FAIL') ? 'fail' : '');
    $('graded-at').textContent = g.last ? '(final)' : `(so far, at ${clock(g.at_s)})`;
    $('thresholds-table').tBodies[0].innerHTML = g.thresholds.map((t) => {
      const st = thresholdState(t, g);
      const label = st === 'pending' ? 'no data yet' : st;
      return `<tr><td class="left">${esc(t.scope)}</td><td class="left"><code>${esc(t.expr)}</code></td>` +
        `<td>${t.measured == null ? '-' : num(t.measured, 3)}</td><td><span class="grade ${st}">${label}</span></td><td class="left muted">${esc(t.note)}</td></tr>`;
    }).join('');
    $('thresholds-empty').hidden = g.thresholds.length > 0;
    $('grades-table').tBodies[0].innerHTML = g.grades.map((r) =>
      `<tr class="${r.in_verdict ? '' : 'off'}"><td class="left">${esc(r.metric)} <span class="muted">(${esc(r.table)})</span></td>` +
      `<td>${esc(r.target)}</td><td>${esc(r.acceptable)}</td><td>${esc(r.threshold)}</td>` +
      `<td class="left">${esc(r.measured_text)}</td><td><span class="grade ${cls(r.grade)}">${esc(r.grade.replace(/_/g, ' '))}</span></td>` +
      `<td class="left muted">${esc(r.source)}</td></tr>`).join('');
  }
  const c = s.capacity;
  $('capacity').hidden = !c;
  if (c) {
    $('capacity-table').tBodies[0].innerHTML = c.steps.map((st) =>
      `<tr><td>${num(st.users)}</td><td>${num(st.start_s, 0)}</td><td>${num(st.end_s, 0)}</td><td>${num(st.requests)}</td>` +
      `<td>${num(st.rps, 1)}</td><td>${pct(st.error_rate)}</td><td>${ms(st.p95_ms)}</td><td>${st.broke ? '<span class="grade fail">broke</span>' : '<span class="grade pass">held</span>'}</td></tr>`).join('');
    $('capacity-result').textContent = c.breaking_users != null
      ? `Broke at ${c.breaking_users} users (${c.reason}); last step that held: ${c.last_good_users ?? 'none'}.`
      : (c.stopped_by ? `Stopped: ${c.stopped_by}.` : 'Nothing broke so far.');
  }
}

function renderWorkers(s) {
  const now = Date.now();
  $('workers-table').tBodies[0].innerHTML = s.workers.map((w) => {
    const ago = Math.max(0, (now - Date.parse(w.last_seen)) / 1000);
    return `<tr><td class="left">${esc(w.name)}</td><td>${esc(w.state)}</td><td>${num(w.users)}</td><td>${num(w.requests)}</td>` +
      `<td class="${w.failures ? 'bad' : ''}">${num(w.failures)}</td><td>${num(w.cpu_cores, 2)}</td><td>${isFinite(ago) ? clock(ago) + ' ago' : '-'}</td></tr>`;
  }).join('');
  $('workers-empty').hidden = s.workers.length > 0;
}

const FILES = {
  'report.html': 'HTML report (charts, tables, grading)',
  'stats.csv': 'Statistics per request (Locust format)',
  'stats_history.csv': 'Statistics history (Locust format)',
  'failures.csv': 'Failures (Locust format)',
  'summary.json': 'Summary (everything, for pique load compare)',
};

function renderDownloads(s) {
  const files = (s.outcome && s.outcome.files) || [];
  $('downloads').innerHTML = files.map((f) =>
    `<li><a href="/files/${f}"${f.endsWith('.html') ? ' target="_blank"' : ''}>${esc(f)}</a> <span class="muted">${esc(FILES[f] || '')}</span></li>`).join('');
  $('downloads-empty').hidden = files.length > 0;
}

// ---------- wiring ----------
function showTab(name) {
  ui.tab = name;
  for (const b of document.querySelectorAll('.tabs button')) b.classList.toggle('active', b.dataset.tab === name);
  for (const p of document.querySelectorAll('.pane')) p.classList.toggle('active', p.dataset.pane === name);
  schedule();
}

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => showTab(b.dataset.tab));
  for (const th of document.querySelectorAll('#stats-table th[data-key]')) th.addEventListener('click', () => sortBy(th.dataset.key));
  $('start-form').addEventListener('submit', start);
  $('steer-form').addEventListener('submit', steer);
  $('stop').addEventListener('click', stop);
  $('plan').addEventListener('change', describePlan);
  $('new-run').addEventListener('click', () => { ui.formOpen = true; schedule(); });
  window.addEventListener('resize', schedule);
  loadPlans().catch((e) => { $('conn').textContent = 'cannot load plans: ' + e; });
  connect();
});
