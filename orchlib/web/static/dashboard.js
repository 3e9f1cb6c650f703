// orchlib dashboard: plans, DAG, task table, log and answers, from the JSON API of
// `doit serve` (docs/state.md). Live through server-sent events only: no polling.
"use strict";

// Opened from the URL `doit serve` printed: the server answered with the token in an
// HttpOnly cookie, which every later request carries; take the token out of the address
// bar (and the history) so it is not shown, bookmarked or shared.
if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname + location.hash);
}
let WORDS = {}; // status -> { word, tone }: GET /api/words, the table every screen reads
const LOG_KEEP = 512 * 1024; // characters of log kept on the page
const GEOM = { w: 220, h: 28, gapX: 56, gapY: 8, pad: 10, head: 22 };

const view = {
  plans: new Map(), // planId -> line of GET /api/plans
  planId: null, // the plan shown
  plan: null, // its state.json
  tasks: new Map(), // taskId -> record
  rows: new Map(), // taskId -> <tr>
  nodes: new Map(), // taskId -> <g>
  selected: null,
  pending: new Set(), // tasks to redraw at the next frame
  log: null, // { source, taskId, attempt, latest }
  loadedOnce: false,
};

const $ = (id) => document.getElementById(id);

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function stateClass(status) {
  return Object.hasOwn(WORDS, status) ? `t-${WORDS[status].tone}` : "t-other";
}

function stateWord(status) {
  return Object.hasOwn(WORDS, status) ? WORDS[status].word : status;
}

function api(path) {
  return fetch(path, { cache: "no-store" }).then((r) => {
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    return r.json();
  });
}

function taskUrl(taskId, tail) {
  return `/api/plans/${encodeURIComponent(view.planId)}/tasks/${encodeURIComponent(taskId)}/${tail}`;
}

// --- formatting ---------------------------------------------------------------------

function seconds(total) {
  if (total == null || !isFinite(total)) return "";
  if (total < 10) return `${Math.max(0, total).toFixed(1)}s`;
  total = Math.round(total);
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), s = total % 60;
  if (h) return `${h}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

// Elapsed is work (DESIGN §15): earlier attempts' running time plus the running one's.
function workStart(t) {
  return new Date(Date.parse(t.startedAt) - (t.worked || 0) * 1000).toISOString();
}

function elapsed(t) {
  if (t.status === "IN_PROGRESS" && t.startedAt) return seconds((Date.now() - Date.parse(workStart(t))) / 1000);
  return seconds(t.duration ?? (t.worked || null));
}

function cost(t) {
  const usage = t.usage && typeof t.usage === "object" ? t.usage : {};
  const found = [t.costUsd, t.cost, usage.cost_usd, usage.costUsd].find((v) => typeof v === "number");
  return found == null ? "" : `$${found.toFixed(found < 1 ? 4 : 2)}`;
}

// Spend against budget (DESIGN §15): state.json's `spend` and `budget` of the task.
function budgetText(t) {
  const s = t.spend && typeof t.spend === "object" ? t.spend : {};
  const b = t.budget && typeof t.budget === "object" ? t.budget : {};
  const parts = [];
  if (typeof b.usd === "number") parts.push(`$${(s.usd || 0).toFixed(2)} of $${b.usd.toFixed(2)}`);
  if (typeof b.tokens === "number") parts.push(`${(s.tokens || 0).toLocaleString("en")} of ${b.tokens.toLocaleString("en")} tok`);
  if (!parts.length && typeof s.usd === "number" && s.usd > 0) parts.push(`$${s.usd.toFixed(2)} spent`);
  return parts.join(", ");
}

function openQuestion(t) {
  return (t.questions || []).filter((q) => q && q.answer == null).pop();
}

function last(t) {
  const q = openQuestion(t), asked = (t.questions || []).slice(-1)[0];
  if (t.status === "QUESTION" && q) return `❓ ${q.question}`;
  if (t.status === "QUESTION" && asked) return `answered “${asked.answer}”: run doit to resume`;
  if (t.status === "ERROR") return t.error || "";
  if (t.status === "DONE") return t.summary || "";
  if (t.status === "SKIPPED") return `skipped: ${(t.skippedBecause || []).join(", ")}`;
  if (t.status === "PAUSED") return `usage limit: waits until ${t.pausedUntil || "the reset"}`;
  if (t.status === "PENDING") {
    if (t.held && t.pendingReason) return `held: ${t.pendingReason}`;
    const blocked = (t.dependsOn || []).filter((d) => (view.tasks.get(d) || {}).status !== "DONE");
    if (blocked.length) return `waits for ${blocked.join(", ")}`;
    return t.pendingReason ? `would run: ${t.pendingReason}` : "";
  }
  return t.lastUpdate || t.summary || t.error || "";
}

// --- plans list -----------------------------------------------------------------------

function renderPlans() {
  const items = [...view.plans.values()].map((p) => {
    const cls = `p-${p.status}${p.id === view.planId ? " current" : ""}`;
    return `<a href="#plan=${encodeURIComponent(p.id)}" class="${esc(cls)}" data-id="${esc(p.id)}">` +
      `<strong>${esc(p.id)}</strong> <span class="badge p-${esc(p.status)}">${esc(p.status)}</span> ` +
      `<span class="muted">${p.done}/${p.total}</span><span class="sum">${esc(p.summary)}</span></a>`;
  });
  $("plans").innerHTML = items.join("") || `<p class="muted">No plan in this checkout.</p>`;
}

function renderHead() {
  const p = view.plan, line = view.plans.get(view.planId) || {};
  const counts = Object.entries(line.counts || {}).filter(([, n]) => n)
    .map(([s, n]) => `<span><span class="badge ${stateClass(s)}">${esc(stateWord(s))}</span> ${n}</span>`);
  $("plan-head").innerHTML = `<h2>${esc(view.planId)} <span class="badge p-${esc(p.status)}">` +
    `${esc(p.status)}</span></h2><p class="muted">${esc(p.summary)}</p>` +
    `<p class="counts" id="counts">${counts.join("")}</p>`;
}

// --- DAG by phase ---------------------------------------------------------------------

function phases() {
  const given = Array.isArray(view.plan.phases) ? view.plan.phases : [];
  const placed = new Set(given.flat());
  const extra = [...view.tasks.values()].filter((t) => !placed.has(t.id));
  const cols = given.map((ids) => ids.filter((id) => view.tasks.has(id)));
  for (const t of extra) {
    const at = Math.max(0, (t.phase || cols.length + 1) - 1);
    while (cols.length <= at) cols.push([]);
    cols[at].push(t.id);
  }
  return cols;
}

function nodeHtml(t, x, y) {
  const g = GEOM, pct = t.status === "DONE" ? 100 : Math.max(0, Math.min(100, t.percent || 0));
  const label = `${t.id}: ${t.title || ""}`;
  const shown = label.length > 32 ? `${label.slice(0, 31)}…` : label;
  return `<g class="node ${stateClass(t.status)}" data-id="${esc(t.id)}" transform="translate(${x},${y})">` +
    `<title>${esc(label)} — ${esc(stateWord(t.status))}</title>` +
    `<rect class="box" width="${g.w}" height="${g.h}" rx="5"/>` +
    `<rect class="fill" width="${(g.w * pct) / 100}" height="${g.h}" rx="5"/>` +
    `<text x="8" y="18">${esc(shown)}</text></g>`;
}

function renderDag() {
  const g = GEOM, cols = phases(), at = new Map(), parts = [], edges = [];
  cols.forEach((ids, c) => {
    const x = g.pad + c * (g.w + g.gapX);
    parts.push(`<text class="phase" x="${x}" y="${g.pad + 10}">Phase ${c + 1}</text>`);
    ids.forEach((id, r) => {
      const y = g.pad + g.head + r * (g.h + g.gapY);
      at.set(id, [x, y]);
      parts.push(nodeHtml(view.tasks.get(id), x, y));
    });
  });
  for (const t of view.tasks.values()) {
    const to = at.get(t.id);
    for (const dep of t.dependsOn || []) {
      const from = at.get(dep);
      if (!from || !to) continue;
      const x1 = from[0] + g.w, y1 = from[1] + g.h / 2, x2 = to[0], y2 = to[1] + g.h / 2;
      const mid = (x1 + x2) / 2;
      edges.push(`<path class="edge" d="M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}"/>`);
    }
  }
  const rows = Math.max(0, ...cols.map((ids) => ids.length));
  const svg = $("dag");
  svg.setAttribute("width", String(g.pad * 2 + cols.length * (g.w + g.gapX)));
  svg.setAttribute("height", String(g.pad * 2 + g.head + rows * (g.h + g.gapY)));
  svg.innerHTML = edges.join("") + parts.join("");
  view.nodes = new Map([...svg.querySelectorAll("g.node")].map((n) => [n.dataset.id, n]));
}

function patchNode(t) {
  const old = view.nodes.get(t.id);
  if (!old) return;
  const [, x, y] = /translate\(([^,]+),([^)]+)\)/.exec(old.getAttribute("transform"));
  const holder = document.createElementNS("http://www.w3.org/2000/svg", "g");
  holder.innerHTML = nodeHtml(t, x, y);
  const fresh = holder.firstChild;
  if (t.id === view.selected) fresh.classList.add("selected");
  old.replaceWith(fresh);
  view.nodes.set(t.id, fresh);
}

// --- task table ---------------------------------------------------------------------

function rowHtml(t) {
  const pct = t.status === "DONE" ? 100 : t.percent || 0;
  const running = t.status === "IN_PROGRESS" && t.startedAt;
  return `<tr data-id="${esc(t.id)}" data-status="${esc(t.status)}" class="${t.id === view.selected ? "selected" : ""}">` +
    `<td class="id"><strong>${esc(t.id)}</strong></td><td>${esc(t.title)}</td><td>${esc(t.project)}</td>` +
    `<td><span class="badge ${stateClass(t.status)}">${esc(stateWord(t.status))}</span></td>` +
    `<td class="num"><progress max="100" value="${pct}"></progress> ${pct}%</td>` +
    `<td class="num">${t.attempt || ""}${t.attempt && t.agent ? ` <small>${esc(t.agent)}</small>` : ""}</td>` +
    `<td class="num elapsed"${running ? ` data-start="${esc(workStart(t))}"` : ""}>${esc(elapsed(t))}</td>` +
    `<td class="num">${esc(cost(t))}${budgetText(t) ? ` <small class="budget">${esc(budgetText(t))}</small>` : ""}</td>` +
    `<td class="last">${esc(last(t))}</td></tr>`;
}

function renderTable() {
  const body = document.querySelector("#tasks tbody");
  body.innerHTML = [...view.tasks.values()].map(rowHtml).join("");
  view.rows = new Map([...body.rows].map((r) => [r.dataset.id, r]));
}

function patchRow(t) {
  const old = view.rows.get(t.id);
  if (!old) return;
  const holder = document.createElement("tbody");
  holder.innerHTML = rowHtml(t);
  const fresh = holder.rows[0];
  old.replaceWith(fresh);
  view.rows.set(t.id, fresh);
}

function tick() {
  for (const cell of document.querySelectorAll("td.elapsed[data-start]")) {
    cell.textContent = seconds((Date.now() - Date.parse(cell.dataset.start)) / 1000);
  }
}

// --- the selected task: facts, questions, answer, log ---------------------------------

function select(taskId) {
  highlight(taskId);
  history.replaceState(null, "", `${location.search}#plan=${encodeURIComponent(view.planId)}&task=${encodeURIComponent(taskId)}`);
  renderDetail(true);
}

function highlight(taskId) {
  view.selected = taskId;
  for (const [id, el] of view.rows) el.classList.toggle("selected", id === taskId);
  for (const [id, el] of view.nodes) el.classList.toggle("selected", id === taskId);
}

function renderDetail(restartLog) {
  const t = view.tasks.get(view.selected);
  $("detail").hidden = !t;
  if (!t) return stopLog();
  $("detail-title").textContent = `${view.planId}:${t.id} — ${t.title || ""}`;
  const facts = [["state", `${stateWord(t.status)}${t.status === "IN_PROGRESS" ? ` ${t.percent || 0}%` : ""}`],
    ["project", t.project], ["attempt", t.attempt], ["agent", t.agent], ["terminal", t.terminalId],
    ["started", t.startedAt], ["finished", t.finishedAt], ["elapsed", elapsed(t)], ["cost", cost(t)], ["spend", budgetText(t)],
    ["summary", t.summary], ["error", t.error], ["last update", t.lastUpdate], ["log", t.log]];
  $("detail-facts").innerHTML = facts.filter(([, v]) => v !== "" && v != null && v !== 0)
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("");
  $("questions").innerHTML = (t.questions || []).map((q) =>
    `<div class="question${q.answer == null ? "" : " answered"}"><strong>Question:</strong> ${esc(q.question)}` +
    (q.answer == null ? "" : `<br><strong>Answer:</strong> ${esc(q.answer)}`) + `</div>`).join("");
  renderAnswerForm(t);
  renderApprovalForm(t);
  const mine = view.log && view.log.taskId === t.id;
  // Follow the latest attempt unless the reader picked an older one.
  if (restartLog || !mine || (view.log.latest && view.log.attempt !== (t.attempt || 0))) {
    startLog(t, t.attempt || 0, true);
  }
  renderAttempts(t);
  probeReview(t, view.log.attempt);
  renderReviewToggle();
}

function renderAnswerForm(t) {
  const open = openQuestion(t), form = $("answer-form");
  form.hidden = !open;
}

function renderApprovalForm(t) {
  const waits = t.status === "APPROVAL";
  $("approval-form").hidden = !waits;
}

// `doit approve` (no feedback) or `doit reject` (what to change); the token is in its cookie.
async function decide(how, feedback) {
  const msg = $("approval-msg");
  msg.textContent = "sending…";
  const r = await fetch(taskUrl(view.selected, how), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(feedback ? { feedback } : {}),
  });
  const d = await r.json().catch(() => ({}));
  msg.textContent = r.ok ? d.message : `not done: ${d.error || r.status}`;
  if (r.ok) $("reject-text").value = "";
}

function renderAttempts(t) {
  const select = $("attempt"), n = t.attempt || 0, chosen = view.log.attempt;
  const options = [];
  for (let i = n; i >= 1; i--) options.push(`<option value="${i}"${i === chosen ? " selected" : ""}>${i}</option>`);
  select.innerHTML = options.join("");
}

// A reviewed attempt has its reviewer's transcript beside its own (DESIGN §16); the
// "review" box beside the attempt shows it. Whether there is one is asked again only when
// the task's state or last line changed since (a review starts mid-attempt); a found one is kept.
const reviewed = new Map(); // "plan:task:attempt" -> true, or the state it was last asked in

async function probeReview(t, attempt) {
  const key = `${view.planId}:${t.id}:${attempt}`, when = `${t.status}|${t.lastUpdate || ""}`;
  if (!attempt || reviewed.get(key) === true || reviewed.get(key) === when) return;
  reviewed.set(key, when);
  const r = await fetch(taskUrl(t.id, `log?attempt=${attempt}&review=1&tail=0`)).catch(() => null);
  if (r && r.ok) {
    reviewed.set(key, true);
    renderReviewToggle();
  }
}

function renderReviewToggle() {
  const log = view.log;
  const has = !!log && reviewed.get(`${view.planId}:${log.taskId}:${log.attempt}`) === true;
  $("review-box").hidden = !has;
  $("review").checked = has && !!log.review;
}

function stopLog() {
  if (view.log && view.log.source) view.log.source.close();
  view.log = null;
}

function startLog(t, attempt, latest, review = false) {
  stopLog();
  const pre = $("log");
  pre.textContent = "";
  view.log = { taskId: t.id, attempt, latest, review, source: null };
  const which = review ? "&review=1" : ""; // the reviewer's transcript, not the attempt's
  // The last MiB as plain text: a whole transcript can be a gigabyte (curl gets it all).
  $("raw-log").href = taskUrl(t.id, `log?attempt=${attempt}${which}&tail=1048576`);
  if (!attempt) {
    $("log-state").textContent = "no attempt yet";
    return;
  }
  $("log-state").textContent = "loading…";
  const source = new EventSource(taskUrl(t.id, `log/events?attempt=${attempt}${which}`));
  view.log.source = source;
  source.addEventListener("log", (e) => {
    const d = JSON.parse(e.data), atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    let text = pre.textContent + d.text;
    if (text.length > LOG_KEEP) text = `…\n${text.slice(text.length - LOG_KEEP)}`;
    pre.textContent = text;
    if (atEnd) pre.scrollTop = pre.scrollHeight;
    $("log-state").textContent = "streaming";
  });
  source.addEventListener("end", () => {
    source.close();
    $("log-state").textContent = review ? "review finished" : "attempt finished";
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) $("log-state").textContent = "no log for this attempt yet";
  };
}

async function sendAnswer(event) {
  event.preventDefault();
  const text = $("answer-text").value, msg = $("answer-msg");
  msg.textContent = "sending…";
  const r = await fetch(taskUrl(view.selected, "answer"), {
    method: "POST",
    headers: { "Content-Type": "application/json" }, // the token goes in its cookie
    body: JSON.stringify({ answer: text }),
  });
  const d = await r.json().catch(() => ({}));
  msg.textContent = r.ok ? d.message : `not answered: ${d.error || r.status}`;
  if (r.ok) $("answer-text").value = "";
}

// --- loading and live updates ---------------------------------------------------------

function wanted() {
  const hash = new URLSearchParams(location.hash.slice(1));
  return { plan: hash.get("plan"), task: hash.get("task") };
}

async function refresh() {
  if (!Object.keys(WORDS).length) WORDS = await api("/api/words");
  const lines = await api("/api/plans");
  view.plans = new Map(lines.map((p) => [p.id, p]));
  const want = wanted().plan;
  const planId = view.plans.has(want) ? want : view.plans.has(view.planId) ? view.planId : lines.length ? lines[0].id : null;
  renderPlans();
  if (planId) await showPlan(planId);
}

async function showPlan(planId) {
  const data = await api(`/api/plans/${encodeURIComponent(planId)}`);
  if (planId !== view.planId) stopLog();
  view.planId = planId;
  view.plan = data;
  view.tasks = new Map((data.tasks || []).map((t) => [t.id, t]));
  renderPlans();
  renderHead();
  renderDag();
  renderTable();
  const task = view.selected && view.tasks.has(view.selected) ? view.selected : wanted().task;
  view.selected = view.tasks.has(task) ? task : null;
  highlight(view.selected);
  renderDetail(false);
  if (!view.loadedOnce) {
    view.loadedOnce = true;
    document.body.dataset.renderMs = String(Math.round(performance.now()));
    console.log(`orchlib-dashboard: ${view.tasks.size} tasks rendered at ${document.body.dataset.renderMs} ms`);
  }
  document.body.dataset.plan = planId;
}

function flush() {
  for (const id of view.pending) {
    const t = view.tasks.get(id);
    if (!t) continue;
    patchRow(t);
    patchNode(t);
  }
  if (view.pending.has(view.selected)) renderDetail(false);
  view.pending.clear();
}

function onUpdate(e) {
  const d = JSON.parse(e.data);
  if (d.planId !== view.planId || !view.tasks.has(d.taskId)) return;
  view.tasks.set(d.taskId, d.task);
  if (!view.pending.size) setTimeout(flush, 30); // one redraw for a burst of events
  view.pending.add(d.taskId);
  for (const t of view.tasks.values()) {
    if ((t.dependsOn || []).includes(d.taskId) && t.status === "PENDING") view.pending.add(t.id);
  }
}

function onPlan(e) {
  const d = JSON.parse(e.data);
  view.plans.set(d.id, d);
  renderPlans();
  if (d.planId !== view.planId) return;
  if (d.reload) showPlan(d.planId);
  else {
    view.plan.status = d.status;
    renderHead();
  }
}

function connect() {
  const events = new EventSource("/events"), conn = $("conn");
  events.onopen = () => {
    conn.dataset.state = "live";
    conn.textContent = "live";
    refresh().catch((err) => console.error(err));
  };
  events.onerror = () => {
    conn.dataset.state = "down";
    conn.textContent = "reconnecting…";
  };
  events.addEventListener("update", onUpdate);
  events.addEventListener("plan", onPlan);
}

function boot() {
  $("plans").addEventListener("click", (e) => {
    const a = e.target.closest("a[data-id]");
    if (!a) return;
    e.preventDefault();
    view.selected = null;
    history.replaceState(null, "", `${location.search}#plan=${encodeURIComponent(a.dataset.id)}`);
    showPlan(a.dataset.id);
  });
  document.querySelector("#tasks tbody").addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-id]");
    if (row) select(row.dataset.id);
  });
  $("dag").addEventListener("click", (e) => {
    const node = e.target.closest("g.node");
    if (node) select(node.dataset.id);
  });
  $("attempt").addEventListener("change", (e) => {
    const t = view.tasks.get(view.selected), n = Number(e.target.value);
    if (!t) return;
    startLog(t, n, n === t.attempt);
    probeReview(t, n);
    renderReviewToggle();
  });
  $("review").addEventListener("change", (e) => {
    const t = view.tasks.get(view.selected), log = view.log;
    if (t && log) startLog(t, log.attempt, log.latest, e.target.checked);
  });
  $("answer-form").addEventListener("submit", sendAnswer);
  $("approve-send").addEventListener("click", () => decide("approve", ""));
  $("approval-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("reject-text").value;
    if (text.trim()) decide("reject", text);
    else $("approval-msg").textContent = "say what to change to reject it";
  });
  setInterval(tick, 1000); // running tasks' elapsed time, counted here: no request
  connect();
}

boot();
