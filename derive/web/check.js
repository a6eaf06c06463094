// derive's checking page, the browser side. It asks the server that serves it:
//   GET  /api/problems            the problems (and whether a roster is loaded)
//   GET  /api/problem/ID          one question, typeset, and the quantities it asks
//   POST /api/preview             how derive reads one typed answer (MathML)
//   POST /api/check               the verdicts, as `derive check --format json`
// Markup from the server (MathML, the statement) is made and escaped there;
// everything the user typed is shown back as text, never as markup.
"use strict";

const ACCEPTED = new Set(["correct", "equivalent", "rounding"]);
const PREVIEW_DELAY_MS = 200;

const $ = (id) => document.getElementById(id);
const state = { target: null, student: null, variant: null, roster: false, seq: 0 };

const BUSY_RETRIES = 20;
const BUSY_WAIT_MS = 1500;

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res = await fetch(path, opts);
  // 503: every worker is busy (a class checking at once, or workers still
  // starting): wait and ask again, a bounded number of times
  for (let k = 0; res.status === 503 && k < BUSY_RETRIES; k++) {
    status("the server is busy; trying again\u2026");
    await new Promise((r) => setTimeout(r, BUSY_WAIT_MS));
    res = await fetch(path, opts);
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    throw new Error(`the server answered ${res.status} without JSON`);
  }
  if (!res.ok) throw new Error(data && data.error ? data.error : `the server answered ${res.status}`);
  return data;
}

function status(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.classList.toggle("error", Boolean(isError));
}

// MathML from the server, or text where there is none
function setMath(el, mathml, fallback) {
  if (mathml) el.innerHTML = mathml;
  else el.textContent = fallback || "";
}

async function loadProblems() {
  let data;
  try {
    data = await api("GET", "/api/problems");
  } catch (e) {
    status(`Could not load the problems: ${e.message}`, true);
    return;
  }
  const problems = Array.isArray(data) ? data : (data.problems || []);
  state.roster = Boolean(!Array.isArray(data) && data.roster);
  $("student-box").hidden = !state.roster;
  const select = $("problem");
  select.textContent = "";
  const first = document.createElement("option");
  first.value = "";
  first.textContent = "choose a problem\u2026";
  select.appendChild(first);
  for (const p of problems) {
    const o = document.createElement("option");
    o.value = p.id;
    o.textContent = p.source ? `${p.title} (${p.source})` : p.title || p.id;
    select.appendChild(o);
  }
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (wanted && problems.some((p) => p.id === wanted)) {
    select.value = wanted;
    loadProblem();
  }
}

async function loadProblem() {
  const id = $("problem").value;
  $("question").hidden = true;
  $("answers").hidden = true;
  if (!id) return;
  const student = state.roster ? $("student").value.trim() : "";
  const variant = state.roster && !student ? $("variant").value.trim() : "";
  let path = `/api/problem/${encodeURIComponent(id)}`;
  if (student) path += `?student=${encodeURIComponent(student)}`;
  else if (variant) path += `?variant=${encodeURIComponent(variant)}`;
  status("loading\u2026");
  let p;
  try {
    p = await api("GET", path);
  } catch (e) {
    status(e.message, true);
    return;
  }
  state.target = p.id;
  state.student = student || null;
  state.variant = student ? null : (p.variant || null);
  history.replaceState(null, "", `#${encodeURIComponent(p.id)}`);
  $("title").textContent = p.title || p.id;
  $("source").textContent = [p.source ? `From ${p.source}.` : "",
    p.variant ? (student ? `Your variant: number ${p.variant}.` : `Variant ${p.variant}.`) : ""].join(" ").trim();
  setMath($("statement"), p.statement_html, p.question);
  buildRows(p.quantities || []);
  $("question").hidden = false;
  $("answers").hidden = false;
  $("summary").textContent = "";
  status("");
}

function buildRows(quantities) {
  const body = $("rows");
  body.textContent = "";
  for (const q of quantities) {
    const tr = document.createElement("tr");
    tr.dataset.name = q.name;
    const name = document.createElement("td");
    name.className = "name";
    const label = document.createElement("span");
    setMath(label, q.mathml, q.name);
    const code = document.createElement("code");
    code.textContent = q.name;
    name.append(label, code);
    const inputCell = document.createElement("td");
    const input = document.createElement("input");
    input.type = "text";
    input.name = q.name;
    input.dataset.name = q.name;
    input.autocomplete = "off";
    input.spellcheck = false;
    input.setAttribute("aria-label", `answer for ${q.name}`);
    input.addEventListener("input", () => schedulePreview(tr, input));
    inputCell.appendChild(input);
    const preview = document.createElement("td");
    preview.className = "preview";
    const verdict = document.createElement("td");
    verdict.className = "verdict";
    verdict.dataset.name = q.name;
    tr.append(name, inputCell, preview, verdict);
    body.appendChild(tr);
  }
}

function schedulePreview(tr, input) {
  clearTimeout(tr._timer);
  tr.querySelector(".verdict").textContent = "";
  tr._timer = setTimeout(() => preview(tr, input.value), PREVIEW_DELAY_MS);
}

async function preview(tr, text) {
  const cell = tr.querySelector(".preview");
  const seq = (tr._seq = (tr._seq || 0) + 1);
  if (!text.trim()) {
    cell.textContent = "";
    return;
  }
  let r;
  try {
    r = await api("POST", "/api/preview", { target: state.target, text });
  } catch (e) {
    r = { kind: "error", error: e.message };
  }
  if (seq !== tr._seq) return; // a later keystroke has its own preview
  cell.textContent = "";
  if (r.kind === "error") {
    const err = document.createElement("span");
    err.className = "error";
    err.textContent = r.error;
    cell.appendChild(err);
  } else {
    setMath(cell, r.mathml, r.latex);
  }
}

async function check(event) {
  event.preventDefault();
  const answers = {};
  for (const input of document.querySelectorAll("#rows input")) {
    if (input.value.trim()) answers[input.dataset.name] = input.value;
  }
  if (!Object.keys(answers).length) {
    status("Type at least one answer.", true);
    return;
  }
  const body = { target: state.target, answers };
  if (state.student) body.student = state.student;
  else if (state.variant) body.variant = state.variant;
  const button = $("check");
  button.disabled = true;
  status("checking\u2026");
  let result;
  try {
    result = await api("POST", "/api/check", body);
  } catch (e) {
    status(e.message, true);
    button.disabled = false;
    return;
  }
  button.disabled = false;
  status("");
  showVerdicts(result);
}

function showVerdicts(result) {
  for (const cell of document.querySelectorAll("#rows .verdict")) cell.textContent = "";
  let accepted = 0;
  for (const item of result.items || []) {
    const cell = document.querySelector(`#rows .verdict[data-name="${CSS.escape(item.name)}"]`);
    if (!cell) continue;
    if (ACCEPTED.has(item.verdict)) accepted += 1;
    const badge = document.createElement("span");
    badge.className = `badge ${item.verdict}`;
    badge.textContent = item.verdict;
    cell.appendChild(badge);
    if (item.message) {
      const message = document.createElement("span");
      message.className = "message";
      message.textContent = item.message;
      cell.appendChild(message);
    }
  }
  const total = (result.items || []).length;
  $("summary").textContent = `${accepted}/${total} accepted`;
}

document.addEventListener("DOMContentLoaded", () => {
  $("problem").addEventListener("change", loadProblem);
  $("pick").addEventListener("submit", (e) => { e.preventDefault(); loadProblem(); });
  $("answers").addEventListener("submit", check);
  loadProblems();
});
