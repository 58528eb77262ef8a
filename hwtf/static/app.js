// hwtf's page: asks the server (POST /api/write) to write a text, and draws
// the answer stroke by stroke, as a pen would. No build step, no libraries.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const POINTS_PER_FRAME = 5; // the pen's speed: about 300 points a second
const MARGIN = 20;

let style = ""; // "" plain, a built-in style's number, or "mine"
let drawn = []; // the pad's strokes: [[x, y], ...] in canvas pixels, y down
let run = 0; // the writing in progress; a newer one stops an older one's drawing

function message(text, isError) {
  const box = $("message");
  box.textContent = text || "";
  box.className = isError ? "error" : "";
}

function params(format) {
  const body = {
    text: $("text").value,
    bias: Number($("bias").value),
    seed: Number($("seed").value),
    format: format || "json",
  };
  if (style === "mine") {
    // The page's y points down; hwtf's ink points up.
    body.prime = { text: $("prime-text").value, strokes: drawn.map((s) => s.map(([x, y]) => [x, -y])) };
  } else if (style !== "") {
    body.style = Number(style);
  }
  body.candidates = Number($("candidates").value);
  return body;
}

async function post(body) {
  const response = await fetch("/api/write", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    let error = `the server answered ${response.status}`;
    try {
      error = (await response.json()).error || error;
    } catch (e) { /* not JSON */ }
    throw new Error(error);
  }
  return response;
}

function pathData(points) {
  return points.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`).join("")
    + (points.length === 1 ? "l0 0" : "");
}

// Draws strokes (y up) into the output SVG point by point.
function animate(strokes, id) {
  const svg = $("output");
  svg.replaceChildren();
  svg.dataset.done = "false";
  const all = strokes.flat();
  if (!all.length) { svg.dataset.done = "true"; return; }
  const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
  const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
  const width = maxX - minX + 2 * MARGIN, height = maxY - minY + 2 * MARGIN;
  svg.setAttribute("viewBox", `0 0 ${width.toFixed(1)} ${height.toFixed(1)}`);
  const flipped = strokes.map((s) => s.map(([x, y]) => [x - minX + MARGIN, maxY - y + MARGIN]));
  let stroke = 0, point = 0, path = null;
  function frame() {
    if (id !== run) return;
    let budget = POINTS_PER_FRAME;
    while (budget > 0 && stroke < flipped.length) {
      if (!path) {
        path = document.createElementNS(SVG_NS, "path");
        svg.appendChild(path);
      }
      const take = Math.min(budget, flipped[stroke].length - point);
      point += take;
      budget -= take;
      path.setAttribute("d", pathData(flipped[stroke].slice(0, point)));
      if (point >= flipped[stroke].length) { stroke += 1; point = 0; path = null; }
    }
    if (stroke < flipped.length) requestAnimationFrame(frame);
    else svg.dataset.done = "true";
  }
  requestAnimationFrame(frame);
}

async function write() {
  const id = ++run;
  message("writing…");
  for (const name of ["svg", "png", "inkml"]) $(`download-${name}`).disabled = true;
  try {
    const answer = await (await post(params())).json();
    if (id !== run) return;
    const notes = [];
    if (answer.unknown_chars.length) notes.push(`not in the model's alphabet: ${answer.unknown_chars.join(" ")}`);
    if (answer.unfinished.length) notes.push(`cut before the model finished: ${answer.unfinished.join(" / ")}`);
    message(notes.join("; "));
    for (const name of ["svg", "png", "inkml"]) $(`download-${name}`).disabled = false;
    animate(answer.strokes, id);
  } catch (error) {
    if (id === run) message(error.message, true);
  }
}

async function download(format) {
  try {
    const blob = await (await post(params(format))).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `handwriting.${format}`;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    message(error.message, true);
  }
}

function pick(button) {
  for (const other of document.querySelectorAll("button.style")) other.classList.remove("selected");
  button.classList.add("selected");
  style = button.dataset.style;
}

async function loadInfo() {
  const info = await (await fetch("/api/info")).json();
  $("model").textContent = info.model;
  $("bias").value = info.defaults.bias;
  $("bias-value").textContent = info.defaults.bias;
  $("candidates").max = info.limits.candidates;
  $("candidates").value = info.defaults.candidates;
  $("text").maxLength = info.limits.page_lines * info.limits.line_width;
  const field = $("styles");
  for (const s of info.styles) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "style";
    button.dataset.style = String(s.number);
    button.id = `style-${s.number}`;
    button.title = `style ${s.number}: "${s.text}"`;
    const img = document.createElement("img");
    img.src = `/api/styles/${s.number}.svg`;
    img.alt = `style ${s.number}`;
    button.appendChild(img);
    button.addEventListener("click", () => pick(button));
    field.appendChild(button);
  }
  const mine = document.createElement("button");
  mine.type = "button";
  mine.className = "style";
  mine.dataset.style = "mine";
  mine.id = "style-mine";
  mine.textContent = "my hand";
  mine.title = "the line you write below";
  mine.addEventListener("click", () => pick(mine));
  field.appendChild(mine);
}

// -- the pad: one line of the user's writing, with pointer events ----------

function setupPad() {
  const pad = $("pad");
  const context = pad.getContext("2d");
  let current = null;
  const at = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
  };
  const redraw = () => {
    context.clearRect(0, 0, pad.width, pad.height);
    context.strokeStyle = "#ccc";
    context.beginPath();
    context.moveTo(10, pad.height * 0.7);
    context.lineTo(pad.width - 10, pad.height * 0.7);
    context.stroke();
    context.strokeStyle = "#123";
    context.lineWidth = 2.5;
    context.lineCap = context.lineJoin = "round";
    for (const stroke of drawn) {
      context.beginPath();
      stroke.forEach(([x, y], i) => (i ? context.lineTo(x, y) : context.moveTo(x, y)));
      if (stroke.length === 1) context.lineTo(stroke[0][0] + 0.1, stroke[0][1]);
      context.stroke();
    }
    context.lineWidth = 1;
  };
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    current = [at(event)];
    drawn.push(current);
    redraw();
  });
  pad.addEventListener("pointermove", (event) => {
    if (!current) return;
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of (events.length ? events : [event])) current.push(at(e));
    redraw();
  });
  const end = () => { current = null; pad.dataset.strokes = String(drawn.length); };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", () => { drawn = []; pad.dataset.strokes = "0"; redraw(); });
  redraw();
}

document.addEventListener("DOMContentLoaded", () => {
  $("bias").addEventListener("input", () => { $("bias-value").textContent = $("bias").value; });
  $("write").addEventListener("click", write);
  $("write-mine").addEventListener("click", () => { pick($("style-mine")); write(); });
  $("style-none").addEventListener("click", () => pick($("style-none")));
  for (const name of ["svg", "png", "inkml"]) $(`download-${name}`).addEventListener("click", () => download(name));
  setupPad();
  loadInfo().catch((error) => message(`could not load the model's details: ${error.message}`, true));
});
