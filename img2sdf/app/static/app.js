// The demo page: choose images, POST them to /api/generate, show the answer. Plain JS, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const input = $("images");
let chosen = [];  // File objects, from the file input or dropped on the page
let limits = { max_images: 8, max_image_mb: 20 };

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

function setChosen(files) {
  chosen = Array.from(files);
  const thumbs = $("chosen");
  thumbs.replaceChildren(...chosen.map((f) => {
    const img = document.createElement("img");
    img.src = URL.createObjectURL(f);
    img.title = f.name;
    img.alt = f.name;
    return img;
  }));
  showError("");
  if (chosen.length > limits.max_images) {
    showError(`Choose at most ${limits.max_images} images (${chosen.length} chosen).`);
  }
  $("generate").disabled = chosen.length === 0 || chosen.length > limits.max_images;
  $("status").textContent = chosen.length
    ? `${chosen.length} image${chosen.length > 1 ? "s" : ""} ready.`
    : "Choose at least one image.";
}

input.addEventListener("change", () => setChosen(input.files));

const zone = $("dropzone");
for (const name of ["dragenter", "dragover"]) {
  zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
}
for (const name of ["dragleave", "drop"]) {
  zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.remove("over"); });
}
zone.addEventListener("drop", (e) => setChosen(e.dataTransfer.files));

function fillTable(tbody, rows) {
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }));
}

function showResult(r) {
  $("preview").src = r.preview;
  $("inputs").src = r.inputs;
  for (const fmt of ["glb", "obj", "stl"]) $(`download-${fmt}`).href = r.downloads[fmt];
  $("mesh-stats").textContent = `${r.vertices.toLocaleString()} vertices, ${r.faces.toLocaleString()} faces, `
    + `${r.watertight ? "watertight" : "not watertight"} · seed ${r.seed}, ${r.steps} steps, `
    + `${r.samples} sample${r.samples === 1 ? "" : "s"}, ${r.resolution}³`;
  fillTable($("neighbours").tBodies[0], r.neighbours.map((n) => [
    n.rank, n.category, `obj_${String(n.obj_idx).padStart(4, "0")}`, n.cos.toFixed(4)]));
  fillTable($("timings").tBodies[0], Object.entries(r.timings).map(([k, v]) => [k, `${v.toFixed(2)} s`]));
  $("warnings").replaceChildren(...r.warnings.map((w) => {
    const li = document.createElement("li");
    li.textContent = w;
    return li;
  }));
  $("result").hidden = false;
}

$("generate-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = new FormData();
  for (const f of chosen) body.append("images", f, f.name);
  for (const name of ["seed", "steps", "samples", "resolution"]) body.append(name, $(name).value);
  showError("");
  $("result").hidden = true;  // an earlier result under a new error would read as this upload's
  $("generate").disabled = true;
  const started = performance.now();
  const tick = setInterval(() => {
    $("status").textContent = `Generating… ${((performance.now() - started) / 1000).toFixed(0)} s`;
  }, 500);
  try {
    const response = await fetch("/api/generate", { method: "POST", body });
    const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    showResult(answer);
    $("status").textContent = `Done in ${answer.timings.total.toFixed(1)} s.`;
  } catch (err) {
    showError(err.message);
    $("status").textContent = "Failed.";
  } finally {
    clearInterval(tick);
    $("generate").disabled = chosen.length === 0;
  }
});

fetch("/api/info").then((r) => r.json()).then((info) => {
  limits = info;
  $("steps").placeholder = `${info.steps} (default)`;
  $("steps").max = info.max_steps;
  $("samples").placeholder = `${info.samples} (default)`;
  $("samples").max = info.max_samples;
  $("resolution").replaceChildren(...info.resolutions.map((n) => {
    const option = new Option(`${n}³`, n, false, n === 128);
    return option;
  }));
  $("model-info").textContent = `Model: ${info.training_shapes} training shapes, encoder ${info.encoder}.`;
}).catch(() => showError("Cannot reach the server."));
