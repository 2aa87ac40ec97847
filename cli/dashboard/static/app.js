/* global document, window, EventSource, fetch, location */
// The Verso dashboard's page: two views (#/ every release, #/ns/NS/app/APP one release) fed
// by server-sent events from the CLI process that serves this file. No framework, no CDN:
// plain DOM and inline SVG charts. Writes go back to the same process with the CSRF token.
"use strict";

const csrf = document.querySelector('meta[name="verso-csrf"]').content;
const scope = document.querySelector('meta[name="verso-scope"]').content;
const main = document.getElementById("main");
const live = document.getElementById("live");
let stream;

const esc = (s) =>
  String(s ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );
const pct = (n) => (n === undefined || n === null ? "–" : `${Math.round(n * 100) / 100}%`);
const ms = (n) => (n === undefined || n === null ? "–" : `${Math.round(n * 100) / 100}ms`);

function age(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "–";
  const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 120) return `${m}m`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h` : `${Math.floor(h / 24)}d`;
}

const badge = (phase) => `<span class="badge phase-${esc(phase)}">${esc(phase)}</span>`;

function weightBar(desired, actual) {
  const a =
    actual === undefined
      ? ""
      : `<span class="actual" style="left:${Math.min(actual, 100)}%"></span>`;
  return `<span class="weightbar"><span class="desired" style="width:${desired}%"></span>${a}</span>`;
}

function connect(url, handlers) {
  if (stream) stream.close();
  stream = new EventSource(url);
  live.textContent = "connecting…";
  live.className = "live";
  stream.onopen = () => {
    live.textContent = "live";
    live.className = "live on";
  };
  stream.onerror = () => {
    live.textContent = "reconnecting…";
    live.className = "live off";
  };
  for (const [event, fn] of Object.entries(handlers))
    stream.addEventListener(event, (e) => fn(JSON.parse(e.data)));
}

// ---- every release ----------------------------------------------------------------------

function showList() {
  document.getElementById("scope").textContent = scope ? `namespace ${scope}` : "all namespaces";
  main.innerHTML = `<h1>Releases</h1><div class="sub" id="list-note"></div>
    <div class="card"><table data-testid="releases"><thead><tr>
    <th>App</th><th>Namespace</th><th>Strategy</th><th>Phase</th><th>Step</th>
    <th>Weight (desired / actual)</th><th>Age</th></tr></thead><tbody id="rows">
    <tr><td colspan="7" class="note">loading…</td></tr></tbody></table></div>`;
  const q = scope ? `?namespace=${encodeURIComponent(scope)}` : "";
  connect(`/api/stream${q}`, {
    list: (data) => {
      document.getElementById("list-note").textContent = data.note ? `Note: ${data.note}` : "";
      const rows = data.items.map(
        (r) => `<tr class="row" data-app="${esc(r.app)}" data-namespace="${esc(r.namespace)}">
          <td><a href="#/ns/${encodeURIComponent(r.namespace)}/app/${encodeURIComponent(r.app)}">${esc(r.app)}</a></td>
          <td>${esc(r.namespace)}</td><td>${esc(r.strategy)}</td><td>${badge(r.phase)}</td>
          <td>${esc(r.step ?? "–")}</td>
          <td>${weightBar(r.desiredWeight, r.actualWeight)}<span data-testid="weights">${pct(r.desiredWeight)} / ${pct(r.actualWeight)}</span></td>
          <td>${age(r.created)}</td></tr>`,
      );
      document.getElementById("rows").innerHTML =
        rows.join("") || `<tr><td colspan="7" class="note">No releases.</td></tr>`;
      for (const tr of document.querySelectorAll("tr.row"))
        tr.onclick = () =>
          (location.hash = `#/ns/${encodeURIComponent(tr.dataset.namespace)}/app/${encodeURIComponent(tr.dataset.app)}`);
    },
    problem: (p) => {
      document.getElementById("rows").innerHTML =
        `<tr><td colspan="7" class="error">${esc(p.message)}</td></tr>`;
    },
  });
}

// ---- charts -----------------------------------------------------------------------------

const COLORS = ["#60a5fa", "#fb923c", "#a78bfa", "#34d399", "#f472b6"];

/**
 * An SVG line chart: series [{name, color, points: [[t, v]]}], an optional dashed threshold
 * line (a gate), y from 0.
 */
function chart(series, { threshold, unit = "", label = "" } = {}) {
  const W = 520;
  const H = 170;
  const L = 56;
  const R = 8;
  const T = 10;
  const B = 22;
  const all = series.flatMap((s) => s.points);
  const ts = all.map((p) => p[0]);
  const t0 = ts.length ? Math.min(...ts) : 0;
  const t1 = ts.length ? Math.max(...ts) : 1;
  const top = Math.max(1e-9, ...all.map((p) => p[1]), threshold ?? 0) * 1.15;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  const fmt = (v) => `${Math.round(v * 100) / 100}${unit}`;
  let svg = `<svg class="chart" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(label)}">`;
  for (const f of [0, 0.5, 1]) {
    const v = top * f;
    svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#23304d"/>`;
    svg += `<text x="${L - 4}" y="${y(v) + 3}" text-anchor="end">${fmt(v)}</text>`;
  }
  if (threshold !== undefined) {
    svg += `<line class="threshold" x1="${L}" x2="${W - R}" y1="${y(threshold)}" y2="${y(threshold)}" stroke="#f87171" stroke-dasharray="5 4"/>`;
    svg += `<text x="${W - R}" y="${y(threshold) - 4}" text-anchor="end" style="fill:#f87171">gate ${fmt(threshold)}</text>`;
  }
  for (const s of series) {
    if (s.points.length === 0) continue;
    const pts = s.points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    svg += `<polyline class="series" data-series="${esc(s.name)}" fill="none" stroke="${s.color}" stroke-width="2" ${s.dash ? 'stroke-dasharray="6 4"' : ""} points="${pts}"/>`;
    if (s.points.length === 1)
      svg += `<circle cx="${x(s.points[0][0])}" cy="${y(s.points[0][1])}" r="3" fill="${s.color}"/>`;
  }
  const span = Math.round((t1 - t0) / 1000);
  svg += `<text x="${L}" y="${H - 6}">${span}s ago</text><text x="${W - R}" y="${H - 6}" text-anchor="end">now</text></svg>`;
  const legend = series
    .map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`)
    .join("");
  return `${svg}<div class="legend">${legend}</div>`;
}

function versionSeries(history, versions, field) {
  return versions.map((v, i) => ({
    name: v.version + (v.role === "release" ? " (release)" : ""),
    color: v.role === "release" ? COLORS[1] : COLORS[i === 0 ? 0 : (i + 1) % COLORS.length],
    points: history
      .filter(
        (h) => h.versions && h.versions[v.version] && h.versions[v.version][field] !== undefined,
      )
      .map((h) => [h.at, h.versions[v.version][field]]),
  }));
}

// ---- one release --------------------------------------------------------------------------

const GATE_NAMES = {
  "error-rate": "error rate",
  p99: "p99",
  "p99-ratio": "p99 / stable p99",
  "min-requests": "requests",
};

function gateValue(g, v) {
  if (v === undefined) return "–";
  return g.unit === "%" ? pct(v) : g.unit === "ms" ? ms(v) : g.unit === "x" ? `${v}x` : String(v);
}

function renderRelease(data) {
  const v = data.view;
  const h = data.history;
  const gate = (name) => v.gates.find((g) => g.gate === name);
  const steps = (v.steps ?? [])
    .map((w, i) => {
      const n = i + 1;
      const cur = Number((v.step ?? "0/").split("/")[0]);
      const cls = v.phase === "Promoted" || n < cur ? "done" : n === cur ? "current" : "";
      return `<span class="step ${cls}">${w}%</span>`;
    })
    .join("");
  const canStep = v.strategy === "canary" && v.steps;
  const buttons = [
    canStep && `<button data-action="promote" class="primary">Promote one step</button>`,
    `<button data-action="promote-full">${v.strategy === "blue-green" ? "Switch" : "Promote fully"}</button>`,
    canStep &&
      (v.paused
        ? `<button data-action="resume">Resume</button>`
        : `<button data-action="pause">Pause</button>`),
    `<button data-action="abort" class="danger">Abort</button>`,
  ]
    .filter(Boolean)
    .join("");
  const versions = v.versions
    .map(
      (
        x,
      ) => `<tr><td>${esc(x.version)}</td><td>${esc(x.role)}</td><td>${esc(x.deployments.join(", "))}</td>
      <td>${x.readyReplicas}/${x.desiredReplicas}</td>
      <td>${x.pods.map((p) => `${esc(p.name)}${p.ready ? "" : " (not ready)"}`).join("<br>") || "–"}</td></tr>`,
    )
    .join("");
  const gates = v.gates
    .map(
      (
        g,
      ) => `<tr data-gate="${esc(g.gate)}"><td>${GATE_NAMES[g.gate]}</td><td>${gateValue(g, g.value)}</td>
      <td>${g.gate === "min-requests" ? "≥" : "≤"} ${gateValue(g, g.threshold)}</td>
      <td>${g.sample === undefined ? "–" : g.baselineSample !== undefined ? `${g.sample} vs ${g.baselineSample}` : g.sample}</td>
      <td class="${g.result === "no data" ? "nodata" : g.result}">${esc(g.result)}</td></tr>`,
    )
    .join("");
  const timeline = [...v.events]
    .reverse()
    .map(
      (e) =>
        `<li class="${esc(e.type)}"><span class="when">${age(e.at)} ago</span><b>${esc(e.reason)}</b> <span class="note">${esc(e.object)}</span><br>${esc(e.message)}${e.count > 1 ? ` (×${e.count})` : ""}</li>`,
    )
    .join("");
  const traffic = v.traffic
    ? v.traffic.versions
        .map(
          (t) =>
            `<tr><td>${esc(t.version)}</td><td>${t.rps}</td><td>${pct(t.errorRate)}</td><td>${ms(t.p99Ms)}</td></tr>`,
        )
        .join("")
    : `<tr><td colspan="4" class="note">${esc(v.trafficNote ?? "measuring…")}</td></tr>`;
  const err = gate("error-rate");
  const p99 = gate("p99");
  const weightSeries = [
    {
      name: "desired",
      color: COLORS[1],
      dash: true,
      points: h.map((s) => [s.at, s.desiredWeight]),
    },
    {
      name: "actual",
      color: "#e2e8f0",
      points: h.filter((s) => s.actualWeight !== undefined).map((s) => [s.at, s.actualWeight]),
    },
  ];
  main.innerHTML = `
    <div class="sub"><a href="#/">Releases</a> / ${esc(v.namespace)}</div>
    <h1 data-testid="title">${esc(v.app)} ${badge(v.phase)}</h1>
    <div class="sub">release <b>${esc(v.deployment)}</b> (version ${esc(v.version)}), ${esc(v.strategy)}${v.step ? `, step ${esc(v.step.replace("/", " of "))}` : ""}
      — <span data-testid="message">${esc(v.reason)}${v.message ? `: ${esc(v.message)}` : ""}</span></div>
    ${v.policyErrors.map((p) => `<div class="error">Invalid: ${esc(p)}</div>`).join("")}
    ${steps ? `<div class="steps">${steps}</div>` : ""}
    ${v.match && v.match.length > 0 ? `<div class="sub" data-testid="match">Match rules, first match decides: ${v.match.map((m) => `<code>${esc(m.rule)}</code> → ${pct(m.weight)}`).join(", ")}; others get the weight</div>` : ""}
    <div class="actions">${buttons}</div>
    <div class="grid">
      <div class="card"><h2>Weight: desired ${pct(v.desiredWeight)}, actual <span data-testid="actual">${pct(v.actualWeight)}</span></h2>${chart(weightSeries, { unit: "%", label: "weight" })}</div>
      <div class="card"><h2>Requests per second</h2>${chart(versionSeries(h, v.versions, "rps"), { label: "rate" })}</div>
      <div class="card"><h2>Error rate (5xx)</h2>${chart(versionSeries(h, v.versions, "errorRate"), { threshold: err && err.threshold, unit: "%", label: "error rate" })}</div>
      <div class="card"><h2>p99 latency</h2>${chart(versionSeries(h, v.versions, "p99Ms"), { threshold: p99 && p99.threshold, unit: "ms", label: "p99" })}</div>
      <div class="card"><h2>Versions</h2><table data-testid="versions"><thead><tr><th>Version</th><th>Role</th><th>Deployment</th><th>Ready</th><th>Pods</th></tr></thead><tbody>${versions}</tbody></table></div>
      <div class="card"><h2>Now</h2><table data-testid="traffic"><thead><tr><th>Version</th><th>req/s</th><th>errors</th><th>p99</th></tr></thead><tbody>${traffic}</tbody></table></div>
      <div class="card"><h2>Gates (last analysis${v.analysis ? ` ${age(v.analysis.at)} ago: ${esc(v.analysis.action)}` : ": none yet"})</h2>
        <table data-testid="gates"><thead><tr><th>Gate</th><th>Value</th><th>Threshold</th><th>Sample</th><th>Result</th></tr></thead><tbody>${gates || `<tr><td colspan="5" class="note">no gates</td></tr>`}</tbody></table></div>
      <div class="card"><h2>Timeline</h2><ul class="timeline" data-testid="timeline">${timeline || `<li class="note">no events</li>`}</ul></div>
    </div>`;
  for (const b of main.querySelectorAll("button[data-action]"))
    b.onclick = () => confirmAction(v, b.dataset.action, b.textContent);
}

const EXPLAIN = {
  promote: "moves the canary to its next step now (at the last step: promotes it).",
  "promote-full": "sends 100% of traffic to the release now (verso.dev/promote=true).",
  pause: "holds the canary at its current step (verso.dev/paused=true).",
  resume: "lets the canary continue (removes verso.dev/paused).",
  abort: "rolls the release back now: all traffic to the stable version (verso.dev/abort=true).",
};

function confirmAction(v, action, label) {
  const modal = document.getElementById("modal");
  document.getElementById("modal-title").textContent = `${label}: ${v.app} (${v.deployment})?`;
  document.getElementById("modal-text").textContent =
    `This ${EXPLAIN[action]} It is written with your own Kubernetes credentials.`;
  modal.hidden = false;
  const close = () => (modal.hidden = true);
  document.getElementById("modal-cancel").onclick = close;
  document.getElementById("modal-confirm").onclick = async () => {
    close();
    await send(v, action);
  };
}

async function send(v, action) {
  try {
    const res = await fetch(
      `/api/releases/${encodeURIComponent(v.namespace)}/${encodeURIComponent(v.app)}/${action}`,
      { method: "POST", headers: { "x-verso-csrf": csrf, "content-type": "application/json" } },
    );
    const body = await res.json();
    toast(res.ok ? body.summary : body.message, !res.ok);
  } catch (e) {
    toast(String(e), true);
  }
}

function toast(text, bad) {
  const t = document.getElementById("toast");
  t.textContent = text;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), bad ? 15000 : 6000);
}

function showRelease(ns, app) {
  document.getElementById("scope").textContent = `namespace ${ns}`;
  main.innerHTML = `<div class="sub"><a href="#/">Releases</a> / ${esc(ns)}</div><h1>${esc(app)}</h1><p class="note">loading…</p>`;
  connect(`/api/stream?namespace=${encodeURIComponent(ns)}&app=${encodeURIComponent(app)}`, {
    release: renderRelease,
    problem: (p) => {
      main.innerHTML = `<div class="sub"><a href="#/">Releases</a> / ${esc(ns)}</div><h1>${esc(app)}</h1><p class="error" data-testid="problem">${esc(p.message)}</p>`;
    },
  });
}

function route() {
  const m = /^#\/ns\/([^/]+)\/app\/([^/]+)$/.exec(location.hash);
  if (m) showRelease(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
  else showList();
}

window.addEventListener("hashchange", route);
route();
