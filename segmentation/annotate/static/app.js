// The annotation page: plain JavaScript over the JSON API of segmentation/annotate/app.py.
//
// One canvas shows the photo, the accepted instances and SAM's current candidate mask, each
// mask layer an offscreen canvas at the server's preview size (the image's own size up to
// SAM's 1024 px; a strip's short side at least 64 px) scaled onto the photo. Masks arrive as
// COCO RLE (column-major run lengths, compressed to a string), decoded here. All coordinates
// sent to the server are image pixels.
//
// Proposals (from --proposals or --detector) are drawn apart from accepted instances: a hatched
// fill, a dashed box and a "proposal" label with the class and score. The selected one is accepted
// (Enter, A), corrected (E: its box becomes the prompt, clicks refine it, Enter accepts) or
// deleted (Del); Shift+A accepts all of the photo's. One whose class is not among the page's classes
// (anomaly.predict's "anomaly") is grey, labelled "not a class", and accepted only as one of them:
// R (the selected class) or E; the server refuses it otherwise and says so.
"use strict";

const PALETTE = [
  [230, 25, 75], [60, 180, 75], [255, 200, 20], [0, 130, 200], [245, 130, 48],
  [145, 30, 180], [70, 240, 240], [240, 50, 230], [170, 110, 40], [128, 128, 0],
];
const NOT_A_CLASS_COLOUR = [160, 160, 160]; // a proposal whose class is not among the page's
const PREVIEW_COLOUR = [0, 229, 255];
const PREVIEW_DASH = [0, 0, 0]; // SAM's outline: cyan and black in turn (cyan alone was faint on blue stains)
const DRAG_THRESHOLD = 5; // CSS pixels a press must move to become a box
const POLL_MS = 150;
const EXPORT_POLL_MS = 400; // how often a running export's progress is asked for

const $ = (id) => document.getElementById(id);
const view = $("view");
const layers = {
  instances: document.createElement("canvas"),
  instanceEdges: document.createElement("canvas"),
  proposals: document.createElement("canvas"),
  preview: document.createElement("canvas"),
  previewEdges: document.createElement("canvas"),
};
const EDGE_COLOUR = [255, 255, 255]; // accepted instances' outlines: seen on a stain of their own colour

const state = {
  session: null,
  keys: [],
  statuses: {},
  proposalCounts: {},
  current: null,
  detail: null,
  image: null,
  openToken: 0,
  embeddingReady: false,
  classIndex: 0,
  steps: [], // the prompt: {type: "point", xy, label} | {type: "box", box}, in order
  undoneSteps: [],
  promptVersion: 0,
  prediction: null,
  candidate: 0,
  inflight: false,
  pending: false,
  predictionFailed: null, // why the last prediction asked for failed (not busy): no mask is coming
  opacity: 0.5,
  selected: null,
  proposal: null, // the selected proposal's id
  correcting: null, // the proposal whose box is the prompt: Enter replaces it with the mask
  view: { scale: 1, x: 0, y: 0 },
  press: null,
  pan: null,
  predictions: 0,
  changing: new Set(), // the changes sent and not yet answered (undo, redo and statuses wait for them)
  turn: Promise.resolve(), // the last undo, redo or status pressed: answered once it is (versionedChange)
  targets: new Map(), // "<photo> <kind> <id>" of a delete or accept in flight -> {image, target, sent} (inFlight)
  sentPredictions: new Set(), // the predictions whose masks Enter sent (accept): not sent twice
  waiting: 0, // the undos, redos and statuses pressed and not yet answered: changes pressed meanwhile go after
  exportCancelled: false, // 'cancel export' was pressed during the export running (exportDataset)
  exportId: null, // the running export's, drawn before it is asked for: what its cancel names (cancelExport)
  openFailed: null, // {key, message}: the photo opened last could not be (its labels never shown)
  versions: {}, // image -> the version of its labels this page last got (undo, redo and statuses send it)
};

// --- Server ------------------------------------------------------------------------------------

// The server's decoder queue is full (HTTP 503): nothing was done, the same request may be sent
// again after retryAfterMs (its Retry-After header).
class BusyError extends Error {
  constructor(message, retryAfterMs) {
    super(message);
    this.retryAfterMs = retryAfterMs;
  }
}

async function api(method, path, body) {
  const options = { method, cache: "no-store", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    // the browser's own words ("Failed to fetch") do not say that the server is gone
    throw new Error(`no answer from the annotation server (stopped?) to ${method} ${path.split("?")[0]}: start it again, then reload the page`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.detail) || `${response.status} ${response.statusText}`;
    if (response.status === 503) {
      const seconds = Number(response.headers.get("Retry-After"));
      throw new BusyError(message, 1000 * (Number.isFinite(seconds) && seconds > 0 ? seconds : 1));
    }
    const refused = new Error(message);
    refused.status = response.status; // answered: the server holds what it held before the request
    // but a 507 of a change saved all the same (the tree's files not written): the photo's detail, with the
    // version that change gave it; `saved` null: the change may be saved, its detail not sent (unread)
    refused.saved = (data && data.saved) || null;
    refused.unread = response.status === 507 && data !== null && "saved" in data && !data.saved;
    refused.cancelled = Boolean(data && data.cancelled); // an export's 409 once its cancel stopped it
    throw refused;
  }
  return data;
}

function showMessage(text, isError = false) {
  const element = $("message");
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function showError(error) {
  showMessage(error.message || String(error), true);
}

// --- Masks -------------------------------------------------------------------------------------

// COCO's compressed RLE string to run lengths (pycocotools rleFrString).
function rleCounts(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = 1;
    while (more) {
      const c = text.charCodeAt(p) - 48;
      x |= (c & 0x1f) << (5 * k);
      more = c & 0x20;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x |= -1 << (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

function packColour(rgb, alpha = 255) {
  return ((alpha << 24) | (rgb[2] << 16) | (rgb[1] << 8) | rgb[0]) >>> 0;
}

// Paints the foreground of a column-major RLE into a row-major RGBA buffer; hatched: diagonal
// stripes only (how proposals differ from accepted instances).
function paintRle(pixels, width, height, rle, colour, hatched = false) {
  const counts = typeof rle.counts === "string" ? rleCounts(rle.counts) : rle.counts;
  let p = 0;
  for (let i = 0; i < counts.length; i += 1) {
    const n = counts[i];
    if (i & 1) {
      for (let q = p, end = p + n; q < end; q += 1) {
        const x = (q / height) | 0;
        const y = q - x * height;
        if (!hatched || (x + y) & 4) pixels[y * width + x] = colour;
      }
    }
    p += n;
  }
}

// Paints masks into `canvas`; with `edges`, the outline of every painted region into that canvas too,
// in `edgeColour` (drawn opaque over the fill, which alone vanishes on a stain of its own colour),
// dashed with `dashColour` where given.
function paintLayer(canvas, size, masks, edges = null, edgeColour = null, dashColour = null) {
  const [height, width] = size;
  const pixels = new Uint32Array(width * height);
  for (const { rle, colour, hatched } of masks) paintRle(pixels, width, height, rle, colour, hatched);
  putPixels(canvas, width, height, pixels);
  if (!edges) return;
  const dash = dashColour ? packColour(dashColour) : null;
  putPixels(edges, width, height, edgePixels(pixels, width, height, packColour(edgeColour), dash));
}

function putPixels(canvas, width, height, pixels) {
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const image = context.createImageData(width, height);
  new Uint32Array(image.data.buffer).set(pixels);
  context.putImageData(image, 0, 0);
}

// The painted pixels with a 4-neighbour of another value (or on the border), in `colour`; with
// `dash`, every other run of 4 diagonals in `dash` instead (a light and a dark colour in turn show
// on any stain).
function edgePixels(pixels, width, height, colour, dash = null) {
  const edges = new Uint32Array(pixels.length);
  for (let y = 0; y < height; y += 1) {
    for (let x = 0, p = y * width; x < width; x += 1, p += 1) {
      const value = pixels[p];
      if (!value) continue;
      const inner =
        x > 0 && x < width - 1 && y > 0 && y < height - 1 &&
        pixels[p - 1] === value && pixels[p + 1] === value &&
        pixels[p - width] === value && pixels[p + width] === value;
      if (!inner) edges[p] = dash !== null && (x + y) & 4 ? dash : colour;
    }
  }
  return edges;
}

function classColour(name) {
  const index = state.session.classes.indexOf(name);
  return PALETTE[(index < 0 ? 0 : index) % PALETTE.length];
}

function proposalColour(proposal) {
  return proposal.is_class === false ? NOT_A_CLASS_COLOUR : classColour(proposal.class);
}

// --- Drawing -----------------------------------------------------------------------------------

function fitView() {
  if (!state.image) return;
  const width = view.clientWidth;
  const height = view.clientHeight;
  const scale = Math.min(width / state.detail.width, height / state.detail.height) * 0.98;
  state.view = {
    scale,
    x: (width - state.detail.width * scale) / 2,
    y: (height - state.detail.height * scale) / 2,
  };
}

// The photo, its layers (masks, proposals, the preview, their outlines) and the boxes and points over it.
function draw() {
  const dpr = window.devicePixelRatio || 1;
  const context = clearedCanvas(dpr);
  if (!state.image || !state.detail) return;
  const { scale, x, y } = state.view;
  context.setTransform(dpr * scale, 0, 0, dpr * scale, dpr * x, dpr * y);
  drawLayers(context, state.detail.width, state.detail.height);
  const line = 2 / scale;
  context.lineWidth = line;
  drawProposalBoxes(context, scale);
  context.lineWidth = line;
  drawSelectedBox(context, scale);
  drawPromptBoxes(context, scale);
  drawPoints(context, scale);
}

// The canvas sized to the view in device pixels, its transform reset and its pixels cleared.
function clearedCanvas(dpr) {
  const width = Math.round(view.clientWidth * dpr);
  const height = Math.round(view.clientHeight * dpr);
  if (view.width !== width || view.height !== height) {
    view.width = width;
    view.height = height;
  }
  const context = view.getContext("2d");
  context.setTransform(1, 0, 0, 1, 0, 0);
  context.clearRect(0, 0, width, height);
  return context;
}

// The photo, then the instances, proposals and preview at the page's opacity, then the outlines.
function drawLayers(context, w, h) {
  context.imageSmoothingEnabled = true;
  context.drawImage(state.image, 0, 0, w, h);
  context.imageSmoothingEnabled = false;
  context.globalAlpha = state.opacity;
  context.drawImage(layers.instances, 0, 0, w, h);
  context.globalAlpha = Math.min(1, state.opacity + 0.3); // stripes cover half the pixels anyway
  context.drawImage(layers.proposals, 0, 0, w, h);
  context.globalAlpha = state.opacity;
  if (state.prediction) context.drawImage(layers.preview, 0, 0, w, h);
  context.globalAlpha = state.opacity > 0 ? 1 : 0; // outlines, opaque; opacity 0 shows the bare photo
  context.drawImage(layers.instanceEdges, 0, 0, w, h);
  if (state.prediction) context.drawImage(layers.previewEdges, 0, 0, w, h);
  context.globalAlpha = 1;
}

// The selected instance's box, dashed white.
function drawSelectedBox(context, scale) {
  const selected = state.detail.instances.find((instance) => instance.id === state.selected);
  if (!selected) return;
  const [x1, y1, x2, y2] = selected.box;
  context.strokeStyle = "#ffffff";
  context.setLineDash([6 / scale, 4 / scale]);
  context.strokeRect(x1, y1, x2 - x1, y2 - y1);
  context.setLineDash([]);
}

// The prompt's box, the crop SAM saw (--crop-fraction) and the box being dragged.
function drawPromptBoxes(context, scale) {
  const box = promptBox();
  if (box) {
    context.strokeStyle = "#00e5ff";
    context.strokeRect(box[0], box[1], box[2] - box[0], box[3] - box[1]);
  }
  if (state.prediction && state.prediction.crop) {
    // --crop-fraction: the zoomed crop SAM saw for this mask (dotted)
    const [x0, y0, side] = state.prediction.crop;
    context.strokeStyle = "#00e5ff";
    context.setLineDash([2 / scale, 4 / scale]);
    context.strokeRect(x0, y0, side, side);
    context.setLineDash([]);
  }
  if (state.press && state.press.moved) {
    const [a, b] = [state.press.start, state.press.end];
    context.strokeStyle = "#ffffff";
    context.setLineDash([4 / scale, 4 / scale]);
    context.strokeRect(Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]));
    context.setLineDash([]);
  }
}

// The prompt's points: green (include) or red (exclude), ringed white.
function drawPoints(context, scale) {
  const radius = 5 / scale;
  for (const step of state.steps) {
    if (step.type !== "point") continue;
    context.beginPath();
    context.arc(step.xy[0], step.xy[1], radius, 0, 2 * Math.PI);
    context.fillStyle = step.label === 1 ? "#22c55e" : "#ef4444";
    context.fill();
    context.strokeStyle = "#ffffff";
    context.lineWidth = 1.5 / scale;
    context.stroke();
  }
}

// Each proposal's dashed box and its label: "proposal #id class score" (the selected one in white).
function drawProposalBoxes(context, scale) {
  context.font = `${12 / scale}px system-ui, sans-serif`;
  context.textBaseline = "bottom";
  for (const proposal of state.detail.proposals) {
    if (proposal.id === state.correcting) continue;
    const [x1, y1, x2, y2] = proposal.box;
    const selected = proposal.id === state.proposal;
    const colour = selected ? "#ffffff" : `rgb(${proposalColour(proposal).join(",")})`;
    context.strokeStyle = colour;
    context.lineWidth = (selected ? 2.5 : 1.5) / scale;
    context.setLineDash([5 / scale, 4 / scale]);
    context.strokeRect(x1, y1, x2 - x1, y2 - y1);
    context.setLineDash([]);
    const label = proposalLabel(proposal);
    const pad = 2 / scale;
    const top = Math.max(y1, 16 / scale);
    context.fillStyle = "rgba(0, 0, 0, 0.65)";
    context.fillRect(x1, top - 14 / scale, context.measureText(label).width + 2 * pad, 14 / scale);
    context.fillStyle = colour;
    context.fillText(label, x1 + pad, top - pad);
  }
}

function proposalLabel(proposal) {
  const score = proposal.score === null ? "" : ` ${proposal.score.toFixed(2)}`;
  const notClass = proposal.is_class === false ? " (not a class)" : "";
  return `proposal #${proposal.id} ${proposal.class}${notClass}${score}`;
}

function paintProposals() {
  const masks = state.detail.proposals
    .filter((proposal) => proposal.id !== state.correcting)
    .map((proposal) => ({
      rle: proposal.rle,
      colour: packColour(proposalColour(proposal), proposal.id === state.proposal ? 255 : 200),
      hatched: true,
    }));
  paintLayer(layers.proposals, state.detail.preview, masks);
}

function paintInstances() {
  const masks = state.detail.instances.map((instance) => ({
    rle: instance.rle,
    colour: packColour(classColour(instance.class), instance.id === state.selected ? 255 : 200),
  }));
  paintLayer(layers.instances, state.detail.preview, masks, layers.instanceEdges, EDGE_COLOUR);
}

function paintPreview() {
  const prediction = state.prediction;
  if (!prediction) return;
  const candidate = prediction.candidates[state.candidate];
  const masks = [{ rle: candidate.rle, colour: packColour(PREVIEW_COLOUR) }];
  paintLayer(layers.preview, prediction.size, masks, layers.previewEdges, PREVIEW_COLOUR, PREVIEW_DASH);
  $("cycle").textContent = `mask ${state.candidate + 1}/${prediction.candidates.length} (${candidate.score.toFixed(2)})`;
  document.body.dataset.preview = "1";
}

// --- Lists and buttons -------------------------------------------------------------------------

function renderClasses() {
  const holder = $("classes");
  holder.textContent = "";
  state.session.classes.forEach((name, index) => {
    const button = document.createElement("button");
    button.dataset.index = String(index);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgb(${classColour(name).join(",")})`;
    button.append(swatch, `${index < 9 ? index + 1 + " " : ""}${name}`);
    button.title = index < 9 ? `class ${name} (key ${index + 1})` : `class ${name}`;
    button.addEventListener("click", () => selectClass(index));
    holder.append(button);
  });
  selectClass(state.classIndex);
}

function selectClass(index) {
  if (index < 0 || index >= state.session.classes.length) return;
  state.classIndex = index;
  for (const button of $("classes").children) {
    button.classList.toggle("active", Number(button.dataset.index) === index);
  }
}

function renderImageList() {
  const list = $("image-list");
  list.textContent = "";
  for (const key of state.keys) {
    const item = document.createElement("li");
    item.dataset.image = key;
    const dot = document.createElement("span");
    dot.className = `dot ${state.statuses[key]}`;
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.title = "proposals to review";
    item.append(dot, key, badge);
    item.classList.toggle("proposed", state.proposalCounts[key] > 0);
    item.title = key;
    item.addEventListener("click", () => openListed(key));
    list.append(item);
  }
}

function updateImageList() {
  for (const item of $("image-list").children) {
    const key = item.dataset.image;
    item.classList.toggle("current", key === state.current);
    item.firstChild.className = `dot ${state.statuses[key]}`;
    item.lastChild.textContent = state.proposalCounts[key] ? String(state.proposalCounts[key]) : "";
    item.classList.toggle("proposed", state.proposalCounts[key] > 0);
  }
  updateProposedFilter();
  const current = $("image-list").querySelector("li.current");
  if (current) current.scrollIntoView({ block: "nearest" });
}

// The photo list's "with proposals only" toggle: shown once a photo has proposals (or while on), with
// their number; on, the list hides the photos without (the current one stays, to see where it is).
function updateProposedFilter() {
  const proposed = state.keys.filter((key) => state.proposalCounts[key] > 0).length;
  const only = $("proposed-only").checked;
  $("proposed-filter").hidden = !proposed && !only;
  $("proposed-count").textContent = `(${proposed})`;
  $("image-list").classList.toggle("proposed-only", only);
}

function renderCounts(counts) {
  $("counts").textContent =
    `${counts.unlabelled} unlabelled · ${counts.in_progress} in progress · ${counts.done} done · ${counts.good} good` +
    (counts.unreadable ? ` · ${counts.unreadable} unreadable` : "");
}

function renderInstances() {
  const list = $("instances");
  list.textContent = "";
  for (const instance of state.detail.instances) {
    const item = document.createElement("li");
    item.classList.toggle("selected", instance.id === state.selected);
    const swatch = document.createElement("span");
    swatch.className = "dot";
    swatch.style.background = `rgb(${classColour(instance.class).join(",")})`;
    const remove = document.createElement("button");
    remove.textContent = "×";
    remove.title = "delete this instance";
    remove.addEventListener("click", (event) => {
      event.stopPropagation();
      deleteInstance(instance.id);
    });
    const pieces = instance.pieces > 1 ? `, ${instance.pieces} pieces` : "";
    item.append(swatch, `#${instance.id} ${instance.class} (${instance.area} px${pieces})`, remove);
    item.addEventListener("click", () => {
      state.selected = state.selected === instance.id ? null : instance.id;
      if (state.selected !== null) state.proposal = null;
      renderSelection();
    });
    list.append(item);
  }
  document.body.dataset.instances = String(state.detail.instances.length);
}

function renderProposals() {
  const list = $("proposals");
  list.textContent = "";
  for (const proposal of state.detail.proposals) {
    const item = document.createElement("li");
    item.dataset.proposal = String(proposal.id);
    item.classList.toggle("selected", proposal.id === state.proposal);
    const swatch = document.createElement("span");
    swatch.className = "dot hatched";
    swatch.style.color = `rgb(${proposalColour(proposal).join(",")})`;
    const how =
      proposal.is_class === false
        ? `${proposal.class} is not a class here: R accepts it as the selected class`
        : "accept (Enter or A; R: as the selected class)";
    const buttons = [
      ["✓", how, () => acceptProposal(proposal.id)],
      ["✎", "correct: its box becomes the prompt, clicks refine it (E)", () => correctProposal(proposal.id)],
      ["×", "delete this proposal (Del)", () => deleteProposal(proposal.id)],
    ].map(([text, title, action]) => {
      const button = document.createElement("button");
      button.textContent = text;
      button.title = title;
      button.addEventListener("click", (event) => {
        event.stopPropagation();
        action();
      });
      return button;
    });
    buttons[0].classList.add("first");
    item.append(swatch, proposalLabel(proposal).replace("proposal ", ""), ...buttons);
    item.addEventListener("click", () => selectProposal(proposal.id === state.proposal ? null : proposal.id));
    list.append(item);
  }
  const detector = state.detail.detector;
  $("proposal-panel").hidden = !state.detail.proposals.length && !detector;
  $("accept-all").disabled = !state.detail.proposals.length;
  $("proposal-state").textContent = detector && detector.state !== "done" ? `detector: ${detector.state}` : "";
  document.body.dataset.proposals = String(state.detail.proposals.length);
  document.body.dataset.detector = detector ? detector.state : "none";
}

function selectProposal(id) {
  state.proposal = id;
  if (id !== null) state.selected = null;
  renderSelection();
}

function renderSelection() {
  renderInstances();
  renderProposals();
  paintInstances();
  paintProposals();
  draw();
}

// The next (delta 1) or previous proposal becomes the selected one.
function stepProposal(delta) {
  const ids = state.detail ? state.detail.proposals.map((proposal) => proposal.id) : [];
  if (!ids.length) return;
  const index = ids.indexOf(state.proposal);
  selectProposal(ids[(index + delta + ids.length) % ids.length]);
}

function applyDetail(detail) {
  state.detail = detail;
  state.versions[detail.image] = detail.version;
  state.statuses[detail.image] = detail.status;
  state.proposalCounts[detail.image] = detail.proposals.length;
  if (!detail.instances.some((instance) => instance.id === state.selected)) state.selected = null;
  const ids = detail.proposals.map((proposal) => proposal.id);
  if (!ids.includes(state.proposal)) state.proposal = state.selected === null && ids.length ? ids[0] : null;
  if (state.correcting !== null && !ids.includes(state.correcting)) dropCorrection();
  paintInstances();
  paintProposals();
  renderInstances();
  renderProposals();
  renderCounts(detail.counts);
  updateImageList();
  $("status-badge").textContent = detail.status.replace("_", " ");
  $("image-name").textContent = `${detail.index + 1}/${state.keys.length} ${detail.image}`;
  $("done").textContent = detail.status === "done" ? "reopen" : "done";
  $("good").textContent = detail.status === "good" ? "not good" : "good";
  $("prev").disabled = detail.index === 0;
  $("next").disabled = detail.index === state.keys.length - 1;
  document.body.dataset.status = detail.status;
  draw();
}

// The proposal corrected is gone (Shift+A, its own R or ✓ took it, another tab accepted or deleted it):
// its prompt is dropped (Enter saved its mask again, as a new instance), unless the correction's own accept
// took it (a click made since stays: accept()). Said only where another tab took it: this page's own R, ✓
// or Shift+A shows its own answer (a 507's message, once the labels were read again, was replaced).
function dropCorrection() {
  const id = state.correcting;
  state.correcting = null;
  const mine = (matches) =>
    [...state.targets.values()].some((item) => item.image === state.current && matches(item.target));
  if (mine((name) => name === corrected(id))) return;
  clearPrompt(false);
  if (mine(ofProposal(id))) return;
  showMessage(`proposal #${id} was taken meanwhile: its correction is dropped`, true);
}

// --- Images ------------------------------------------------------------------------------------

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error(`cannot load ${url}`));
    image.src = url;
  });
}

// A click on a photo's entry in the list. The open photo's own entry leaves it as it is (a mask not
// accepted yet, the zoom): opening it again dropped that mask unsaid. One whose opening or embedding failed
// opens again (a photo fixed on disk meanwhile is read anew).
function openListed(key) {
  if (key === state.current && !state.openFailed && document.body.dataset.embedding !== "failed") return;
  openImage(key);
}

// `replaced`: the notice, ending "; ", of a photo found replaced by one of another size since it was
// opened (detectProposals opens it again: the picture shown was the old one).
async function openImage(key, replaced = "") {
  const token = ++state.openToken;
  const left = hasPrompt() ? state.current : null; // its mask, not accepted, is dropped
  state.current = key;
  state.openFailed = null;
  state.embeddingReady = false;
  state.proposal = null;
  document.body.dataset.embedding = "waiting";
  clearPrompt(false);
  $("latency").textContent = "";
  updateImageList();
  try {
    const [status, detail] = await Promise.all([
      api("POST", "/api/current", { image: key }),
      api("GET", `/api/image?image=${encodeURIComponent(key)}`),
    ]);
    if (token !== state.openToken) return;
    const image = await loadImage(detail.url);
    if (token !== state.openToken) return;
    state.image = image;
    // a change of this photo answered while it opened brought newer labels than those read here: they stay
    const newer = olderThanKept(detail) && state.detail && state.detail.image === key;
    if (newer && !sameSize(state.detail, detail)) {
      openImage(key, replaced); // of a photo replaced by one of another size since this picture was read
      return;
    }
    if (!newer) state.detail = detail;
    fitView();
    applyDetail(state.detail);
    const dropped = left && left !== key ? `the mask not accepted on ${left} was dropped; ` : "";
    // replaced on disk by a photo of another size: where its old labels were set aside
    const notice = detail.notice ? `${detail.notice}; ` : replaced;
    followEmbedding(key, token, status, dropped + notice);
  } catch (error) {
    if (token !== state.openToken) return;
    state.openFailed = { key, message: error.message || String(error) };
    showError(error);
  }
}

// `note`: what the message starts with (a mask left behind on the previous photo).
async function followEmbedding(key, token, status, note = "") {
  const bar = $("embed-progress");
  let waited = false;
  while (token === state.openToken) {
    if (status.state === "ready") {
      bar.hidden = true;
      state.embeddingReady = true;
      document.body.dataset.embedding = "ready";
      let how = status.cached ? "from the cache" : `computed in ${status.seconds.toFixed(1)} s`;
      if (!waited && !status.cached) how = `computed ahead, in ${status.seconds.toFixed(1)} s`;
      showMessage(note + (state.detail.proposals.length ? proposalHint(state.detail) : `ready (embedding ${how})`));
      if (hasPrompt()) requestPrediction();
      const detector = state.detail.detector; // running: prefetched in the background, the server waits for it
      if (detector && (detector.state === "pending" || detector.state === "running")) detectProposals(key, token);
      return;
    }
    if (status.state === "failed") {
      bar.hidden = true;
      document.body.dataset.embedding = "failed";
      showMessage(`cannot embed this image: ${status.error}`, true);
      return;
    }
    bar.hidden = false;
    bar.value = status.progress;
    const seconds = status.seconds ? ` ${status.seconds.toFixed(1)} s` : "";
    showMessage(`${note}computing the image embedding (${status.state}${seconds}); clicks are kept`);
    waited = true;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    if (token !== state.openToken) return;
    try {
      status = await api("GET", `/api/embedding?image=${encodeURIComponent(key)}`);
    } catch (error) {
      showError(error);
      return;
    }
  }
}

function proposalHint(detail) {
  const n = detail.proposals.length;
  const unnamed = detail.proposals.filter((proposal) => proposal.is_class === false).length;
  const note = unnamed ? ` (${unnamed} not of a class here: R accepts one as the selected class)` : "";
  const keys = "Enter accepts, E corrects, Del deletes, Shift+A accepts all";
  return `${n} proposal${n === 1 ? "" : "s"} to review${note}: ${keys}`;
}

// Runs --detector on the opened photo (once per photo; the server remembers) and shows its proposals.
async function detectProposals(key, token, attempts = 20) {
  if (token === state.openToken) {
    // asked again after a busy answer, the photo left meanwhile: the one shown keeps its own state
    document.body.dataset.detector = "running";
    $("proposal-state").textContent = "detector: running";
  }
  try {
    const detail = await api("POST", "/api/proposals/detect", { image: key });
    const older = olderThanKept(detail); // a change's answer came first: its labels are newer
    if (!older) state.proposalCounts[key] = detail.proposals.length;
    // Of a photo left meanwhile, its version is not kept: an undo, redo or status still to go there was
    // pressed before these proposals were shown, and is refused for them as on the photo shown (done, good
    // or an undo to either would discard them unseen); the photo opened again brings its version.
    if (token !== state.openToken) {
      updateImageList();
      return;
    }
    // the photo was replaced on disk since it was opened: what went of the old one's labels
    const notice = detail.notice ? `${detail.notice}; ` : "";
    if (detail.width !== state.detail.width || detail.height !== state.detail.height) {
      openImage(key, notice); // by one of another size: the picture shown is the old one's
      return;
    }
    if (older) {
      renderProposals(); // the detector's state as the newer labels have it, no longer "running"
      if (notice) showMessage(detail.notice);
      return;
    }
    applyDetail(detail);
    const found = detail.proposals.length ? proposalHint(detail) : "the detector found nothing here";
    if (notice || !hasPrompt()) showMessage(notice + found);
  } catch (error) {
    if (token !== state.openToken) return;
    if (error instanceof BusyError && attempts > 1) {
      setTimeout(() => detectProposals(key, token, attempts - 1), error.retryAfterMs);
      return;
    }
    document.body.dataset.detector = "failed";
    $("proposal-state").textContent = "detector: failed"; // it said "running" still
    // kept in the labels shown: the next render (a click in the list) put "running" back
    if (state.detail?.image === key) state.detail.detector = { ...state.detail.detector, state: "failed" };
    // a 507 whose proposals may be saved, the labels not sent: read again, they bring them and their version
    if (error.unread) return unread(key, error, "the detector's proposals");
    showError(error);
  }
}

// The photos the list shows, in its order: with "with proposals only" on, those with proposals to
// review and the open one (so the arrows go on from it), else all.
function listedKeys() {
  if (!$("proposed-only").checked) return state.keys;
  return state.keys.filter((key) => key === state.current || state.proposalCounts[key] > 0);
}

// ← → and the ◀ ▶ buttons: the previous or next photo the list shows.
function move(delta) {
  const keys = listedKeys();
  const index = keys.indexOf(state.current) + delta;
  if (index >= 0 && index < keys.length) openImage(keys[index]);
  else if (keys !== state.keys) {
    showMessage(`no ${delta > 0 ? "later" : "earlier"} photo has proposals to review (the list shows those only)`);
  }
}

// N and the "next open" button: the next photo the list shows that is neither done nor good (with
// "with proposals only" on, as the arrows, one with proposals to review).
function nextOpen() {
  const keys = listedKeys();
  const start = keys.indexOf(state.current);
  for (let step = 1; step <= keys.length; step += 1) {
    const key = keys[(start + step) % keys.length];
    if (key !== state.current && state.statuses[key] !== "done" && state.statuses[key] !== "good") {
      openImage(key); // the open photo, the only one left, was opened again: a mask not accepted dropped unsaid
      return;
    }
  }
  const other = state.statuses[state.current] !== "done" && state.statuses[state.current] !== "good";
  const every = other ? "every other" : "every";
  if (keys === state.keys) showMessage(`${every} image is done or good`);
  else showMessage(`${every} photo the list shows is done or good (the list shows those with proposals only)`);
}

// The next photo with proposals to review (V): with a few hundred of thousands proposed, N and the
// arrows mostly land on photos without any. --detector proposes on each photo once it is opened
// (or prefetched), so photos not yet reached are not counted.
function nextProposed() {
  const start = state.keys.indexOf(state.current);
  for (let step = 1; step < state.keys.length; step += 1) {
    const key = state.keys[(start + step) % state.keys.length];
    if (state.proposalCounts[key] > 0) {
      openImage(key);
      return;
    }
  }
  const only = state.proposalCounts[state.current] > 0 ? "no other photo" : "no photo";
  const reached = state.session.detector ? " (the detector proposes on a photo as it is opened)" : "";
  showMessage(`${only} has proposals to review${reached}`);
}

// --- Prompt and prediction ---------------------------------------------------------------------

function promptPoints() {
  return state.steps.filter((step) => step.type === "point");
}

function promptBox() {
  const boxes = state.steps.filter((step) => step.type === "box");
  return boxes.length ? boxes[boxes.length - 1].box : null;
}

function hasPrompt() {
  return state.steps.length > 0;
}

function changePrompt() {
  state.promptVersion += 1;
  if (!hasPrompt()) {
    stopCorrecting();
    state.prediction = null;
    document.body.dataset.preview = "0";
    $("cycle").textContent = "mask 1/3";
  }
  requestPrediction();
}

function addStep(step) {
  state.steps.push(step);
  state.undoneSteps = [];
  changePrompt();
}

function clearPrompt(redraw = true) {
  stopCorrecting();
  state.steps = [];
  state.undoneSteps = [];
  state.promptVersion += 1;
  state.prediction = null;
  document.body.dataset.preview = "0";
  $("cycle").textContent = "mask 1/3";
  if (redraw) draw();
}

// The corrected proposal shows again as a proposal (the prompt that replaced it is gone).
function stopCorrecting() {
  if (state.correcting === null) return;
  state.correcting = null;
  if (state.detail) {
    paintProposals();
    renderProposals();
  }
}

function requestPrediction() {
  draw();
  if (!hasPrompt() || !state.embeddingReady) return;
  if (state.inflight) {
    state.pending = true;
    return;
  }
  runPrediction();
}

async function runPrediction() {
  state.inflight = true;
  state.pending = false;
  state.predictionFailed = null;
  const key = state.current;
  const version = state.promptVersion;
  const points = promptPoints();
  const body = {
    image: key,
    points: points.map((step) => step.xy),
    labels: points.map((step) => step.label),
    box: promptBox(),
  };
  const started = performance.now();
  let retryMs = null;
  try {
    const result = await api("POST", "/api/predict", body);
    if (key === state.current && version === state.promptVersion) {
      state.prediction = result;
      state.candidate = result.best;
      state.predictions += 1;
      document.body.dataset.predictions = String(state.predictions);
      paintPreview();
      const total = performance.now() - started;
      // With --crop-fraction a small box is decoded on a zoomed crop: say so, and what its embedding cost.
      const crop = result.crop ? `, zoomed ${result.crop[2]} px crop ${result.ms.crop.toFixed(0)} ms` : "";
      $("latency").textContent = `mask in ${total.toFixed(0)} ms (decoder ${result.ms.decode.toFixed(0)} ms${crop})`;
      showMessage("Enter accepts, Tab shows the next candidate");
      draw();
    }
  } catch (error) {
    if (error instanceof BusyError) {
      retryMs = error.retryAfterMs;
      showMessage(`${error.message} (asking again in ${(retryMs / 1000).toFixed(0)} s)`);
    } else {
      state.predictionFailed = error.message || String(error);
      showError(error);
    }
  } finally {
    state.inflight = false;
    if (retryMs !== null) {
      // Busy: the latest prompt (not necessarily this one) is asked for once the server has room.
      state.pending = true;
      setTimeout(() => {
        if (!state.inflight && predictionWanted()) runPrediction();
      }, retryMs);
    } else if (predictionWanted()) {
      runPrediction();
    }
  }
}

// A prompt waits to be asked for. On a photo opened meanwhile whose embedding is not ready yet, its clicks
// wait for it (followEmbedding asks then): a busy answer's retry asked at once.
function predictionWanted() {
  return state.pending && hasPrompt() && state.embeddingReady;
}

function cycle(delta) {
  if (!state.prediction) return;
  const n = state.prediction.candidates.length;
  state.candidate = (state.candidate + delta + n) % n;
  paintPreview();
  draw();
}

// --- Changes -----------------------------------------------------------------------------------

// How the server's refusal of a change to a photo changed since this page showed it ends: true of the
// photo shown, which is read again (reloadDetail), not of one left meanwhile.
const SHOWN_AS_NOW = "; its labels are shown as they are now";

// How often a change answered busy (503) is sent in all.
const CHANGE_ATTEMPTS = 5;

function change(path, body, done, attempts = CHANGE_ATTEMPTS) {
  const send = () => sendChange(path, body, done, attempts);
  // Pressed while an undo, redo or status waits for its turn or its answer: sent after it (sent first, it
  // moved the version the waiting one was to carry, or, while one answered busy waited to be sent again,
  // the version it had been sent with: refused as another tab's change).
  return track(state.waiting ? Promise.allSettled([state.turn]).then(send) : send());
}

// `sent` is in flight (state.changing) till answered.
function track(sent) {
  state.changing.add(sent);
  sent.finally(() => state.changing.delete(sent));
  return sent;
}

// Answers come in the order the server sends them, not the order it made the changes: one older than the
// version this page got last of its photo (a lower change count of the same start) is not shown.
function olderThanKept(detail) {
  const kept = state.versions[detail.image];
  if (typeof kept !== "string" || typeof detail.version !== "string") return false;
  const [start, count] = detail.version.split("-");
  const [keptStart, keptCount] = kept.split("-");
  return start === keptStart && Number(count) < Number(keptCount);
}

async function sendChange(path, body, done, attempts) {
  try {
    const detail = await api("POST", path, body);
    showAnswer(detail);
    if (done) done(detail);
  } catch (error) {
    if (error instanceof BusyError && attempts > 1) {
      // A 503 changed nothing on the server: the same change is sent again when it has room, still in
      // flight till then (an undo or status pressed meanwhile waits for it: sent first, it acted on the
      // labels before this change, with the version the change was to move on).
      showMessage(`${error.message} (trying again)`);
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs));
      return sendChange(path, body, done, attempts - 1);
    }
    if (error.saved) {
      // 507, saved all the same: the detail it brings, of the version the change made, is kept as a 200's
      // (an undo, redo or status pressed before this answer goes with it; the labels read again instead
      // could bring another tab's change made since, which that undo took back), the 507's message shown
      showAnswer(error.saved);
      if (done) done(error.saved);
      showError(error);
      return { failed: error.message };
    }
    if (error.unread) return unread(body.image, error);
    showError(error);
    const failed = { failed: error.message }; // what an export waiting for it says (exportDataset)
    if (error.status === undefined) return failed; // not answered: the server may hold it (the message says so)
    // A refusal saved nothing: one pressed meanwhile, on labels the server no longer held, goes with the
    // version it was pressed on, refused naming why (the version read again would let it act on changes
    // never shown).
    if (body.image === state.current) reloadDetail(body.image);
    else if (error.message.endsWith(SHOWN_AS_NOW)) {
      // refused for a photo left meanwhile: it is read again when opened, not now
      const refused = error.message.slice(0, -SHOWN_AS_NOW.length);
      showMessage(`${refused}; open it to see its labels as they are now`, true);
    }
    return failed;
  }
}

// A 507 of a change that may be saved all the same, without the photo's detail as it left it: the version
// this page holds may be the one before it. The photo shown is read again, and the change is in flight till
// then; an undo, redo or status pressed before is refused (versionedChange: with the version before the
// change, it was refused as another tab's change, one tab open). Returns what they say (`why`), what this
// one said (`said`) and whether the labels were read again (`read`); `what` names the change in `said`.
async function unread(key, error, what = "the change") {
  const note = key === state.current ? "its labels are read again" : `open ${key} to see its labels`;
  const said = `${error.message}; ${what} may be saved all the same: ${note}`;
  showMessage(said, true);
  const read = key === state.current && (await reloadDetail(key));
  const why = `pressed before the answer to a change of ${key} that may be saved, its labels not sent`;
  return { unread: key, said, read, why: `${why} (${error.message})`, failed: said };
}

// A change's answer: shown on its photo, or, answered after another photo was opened, its version, dot,
// badge and the counts kept; not where the page already got a newer one.
function showAnswer(detail) {
  if (olderThanKept(detail)) {
    // a later change's answer came first: it is shown, this one is not
  } else if (detail.image === state.current && !sameSize(detail, state.detail)) {
    // replaced on disk by a photo of another size: the picture shown is the old one
    openImage(detail.image, detail.notice ? `${detail.notice}; ` : "");
  } else if (detail.image === state.current) applyDetail(detail);
  else {
    state.versions[detail.image] = detail.version;
    state.statuses[detail.image] = detail.status;
    state.proposalCounts[detail.image] = detail.proposals.length;
    updateImageList();
    renderCounts(detail.counts);
  }
}

// Whether `detail` is of the photo `shown` shows at the size it shows it (else the photo was replaced on
// disk by one of another size, and the picture shown is the old one).
function sameSize(detail, shown) {
  if (!shown || shown.image !== detail.image) return true; // still opening: openImage compares them
  return detail.width === shown.width && detail.height === shown.height;
}

// A refused change (another tab on this photo deleted the instance or took the proposal first) left the
// view showing what the server no longer holds: the photo's labels are read again, the refusal's
// message kept. Applied only if nothing else was shown meanwhile (a later change's answer is newer).
// Returns whether they were read.
async function reloadDetail(key) {
  const shown = state.detail;
  let detail;
  try {
    detail = await api("GET", `/api/image?image=${encodeURIComponent(key)}`);
  } catch (error) {
    return false; // the refusal's message says enough
  }
  if (key !== state.current || state.detail !== shown || olderThanKept(detail)) return true;
  if (detail.width !== shown.width || detail.height !== shown.height) openImage(key); // replaced on disk
  else applyDetail(detail);
  return true;
}

function accept() {
  if (!state.prediction) {
    if (hasPrompt()) notShownYet();
    else showMessage("click on a defect first", true);
    return;
  }
  const name = state.session.classes[state.classIndex];
  const body = {
    image: state.current,
    prediction: state.prediction.prediction,
    candidate: state.candidate,
    class: name,
  };
  const correcting = state.correcting; // the corrected mask replaces it
  // Enter pressed again before the answer, on the same mask or on that of the saved prompt and a click made
  // since (another prediction): once it came, a prompt then on screen is accepted, not a mask already sent
  // (saved twice; correcting a proposal, refused as gone), nor one of the saved prompt (the kept click's own
  // mask is not shown yet). Enter on a fresh prompt's own mask (Esc, a click elsewhere) waits too, then
  // saves it (dropped without a word where it was the mask this Enter had been pressed on).
  const sent = body.prediction;
  const again = () =>
    state.prediction ? !state.sentPredictions.has(state.prediction.prediction) && accept() : notShownYet();
  const target = correcting === null ? `prediction ${sent}` : corrected(correcting);
  const anyPrediction = (name) => name.startsWith("prediction ");
  if (inFlight(correcting === null ? anyPrediction : ofProposal(correcting), again)) return;
  if (correcting !== null) body.proposal = correcting;
  const saved = state.steps.slice();
  state.sentPredictions.add(sent);
  const sending = changeOf(target, "/api/accept", body, (detail) => {
    dropSent(saved);
    const instance = detail.instances[detail.instances.length - 1];
    showMessage(`accepted ${name} #${instance.id}${piecesNote(instance)}`, instance.pieces > 1);
  });
  // A 507 that may leave it saved, its labels not sent (unread): the prompt stayed on screen, and Enter again
  // saved its mask a second time where the first was saved. It goes too once the labels are read again.
  sending.then((result) => {
    if (!result || !result.unread || !dropSent(saved)) return;
    showMessage(`${result.said}; its prompt is dropped: click again if its mask is not among them`, true);
  });
}

// Only the sent prompt (its steps `sent`) goes: a click made before the answer (on the next defect) stays,
// as a prompt of its own; so does a prompt on another photo opened meanwhile. Returns whether any went.
function dropSent(sent) {
  const kept = state.steps.filter((step) => !sent.includes(step));
  const went = kept.length < state.steps.length;
  if (!kept.length) clearPrompt();
  else if (went) {
    state.steps = kept;
    state.undoneSteps = [];
    // the mask shown, of the sent prompt (and those clicks), is not accepted again: the kept clicks' own
    // mask is shown once it comes
    state.prediction = null;
    document.body.dataset.preview = "0";
    changePrompt();
  }
  return went;
}

// Enter on a prompt whose mask is not on screen (nothing where no prompt is left): still coming, or, its
// prediction failed (the error shown then named why), none is.
function notShownYet() {
  if (!hasPrompt()) return;
  if (state.inflight || state.pending || !state.embeddingReady) {
    showMessage("the mask of the prompt is not shown yet: Enter accepts it once it is", true);
    return;
  }
  const why = state.predictionFailed ? `: its prediction failed (${state.predictionFailed})` : "";
  showMessage(`the prompt has no mask${why}; click again to ask for one`, true);
}

// Enter: the prompt's mask when there is one, else the selected proposal.
function acceptCurrent() {
  if (!state.prediction && !hasPrompt() && state.proposal !== null) acceptSelectedProposal();
  else accept();
}

// Enter or A pressed again before the answer: once it came, the proposal selected then is accepted.
function acceptSelectedProposal() {
  if (!state.prediction && !hasPrompt() && state.proposal !== null) {
    acceptProposal(state.proposal, undefined, acceptSelectedProposal);
  }
}

// className: accept it as that class instead of its own (R: the selected class; PatchCore's 'anomaly'
// proposals are named this way, their masks kept).
function acceptProposal(id, className, again = () => hasProposal(id) && acceptProposal(id, className)) {
  if (!labelsShown("nothing accepted") || inFlight(ofProposal(id), again)) return;
  const body = { image: state.current, proposal: id };
  if (className !== undefined) body.class = className;
  changeOf(`proposal ${id}`, "/api/proposals/accept", body, (detail) => {
    const instance = detail.instances[detail.instances.length - 1];
    showMessage(`accepted proposal #${id} as ${instance.class} #${instance.id}${piecesNote(instance)}`, instance.pieces > 1);
  });
}

// Every export splits masks into connected pieces: one instance in several becomes several.
function piecesNote(instance) {
  if (!(instance.pieces > 1)) return "";
  return ` - in ${instance.pieces} pieces, each exported as an instance (Ctrl+Z, then join or trim it with a box or points)`;
}

function selectedClass() {
  return state.session.classes[state.classIndex];
}

function acceptProposalAsClass() {
  if (state.proposal !== null) acceptProposal(state.proposal, selectedClass(), acceptProposalAsClass);
}

// Those whose class is not among the page's stay: the server's notice says what to do with them.
// Pressed again, or while one proposal's accept or delete is in flight, before the answer: once it came,
// those then shown are accepted (none: nothing).
function acceptAllProposals() {
  const anyProposal = (name) => name === ALL_PROPOSALS || name.startsWith("proposal ");
  if (!labelsShown("nothing accepted") || inFlight(anyProposal, acceptAllProposals)) return;
  const n = state.detail.proposals.length;
  if (!n) return;
  changeOf(ALL_PROPOSALS, "/api/proposals/accept-all", { image: state.current }, (detail) => {
    // a 507's detail (saved all the same) has no count: its message, shown next, says what happened
    if (detail.accepted === undefined) return;
    const accepted = `accepted ${detail.accepted} proposal${detail.accepted === 1 ? "" : "s"}`;
    showMessage(detail.notice ? `${accepted}; left the others: ${detail.notice}` : accepted);
  });
}

function deleteProposal(id, again = () => hasProposal(id) && deleteProposal(id)) {
  if (!labelsShown("not deleted") || inFlight(ofProposal(id), again)) return;
  if (id === state.correcting) clearPrompt();
  changeOf(`proposal ${id}`, "/api/proposals/delete", { image: state.current, proposal: id }, () =>
    showMessage(`deleted proposal #${id}`),
  );
}

function hasProposal(id) {
  return state.detail.proposals.some((proposal) => proposal.id === id);
}

// Pressed before the photo's labels are shown (→, ←, N, V or a list click a moment before), a change would
// act on the photo opening with the previous photo's selection (Del deleted the new photo's instance of the
// old one's selected id; Shift+A accepted proposals never shown): refused, as undo and status are. Returns
// whether they are shown.
function labelsShown(refused) {
  const key = state.current;
  if (key === null) return false;
  if (state.detail && state.detail.image === key) return true;
  const failed = state.openFailed && state.openFailed.key === key ? state.openFailed.message : null;
  if (failed !== null) showMessage(`${key} could not be opened: ${refused} (${failed})`, true);
  else showMessage(`${key} is still opening: ${refused}; press again once its labels are shown`, true);
  return false;
}

// Pressed again before the answer to a change of the same instance or proposal (`target`) came, the same
// id went twice and the second was refused ('has no instance N') and the photo read again: it waits for
// that answer, then `again()` acts on what is shown by then (the next selected, or nothing where its target
// is gone), dropped where another photo was opened meanwhile. `target`: one name, or which names it
// takes in (target) => boolean. Returns whether it waits.
function inFlight(target, again) {
  const key = state.current;
  const matches = typeof target === "string" ? (name) => name === target : target;
  const sent = [...state.targets.values()].filter((item) => item.image === key && matches(item.target));
  if (!sent.length) return false;
  Promise.allSettled(sent.map((item) => item.sent)).then(() => {
    if (state.current === key && state.detail && state.detail.image === key) again();
  });
  return true;
}

const ALL_PROPOSALS = "all proposals"; // Shift+A's target

// A change of proposal `id` (its correction's accept included), or of them all (Shift+A): each waits for
// the other (the server's order alone left one refused as gone, or accept-all acting on proposals the page
// no longer showed).
function ofProposal(id) {
  return (name) => name === `proposal ${id}` || name === corrected(id) || name === ALL_PROPOSALS;
}

// The target of the accept of proposal `id`'s correction, not the proposal's own (R or ✓: `proposal
// <id>`): pressed while correcting it, that one drops the correction (dropCorrection took it for the
// correction's accept, and the box prompt stayed on screen: the next Enter saved its mask again).
function corrected(id) {
  return `proposal ${id} corrected`;
}

// change() of one instance or proposal (`target`), in flight (inFlight) till answered; returns it.
function changeOf(target, path, body, done) {
  const key = `${body.image} ${target}`;
  const sent = change(path, body, done);
  state.targets.set(key, { image: body.image, target, sent });
  sent.finally(() => state.targets.get(key)?.sent === sent && state.targets.delete(key));
  return sent;
}

// The proposal's box becomes the prompt (its class the class): clicks refine it, Enter accepts the
// mask in its place. SAM gets the box and the points, not the proposal's mask: a binary mask as
// mask input is not what SAM was trained on, and a box and points are.
// Pressed before the answer to a change of that proposal (Shift+A, A, Del): it waits for it, then corrects
// the proposal if it is still shown (its box on screen as the prompt of a proposal gone, Enter saved its
// mask again, as a new instance).
function correctProposal(id) {
  if (!labelsShown("nothing to correct")) return;
  if (inFlight(ofProposal(id), () => hasProposal(id) && correctProposal(id))) return;
  const proposal = state.detail.proposals.find((item) => item.id === id);
  if (!proposal) return;
  clearPrompt(false);
  state.proposal = id;
  state.correcting = id;
  // one whose class is not among the page's keeps the selected class, which it is saved as (number
  // keys pick another); selecting the first class instead saved it as that one unasked
  const unnamed = proposal.is_class === false;
  if (!unnamed) selectClass(Math.max(0, state.session.classes.indexOf(proposal.class)));
  renderSelection();
  addStep({ type: "box", box: proposal.box, proposal: id }); // its proposal: redo() after an undo
  const as = unnamed ? ` as the selected class (${proposal.class} is not a class here)` : "";
  showMessage(`correcting proposal #${id}: click to add or remove parts, Enter accepts${as}, Esc cancels`);
}

function deleteInstance(id, again = () => hasInstance(id) && deleteInstance(id)) {
  if (!labelsShown("not deleted") || inFlight(`instance ${id}`, again)) return;
  changeOf(`instance ${id}`, "/api/delete", { image: state.current, instance: id }, () =>
    showMessage(`deleted #${id}`),
  );
}

function hasInstance(id) {
  return state.detail.instances.some((instance) => instance.id === id);
}

// Del pressed again before the answer: once it came, the selection then is deleted (not a prompt clicked
// meanwhile).
function deleteSelectedAgain() {
  if (!hasPrompt()) deleteSelected();
}

function deleteSelected() {
  if (hasPrompt()) {
    // A click on screen: Del takes back its last point or box, never an accepted instance behind it.
    state.undoneSteps.push(state.steps.pop());
    changePrompt();
    if (hasPrompt()) showMessage("removed the prompt's last point or box");
    else {
      // it said "an instance" where Del again deletes the selected proposal (the one being corrected)
      const next = state.detail && state.detail.image === state.current ? toDelete() : null;
      showMessage(`prompt cleared${next === null ? "" : `: Del again deletes ${deletedNext(next)}`}`);
    }
    return;
  }
  if (!labelsShown("not deleted")) return;
  const next = toDelete();
  if (next === null) return;
  // again once the change it waits for is answered: a proposal then selected, never an instance
  if (next.proposal) deleteProposal(next.id, () => state.proposal !== null && deleteSelectedAgain());
  else deleteInstance(next.id, deleteSelectedAgain);
}

// `next` (toDelete) in words. The last instance unselected, with an accept or delete of this photo in flight,
// goes unnamed: its answer may change which is last (the id named was not the one Del then deleted).
function deletedNext(next) {
  if (next.proposal) return `proposal #${next.id}`;
  const changing = [...state.targets.values()].some((item) => item.image === state.current);
  return state.selected === null && changing ? "the last instance" : `instance #${next.id}`;
}

// What Del deletes with no prompt on screen: {id, proposal} of the selected proposal, else of the selected
// (or last) instance; null: none.
function toDelete() {
  if (state.proposal !== null && state.selected === null) return { id: state.proposal, proposal: true };
  const instances = state.detail.instances;
  const id = state.selected !== null ? state.selected : instances.length ? instances[instances.length - 1].id : null;
  return id === null ? null : { id, proposal: false };
}

function setStatus(status) {
  versionedChange("/api/status", { status }, `not marked ${status}`, (on, detail) =>
    showMessage(`marked ${detail.status}${on}`),
  );
}

function toggleDone() {
  if (refuseWithPrompt("marking the photo done")) return;
  setStatus(state.detail && state.detail.status === "done" ? "open" : "done");
}

function toggleGood() {
  if (refuseWithPrompt("marking the photo good")) return;
  setStatus(state.detail && state.detail.status === "good" ? "open" : "good");
}

// A mask on screen not yet accepted: say so instead of leaving it behind unsaved.
function refuseWithPrompt(what) {
  if (!hasPrompt()) return false;
  showMessage(`a mask is not accepted yet: Enter accepts it, Esc drops it, before ${what}`, true);
  return true;
}

function undo() {
  if (hasPrompt()) {
    state.undoneSteps.push(state.steps.pop());
    changePrompt();
    showMessage("undone: the prompt's last point or box");
    return;
  }
  versionedChange("/api/undo", {}, "nothing undone", (on) => showMessage(`undone${on}`));
}

function redo() {
  if (state.undoneSteps.length) {
    const step = state.undoneSteps.pop();
    // the box of a correction taken back (Ctrl+Z, Del) corrects its proposal again where it is still shown:
    // it came back as a drawn box, and Enter saved its mask as a new instance, the proposal left undecided
    const id = step.proposal;
    const taking = (item) => item.image === state.current && ofProposal(id)(item.target); // R, ✓, Del sent
    if (!hasPrompt() && id !== undefined && hasProposal(id) && ![...state.targets.values()].some(taking)) {
      state.proposal = id;
      state.correcting = id;
      renderSelection();
    }
    state.steps.push(step);
    changePrompt();
    return;
  }
  versionedChange("/api/redo", {}, "nothing redone", (on) => showMessage(`redone${on}`));
}

// Undo restores the photo's whole state before its last change; done and good discard its undecided
// proposals. These carry the version of the photo's labels this page got last, and the server refuses
// them (the message shown, the photo read again) where another tab changed the photo since. Pressed
// before the photo's labels are shown, they are refused here: they would act, unchecked, on labels the
// page never showed (or, where the photo could not be opened, never will). This page's own changes not
// yet answered are waited for (their answers bring the versions they made; one retried after a busy
// answer is not answered till its retry is), and so is the undo, redo or status pressed before this one:
// each goes with the version the one before it brought (two pressed before one answer both carried the
// same version, and the second was refused as another tab's change). A change pressed before its answer
// goes after it (change()): one answered busy is sent again with the version it was first sent with, so a
// change sent in between was refused as another tab's, or, had it carried that change's version, undo took
// back the change pressed after it. Another photo opened meanwhile,
// the change goes to the photo it was pressed on all the same. `refused`: what a refusal says was not
// done; done(on, detail), `on` naming the photo if not the one shown by then.
function versionedChange(path, body, refused, done) {
  const key = state.current;
  if (!labelsShown(refused)) return;
  // those in flight: one answered 507 without the labels as it left them (unread) refuses this one
  const before = state.waiting ? [state.turn, ...state.changing] : [...state.changing];
  state.waiting += 1;
  state.turn = Promise.allSettled(before)
    .then((results) => {
      const after = results.map((result) => result.value).find((value) => value && value.unread === key);
      if (after) {
        // answered once the labels were read again (unread): they are shown by then, unless reading failed
        const shown = key === state.current;
        const read = after.read ? "its labels were read again: press again" : "open it again, then press again";
        const again = shown ? read : "open it first";
        const message = `${refused}${shown ? "" : ` on ${key}`}: ${after.why}; ${again}`;
        showMessage(message, true);
        return { ...after, failed: message };
      }
      const versioned = { ...body, image: key, version: state.versions[key] };
      const answered = (detail) => done(key === state.current ? "" : ` on ${key}`, detail);
      return track(sendChange(path, versioned, answered, CHANGE_ATTEMPTS));
    })
    .finally(() => {
      state.waiting -= 1;
    });
}

// The button stays disabled until the answer: a second click ran a second export over the first. This
// page's changes not yet answered go first (sent at once, the export could run before an accept still
// waiting for the decoder, and leave its mask out, saying 'exported to'). One of them that failed meanwhile
// (refused, or a 507) stays in the message, an error: 'exported to' alone hid that the change is not in it.
// While it runs, the photo it is at is shown beside 'cancel export' (not on the message line, where it
// overwrote an error shown meanwhile), which stops it between photos (answered 409 'export cancelled ...'
// with `cancelled`: the last export is left as it was), said as the answer to a request, no error; any
// other 409 after a cancel click is an error still.
async function exportDataset() {
  const button = $("export");
  if (button.disabled) return;
  button.disabled = true;
  const before = state.waiting ? [state.turn, ...state.changing] : [...state.changing];
  if (before.length) showMessage("exporting YOLO + COCO once the changes sent are saved ...");
  let note = "";
  state.exportCancelled = false;
  try {
    const failures = (await Promise.allSettled(before)).map((result) => result.value?.failed).filter(Boolean);
    if (failures.length) note = `; before it: ${failures[failures.length - 1]}`;
    showMessage(`exporting YOLO + COCO ...${note}`, Boolean(note));
    const result = await exportWithProgress();
    const report = $("export-report");
    report.textContent = result.report;
    report.hidden = false;
    const late = state.exportCancelled ? " (cancel came after its last photo was written)" : "";
    showMessage(`exported to ${result.out}${late}${note}`, Boolean(note));
  } catch (error) {
    const cancelled = error.cancelled === true;
    showMessage(`${error.message || String(error)}${note}`, !cancelled || Boolean(note));
  } finally {
    button.disabled = false;
  }
}

// The export's id, drawn here: a cancel clicked before the export request came to the server (when
// no status named it yet) was never sent, and the export ran to its end; the server keeps such a cancel.
function newExportId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8)); // randomUUID needs https or localhost
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// The export request, with its progress (GET /api/export/status) and the cancel button shown while it
// waits; a progress answer that comes after the export's is dropped, and one of another export.
async function exportWithProgress() {
  const cancel = $("export-cancel");
  const progress = $("export-progress");
  let finished = false;
  const poll = async () => {
    while (!finished) {
      await new Promise((resolve) => setTimeout(resolve, EXPORT_POLL_MS));
      let status = null;
      try {
        status = finished ? null : await api("GET", "/api/export/status");
      } catch (error) {
        status = null; // the export's own answer says what went wrong
      }
      // another tab's export, running as this one's request is on its way (then refused): not this one's
      if (finished || !status || !status.running || status.id !== id) continue;
      const where = status.total ? `${status.stage} photo ${status.done} of ${status.total}` : status.stage;
      const stopping = status.cancelling ? " (cancelling: it stops after this photo)" : "";
      // how long it has run: no limit stops an export, its cancel does
      const run = Number.isFinite(status.elapsed_s) ? `, ${Math.floor(status.elapsed_s)} s` : "";
      progress.textContent = `${where}${run} ...${stopping}`;
    }
  };
  const id = newExportId();
  state.exportId = id;
  cancel.disabled = false;
  cancel.hidden = false;
  progress.textContent = "";
  progress.hidden = false;
  poll();
  try {
    return await api("POST", "/api/export", { task: "detect", id });
  } finally {
    finished = true;
    state.exportId = null;
    cancel.hidden = true;
    progress.hidden = true;
    progress.textContent = "";
  }
}

async function cancelExport() {
  const cancel = $("export-cancel");
  if (cancel.hidden || cancel.disabled) return;
  cancel.disabled = true;
  state.exportCancelled = true;
  $("export-progress").textContent = "cancelling: it stops after the photo it is at ...";
  try {
    // named by the id the page gave it (a cancel of no id stopped whichever ran); answered
    // {cancelling: false} where that export is over: its own answer says how it ended
    if (state.exportId !== null) await api("POST", "/api/export/cancel", { id: state.exportId });
  } catch (error) {
    showMessage(`cannot cancel the export: ${error.message || String(error)}`, true);
  }
}

function setOpacity(value) {
  state.opacity = Math.min(1, Math.max(0, value));
  $("opacity").value = String(Math.round(state.opacity * 100));
  draw();
}

// --- Mouse and keys ----------------------------------------------------------------------------

function toImage(event) {
  const { scale, x, y } = state.view;
  return [(event.offsetX - x) / scale, (event.offsetY - y) / scale];
}

function insideImage(xy) {
  return state.detail && xy[0] >= 0 && xy[1] >= 0 && xy[0] <= state.detail.width && xy[1] <= state.detail.height;
}

function clampToImage(xy) {
  return [Math.min(Math.max(xy[0], 0), state.detail.width), Math.min(Math.max(xy[1], 0), state.detail.height)];
}

view.addEventListener("contextmenu", (event) => event.preventDefault());

view.addEventListener("pointerdown", (event) => {
  if (!state.detail) return;
  if (event.button === 1) {
    event.preventDefault();
    state.pan = { x: event.offsetX, y: event.offsetY };
    view.setPointerCapture(event.pointerId);
    return;
  }
  // the picture shown is still that of the photo left (→, a list click): a point there became a prompt on
  // the photo opening, at the other's pixel
  if (!labelsShown("no point or box added")) return;
  const xy = toImage(event);
  if (event.button === 2) {
    if (insideImage(xy)) addStep({ type: "point", xy, label: 0 });
    return;
  }
  if (event.button !== 0) return;
  const image = state.current;
  state.press = { image, start: xy, end: xy, x: event.offsetX, y: event.offsetY, shift: event.shiftKey, moved: false };
  view.setPointerCapture(event.pointerId);
});

view.addEventListener("pointermove", (event) => {
  if (state.pan) {
    state.view.x += event.offsetX - state.pan.x;
    state.view.y += event.offsetY - state.pan.y;
    state.pan = { x: event.offsetX, y: event.offsetY };
    draw();
    return;
  }
  if (!state.press) return;
  state.press.end = toImage(event);
  if (Math.hypot(event.offsetX - state.press.x, event.offsetY - state.press.y) > DRAG_THRESHOLD) {
    state.press.moved = true;
  }
  if (state.press.moved) draw();
});

view.addEventListener("pointerup", (event) => {
  if (state.pan) {
    state.pan = null;
    return;
  }
  const press = state.press;
  state.press = null;
  if (!press || event.button !== 0) return;
  if (press.image !== state.current) {
    draw(); // another photo opened while the button was down: its box was drawn on the one left
    return;
  }
  if (press.moved) {
    const a = clampToImage(press.start);
    const b = clampToImage(toImage(event));
    const box = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
    if (box[2] - box[0] >= 1 && box[3] - box[1] >= 1) addStep({ type: "box", box });
    else draw();
  } else if (insideImage(press.start)) {
    addStep({ type: "point", xy: press.start, label: press.shift ? 0 : 1 });
  }
});

view.addEventListener(
  "wheel",
  (event) => {
    if (!state.detail) return;
    event.preventDefault();
    const factor = Math.pow(1.15, -event.deltaY / 100);
    const { scale, x, y } = state.view;
    const next = Math.min(Math.max(scale * factor, 0.02), 64);
    state.view = {
      scale: next,
      x: event.offsetX - ((event.offsetX - x) * next) / scale,
      y: event.offsetY - ((event.offsetY - y) * next) / scale,
    };
    draw();
  },
  { passive: false },
);

document.addEventListener("keydown", (event) => {
  if (event.target instanceof HTMLInputElement) return;
  const ctrl = event.ctrlKey || event.metaKey;
  const key = event.key;
  if (ctrl && (key === "z" || key === "Z")) {
    event.preventDefault();
    if (event.shiftKey) redo();
    else undo();
    return;
  }
  if (ctrl && (key === "y" || key === "Y")) {
    event.preventDefault();
    redo();
    return;
  }
  if (ctrl || event.altKey) return;
  const actions = {
    Enter: acceptCurrent,
    a: () => (event.shiftKey ? acceptAllProposals() : acceptSelectedProposal()),
    r: acceptProposalAsClass,
    R: acceptProposalAsClass,
    e: () => state.proposal !== null && correctProposal(state.proposal),
    E: () => state.proposal !== null && correctProposal(state.proposal),
    p: () => stepProposal(event.shiftKey ? -1 : 1), // Shift+P: back
    Escape: () => ($("export-report").hidden ? clearPrompt() : ($("export-report").hidden = true)),
    Tab: () => cycle(event.shiftKey ? -1 : 1),
    c: () => cycle(event.shiftKey ? -1 : 1), // Shift+C: back, as Shift+Tab
    ArrowRight: () => move(1),
    PageDown: () => move(1),
    ArrowLeft: () => move(-1),
    PageUp: () => move(-1),
    n: nextOpen,
    N: nextOpen,
    v: nextProposed,
    V: nextProposed,
    g: toggleGood,
    G: toggleGood,
    d: toggleDone,
    D: toggleDone,
    Delete: deleteSelected,
    Backspace: deleteSelected,
    "[": () => setOpacity(state.opacity - 0.1),
    "]": () => setOpacity(state.opacity + 0.1),
    f: () => {
      fitView();
      draw();
    },
  };
  // Caps Lock on sends "A" for a, and "a" for Shift+A (Linux, Windows): a letter and its capital do the
  // same, Shift deciding (with Caps Lock on, Shift+A accepted the selected proposal only, Shift+P and
  // Shift+C stepped forward)
  for (const letter of ["a", "p", "c", "f"]) actions[letter.toUpperCase()] = actions[letter];
  if (actions[key]) {
    event.preventDefault();
    actions[key]();
  } else if (/^[1-9]$/.test(key)) {
    selectClass(Number(key) - 1);
  }
});

function wireButtons() {
  const clicks = {
    prev: () => move(-1),
    next: () => move(1),
    "next-open": nextOpen,
    "next-proposed": nextProposed,
    cycle: () => cycle(1),
    accept: acceptCurrent,
    "accept-all": acceptAllProposals,
    reset: () => clearPrompt(),
    undo,
    redo,
    good: toggleGood,
    done: toggleDone,
    export: exportDataset,
    "export-cancel": cancelExport,
  };
  for (const [id, action] of Object.entries(clicks)) $(id).addEventListener("click", action);
  // A focused button would also take Enter and Space: keys belong to the page, not to buttons.
  document.addEventListener("click", (event) => {
    if (event.target instanceof HTMLButtonElement || event.target.closest("button")) {
      event.target.closest("button").blur();
    }
  });
  const opacity = $("opacity");
  opacity.addEventListener("input", () => setOpacity(Number(opacity.value) / 100));
  opacity.addEventListener("change", () => opacity.blur());
  $("export-report").addEventListener("click", (event) => (event.currentTarget.hidden = true));
  opacity.addEventListener("pointerup", () => opacity.blur()); // a click that moves nothing fires no change
  const proposedOnly = $("proposed-only");
  proposedOnly.addEventListener("change", () => {
    proposedOnly.blur(); // keys belong to the page, not to the box
    updateImageList();
  });
  window.addEventListener("resize", () => {
    fitView();
    draw();
  });
}

// For tests and scripts: where an image pixel is on the page.
window.annotator = {
  state,
  imageToClient(x, y) {
    const rect = view.getBoundingClientRect();
    return { x: rect.left + state.view.x + x * state.view.scale, y: rect.top + state.view.y + y * state.view.scale };
  },
};

async function init() {
  wireButtons();
  try {
    state.session = await api("GET", "/api/session");
  } catch (error) {
    showError(error);
    return;
  }
  state.keys = state.session.images.map((item) => item.image);
  for (const item of state.session.images) {
    state.statuses[item.image] = item.status;
    state.proposalCounts[item.image] = item.proposals;
  }
  // A colour prompt and head shape the detector's box proposals (clicks stay SAM's own).
  const prompt = state.session.colour_prompt ? " + colour prompt" : "";
  const head = state.session.colour_head ? " + colour head" : "";
  $("category").textContent = `${state.session.category} · ${state.session.model}${prompt}${head}`;
  renderClasses();
  renderImageList();
  renderCounts(state.session.counts);
  await openImage(state.session.current);
}

init();
