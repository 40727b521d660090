"use strict";
// The demo page: choose a photo, optionally draw a box around the object, see the ranked shapes.
const $ = (id) => document.getElementById(id);
const state = { photo: null, box: null, apiKeyRequired: false, thumbnails: [] };

function showError(message) {
  $("error").textContent = message;
  $("error").style.display = message ? "block" : "none";
}

function apiHeaders() {
  const key = $("api-key").value;
  return state.apiKeyRequired && key ? { "X-API-Key": key } : {};
}

// Results and timings of an earlier search never stay on screen under another photo or after a refusal.
function clearResults() {
  for (const url of state.thumbnails) URL.revokeObjectURL(url);
  state.thumbnails = [];
  $("results").replaceChildren();
  $("timings").textContent = "";
  $("status").textContent = "";
}

async function loadIndexInfo() {
  try {
    const response = await fetch("index");
    if (!response.ok) throw new Error((await response.json()).detail || response.statusText);
    const info = await response.json();
    $("index-info").textContent = `index ${info.version} · ${info.shapes} shapes · ${info.views_per_shape} views each`;
    $("top-k").max = info.top_k_max;
    state.apiKeyRequired = info.api_key_required;
    if (info.score_bands) {
      const bands = info.score_bands;
      const strong = bands.strong === null
        ? "no score was high enough for its first results to be right most of the time, so no match is called strong: check the results yourself"
        : `strong at ${bands.strong.toFixed(2)} and above (first results there were right ` +
          `${Math.round(100 * bands.strong_precision)} % of the time)`;
      $("band-help").textContent =
        `Match badges come from these weights' scores on real photos they never saw (${bands.measured_on}): ` +
        `${strong}; weak below ${bands.weak.toFixed(2)}, where ${Math.round(100 * bands.absent_share_below_weak)} % ` +
        `of photos of models missing from the catalogue landed and only ` +
        `${Math.round(100 * bands.weak_share_of_right)} % of right answers: a weak first result probably means the ` +
        `object is not in this catalogue.`;
      $("band-help").hidden = false;
    }
    $("key-row").hidden = !info.api_key_required;
    $("api-key").value = sessionStorage.getItem("photo2cad-api-key") || "";
    for (const category of info.categories) {
      const option = document.createElement("option");
      option.value = category.name;
      option.textContent = `${category.name} (${category.shapes})`;
      $("category").appendChild(option);
    }
  } catch (err) {
    $("index-info").textContent = "index not available";
    showError(`Cannot read the index: ${err.message}`);
  }
}

// ------------------------------------------------------------------------------------------------ photo and box
function choose(file) {
  if (!file) return;
  state.photo = file;
  state.box = null;
  clearResults();
  showError("");
  $("box-hint").textContent = "Drag on the photo to draw a box around the object: the search then looks only inside it.";
  $("preview").src = URL.createObjectURL(file);
  $("drop").hidden = true;
  $("photo-view").hidden = false;
  $("search").disabled = false;
  $("clear-box").disabled = true;
  search();
}

function drawBox(rect) {
  const canvas = $("box-layer");
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(canvas.clientWidth * ratio);
  canvas.height = Math.round(canvas.clientHeight * ratio);
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!rect) return;
  context.scale(ratio, ratio);
  context.fillStyle = "rgba(16, 24, 40, 0.45)";  // dim what lies outside the box
  context.fillRect(0, 0, canvas.clientWidth, canvas.clientHeight);
  context.clearRect(rect.x, rect.y, rect.w, rect.h);
  context.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue("--box").trim() || "#f04438";
  context.lineWidth = 2;
  context.strokeRect(rect.x + 1, rect.y + 1, Math.max(0, rect.w - 2), Math.max(0, rect.h - 2));
}

// Screen rectangle on the preview -> box in pixels of the photo as displayed (the browser applies EXIF rotation
// to the preview, as the service does before cropping).
function toPhotoBox(rect) {
  const img = $("preview");
  const sx = img.naturalWidth / img.clientWidth, sy = img.naturalHeight / img.clientHeight;
  const x = Math.max(0, Math.round(rect.x * sx)), y = Math.max(0, Math.round(rect.y * sy));
  const w = Math.min(img.naturalWidth - x, Math.round(rect.w * sx));
  const h = Math.min(img.naturalHeight - y, Math.round(rect.h * sy));
  return { x, y, w, h, screen: rect };
}

function watchBoxDrawing() {
  const canvas = $("box-layer");
  let start = null;
  const point = (event) => {
    const bounds = canvas.getBoundingClientRect();
    return {
      x: Math.min(Math.max(event.clientX - bounds.left, 0), bounds.width),
      y: Math.min(Math.max(event.clientY - bounds.top, 0), bounds.height),
    };
  };
  const rectFrom = (a, b) => ({ x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) });
  canvas.addEventListener("pointerdown", (event) => {
    if (!$("preview").naturalWidth) return;
    start = point(event);
    canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => { if (start) drawBox(rectFrom(start, point(event))); });
  canvas.addEventListener("pointerup", (event) => {
    if (!start) return;
    const rect = rectFrom(start, point(event));
    start = null;
    if (rect.w < 8 || rect.h < 8) {  // a tap, not a box: keep the box there was
      drawBox(state.box ? state.box.screen : null);
      return;
    }
    state.box = toPhotoBox(rect);
    $("clear-box").disabled = false;
    drawBox(rect);
    search();
  });
}

// ------------------------------------------------------------------------------------------------ results
function downloadLink(url, text, title) {
  const link = document.createElement("a");
  link.href = url;
  link.textContent = text;
  link.title = title;
  link.setAttribute("download", "");
  return link;
}

async function loadThumbnail(img, url) {
  if (!state.apiKeyRequired) { img.src = url; return; }
  // An <img> cannot send the API key: fetch it, then show it from memory.
  const response = await fetch(url, { headers: apiHeaders() });
  if (!response.ok) return;
  const objectUrl = URL.createObjectURL(await response.blob());
  state.thumbnails.push(objectUrl);
  img.src = objectUrl;
}

function card(shape) {
  const item = document.createElement("article");
  item.className = "result";
  // Scores are cosines in [-1, 1] (plus a small category term with weights that score categories): the bar spans
  // that range, clamped, so bars compare across searches.
  const width = Math.max(0, Math.min(100, 50 * (shape.score + 1)));
  item.innerHTML = `
    <div class="pic"><span class="rank"></span><span class="badge" hidden></span><img class="thumb" alt=""></div>
    <div class="meta"><div class="id"></div><div class="cat"></div>
      <div class="bar"><span style="width:${width.toFixed(1)}%"></span></div>
      <div class="score"><span class="value"></span></div>
      <div class="downloads"></div></div>`;
  item.querySelector(".rank").textContent = `#${shape.rank}`;
  const thumb = item.querySelector(".thumb");
  thumb.alt = shape.shape_id;
  loadThumbnail(thumb, shape.thumbnail_url);
  item.querySelector(".id").textContent = shape.shape_id;
  item.querySelector(".cat").textContent = shape.category || "no category";
  item.querySelector(".value").textContent = `score ${shape.score.toFixed(3)}`;
  item.querySelector(".value").title = "cosine similarity of photo and shape embeddings (plus the category term, when the weights have one); higher is closer";
  if (shape.match) {
    const badge = item.querySelector(".badge");
    badge.textContent = `${shape.match} match`;
    badge.className = `badge ${shape.match}`;
    badge.title = {
      strong: "a score right first results usually had",
      possible: "between the bands: check the model",
      weak: "a score right answers seldom had: the object may not be in this catalogue",
    }[shape.match];
    badge.hidden = false;
  }
  const format = shape.mesh_format.toUpperCase() || "mesh";
  const downloads = item.querySelector(".downloads");
  downloads.appendChild(downloadLink(shape.mesh_url, `${format} (original)`, `the ${format} file as indexed`));
  if (shape.mesh_format !== "glb") {
    downloads.appendChild(downloadLink(shape.glb_url, "GLB (with materials)", "one file: mesh, materials and textures"));
  }
  return item;
}

function showResultsOnSmallScreens() {
  // On a phone the results start below the photo and the options: bring them into view.
  const answer = $("answer");
  if (window.matchMedia("(max-width: 760px)").matches && answer.getBoundingClientRect().top > window.innerHeight * 0.5) {
    answer.scrollIntoView({ behavior: "smooth", block: "start" });
  }
}

async function search() {
  if (!state.photo) return;
  showError("");
  clearResults();
  $("search").disabled = true;
  $("status").textContent = "Searching…";
  const form = new FormData();
  form.append("photo", state.photo);
  const mask = $("mask-input").files[0];
  if (mask) form.append("mask", mask);
  if (state.box) form.append("box", `${state.box.x},${state.box.y},${state.box.w},${state.box.h}`);
  form.append("top_k", $("top-k").value || "10");
  if ($("category").value) form.append("category", $("category").value);
  form.append("rerank", $("rerank").checked ? "true" : "false");
  if (state.apiKeyRequired) sessionStorage.setItem("photo2cad-api-key", $("api-key").value);
  try {
    const response = await fetch("retrieve", { method: "POST", body: form, headers: apiHeaders() });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = Array.isArray(body.detail) ? body.detail.map((d) => `${d.loc.slice(-1)[0]}: ${d.msg}`).join("; ") : body.detail;
      throw new Error(`${response.status}: ${detail || response.statusText}`);
    }
    const results = $("results");
    for (const shape of body.results) results.appendChild(card(shape));
    if (!body.results.length) results.innerHTML = '<div class="empty">No shape in this category.</div>';
    const where = state.box ? ` for the box ${state.box.x},${state.box.y},${state.box.w},${state.box.h}` : "";
    $("status").textContent = `${body.results.length} shapes from index ${body.index_version}${body.reranked ? ", re-ranked" : ""}${where}`;
    const t = body.timings;
    $("timings").textContent = `${t.total_ms.toFixed(1)} ms: decode ${(t.decode_wait_ms + t.decode_ms).toFixed(1)}, preprocess ${t.preprocess_ms.toFixed(1)}, ` +
      `queue ${t.queue_ms.toFixed(1)}, encode ${t.encode_ms.toFixed(1)}, search ${t.search_ms.toFixed(1)}, rerank ${t.rerank_ms.toFixed(1)}`;
    showResultsOnSmallScreens();
  } catch (err) {
    clearResults();
    showError(err.message);
  } finally {
    $("search").disabled = false;
  }
}

// ------------------------------------------------------------------------------------------------ wiring
function acceptDrops(zone) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); choose(e.dataTransfer.files[0]); });
}

function start() {
  const drop = $("drop");
  drop.addEventListener("click", () => $("photo-input").click());
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") $("photo-input").click(); });
  acceptDrops(drop);
  acceptDrops($("photo-view"));
  $("photo-input").addEventListener("change", (e) => { choose(e.target.files[0]); e.target.value = ""; });
  $("choose-another").addEventListener("click", () => $("photo-input").click());
  $("clear-box").addEventListener("click", () => { state.box = null; $("clear-box").disabled = true; drawBox(null); search(); });
  $("preview").addEventListener("load", () => drawBox(null));
  $("preview").addEventListener("error", () => {
    // Browsers other than Safari cannot show HEIC: the service still can read it; only the box needs the preview.
    $("box-hint").textContent = "Your browser cannot preview this photo's format; the whole photo is searched.";
  });
  window.addEventListener("resize", () => { state.box = state.box && toPhotoBoxKeepingScreen(state.box); drawBox(state.box ? state.box.screen : null); });
  $("search").addEventListener("click", search);
  watchBoxDrawing();
  loadIndexInfo();
}

// After a resize the box stays on the same photo pixels: recompute where it lies on screen.
function toPhotoBoxKeepingScreen(box) {
  const img = $("preview");
  const sx = img.clientWidth / img.naturalWidth, sy = img.clientHeight / img.naturalHeight;
  return { ...box, screen: { x: box.x * sx, y: box.y * sy, w: box.w * sx, h: box.h * sy } };
}

document.addEventListener("DOMContentLoaded", start);
