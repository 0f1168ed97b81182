// The interactive part of `glimpse map`'s index.html, inlined into the page by
// src/viz/html.rs (one inline module with no imports: the page must open from disk, and
// Chromium refuses module and fetch loads over file://). The data comes from each
// picture's live.js (a classic script, window.glimpseLive), written by src/viz/live.rs.
//
// - hovering a heat map shows the map's value under the cursor;
// - clicking a Non-local map computes that pixel's attention row live: with
//   attention_rows.wgsl (inlined beside this script) through WebGPU, or, without WebGPU,
//   in plain JavaScript; the page says which ran and how long it took;
// - the grid view shows every picture x every attention layer.
// window.glimpseReport exposes the results (the browser tests read them).

const report = { last: null, rows: [], backend: null, ready: null };
window.glimpseReport = report;

const wgsl = document.getElementById('glimpse-attention-rows').textContent;
const status = document.getElementById('glimpse-live-status');
const hoverBox = document.getElementById('glimpse-hover');

function bytes(base64) {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function f16(bits) {
  const sign = bits & 0x8000 ? -1 : 1, e = (bits >> 10) & 31, m = bits & 1023;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** The little-endian f32 or f16 values of a base64 string, as a Float32Array. */
function floats(base64, dtype) {
  const b = bytes(base64);
  const view = new DataView(b.buffer);
  if (dtype === 'f16') {
    const out = new Float32Array(b.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = f16(view.getUint16(2 * i, true));
    return out;
  }
  const out = new Float32Array(b.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

// Figure path -> { picture, heat, attention }.
const figures = new Map();
for (const picture of window.glimpseLive ?? []) {
  for (const a of picture.attention) {
    a.thetaValues = floats(a.theta, a.dtype);
    a.phiValues = floats(a.phi, a.dtype);
  }
  for (const heat of picture.heat) {
    heat.data = floats(heat.values, 'f32');
    figures.set(heat.figure, { picture, heat, attention: picture.attention.find((a) => a.map === heat.map) });
  }
}

/** Where the pointer is over `el` as fractions of the photo, which fills `photoShare` of its
 *  width (a heat map's picture has its colour bar on the right); null outside the photo. */
function fraction(event, el, photoShare = 1) {
  const box = el.getBoundingClientRect();
  const fx = (event.clientX - box.left) / box.width / photoShare;
  const fy = (event.clientY - box.top) / box.height;
  return fx >= 0 && fx < 1 && fy >= 0 && fy < 1 ? [fx, fy] : null;
}

function showHover(event, text) {
  hoverBox.textContent = text;
  hoverBox.style.left = `${event.pageX + 14}px`;
  hoverBox.style.top = `${event.pageY + 10}px`;
  hoverBox.hidden = false;
  report.hover = text;
}

function hideHover() {
  hoverBox.hidden = true;
}

// ---- the attention row of one query pixel ----

/** In plain JavaScript (f64): softmax_k(sum_d theta[d, q] phi[d, k]), the score scale folded into theta. */
function rowInJs(a, q) {
  const [h, w] = a.grid, [hk, wk] = a.keys, d = a.channels;
  const Q = h * w, K = hk * wk;
  const scores = new Float64Array(K);
  let max = -Infinity;
  for (let k = 0; k < K; k++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += a.thetaValues[c * Q + q] * a.phiValues[c * K + k];
    scores[k] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let k = 0; k < K; k++) { scores[k] = Math.exp(scores[k] - max); sum += scores[k]; }
  const row = new Float32Array(K);
  for (let k = 0; k < K; k++) row[k] = scores[k] / sum;
  return row;
}

let gpu; // undefined: not tried yet; then { device, pipeline, name } or { error }

async function openGpu() {
  try {
    if (!navigator.gpu) return { error: 'this browser offers no WebGPU' };
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { error: 'no WebGPU adapter' };
    const device = await adapter.requestDevice();
    const module = device.createShaderModule({ label: 'attention_rows', code: wgsl });
    const info = await module.getCompilationInfo();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) return { error: `attention_rows.wgsl does not compile: ${errors[0].message}` };
    const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const i = adapter.info ?? {};
    const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'adapter';
    return { device, pipeline, name, buffers: new Map() };
  } catch (e) {
    return { error: `WebGPU failed: ${e.message ?? e}` };
  }
}

/** With attention_rows.wgsl: one dispatch of one row, the launch glimpse's AttentionRows op makes. */
async function rowOnGpu(g, a, q) {
  const { device, pipeline } = g;
  const [h, w] = a.grid, [hk, wk] = a.keys;
  const K = hk * wk;
  if (!g.buffers.has(a)) {
    const upload = (values) => {
      const b = device.createBuffer({ size: values.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      device.queue.writeBuffer(b, 0, values);
      return b;
    };
    const out = device.createBuffer({ size: K * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const read = device.createBuffer({ size: K * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    g.buffers.set(a, { theta: upload(a.thetaValues), phi: upload(a.phiValues), out, read });
  }
  const b = g.buffers.get(a);
  // struct Params of attention_rows.wgsl: d, q, k, rows, row_begin, row_count, n_begin, n_end,
  // scale (f32), 3 pads, then queries: array<vec4<u32>, 4> (16 flat query indices).
  const params = new ArrayBuffer(112);
  const u = new Uint32Array(params);
  u.set([a.channels, h * w, K, 1, 0, 1, 0, 1]);
  new Float32Array(params, 32, 1)[0] = 1.0; // the scale is folded into theta
  u[12] = q;
  const uniform = device.createBuffer({ size: 112, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniform, 0, params);
  device.pushErrorScope('validation');
  const group = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [uniform, b.theta, b.phi, b.out].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(1, 1, 1);
  pass.end();
  encoder.copyBufferToBuffer(b.out, 0, b.read, 0, K * 4);
  device.queue.submit([encoder.finish()]);
  const error = await device.popErrorScope();
  if (error) throw new Error(error.message);
  await b.read.mapAsync(GPUMapMode.READ);
  const row = new Float32Array(b.read.getMappedRange().slice(0));
  b.read.unmap();
  uniform.destroy();
  return row;
}

async function computeRow(a, q) {
  if (gpu === undefined) gpu = await openGpu();
  if (!gpu.error) {
    try {
      return { row: await rowOnGpu(gpu, a, q), backend: `WebGPU (${gpu.name})` };
    } catch (e) {
      gpu = { error: `WebGPU failed: ${e.message ?? e}` };
    }
  }
  return { row: rowInJs(a, q), backend: `plain JavaScript (${gpu.error})` };
}

// ---- drawing ----


const photos = new Map(); // picture -> decoded <img> of its photo, or null when it cannot load

async function photoOf(picture) {
  if (!photos.has(picture.picture)) {
    const img = new Image();
    img.src = picture.photo_file;
    photos.set(picture.picture, img.decode().then(() => img, () => null));
  }
  return photos.get(picture.picture);
}

/** Paints `values` (h x w) with the report's colormap from their own min to max over `photo`
 *  (blended with the report's alpha; alone when there is no photo); marks (fx, fy). */
function paint(canvas, picture, photo, values, h, w, marker) {
  const colour = (t) => picture.colormap[Math.max(0, Math.min(255, Math.round(t * 255)))];
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const small = new ImageData(w, h);
  for (let i = 0; i < values.length; i++) {
    const [r, g, b] = colour(hi > lo ? (values[i] - lo) / (hi - lo) : 0);
    small.data.set([r, g, b, 255], 4 * i);
  }
  const bitmap = document.createElement('canvas');
  bitmap.width = w; bitmap.height = h;
  bitmap.getContext('2d').putImageData(small, 0, 0);
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.globalAlpha = 1;
  if (photo) ctx.drawImage(photo, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = photo ? picture.alpha : 1;
  ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = 1;
  const [mx, my] = [marker[0] * canvas.width, marker[1] * canvas.height];
  ctx.lineWidth = 2;
  ctx.strokeStyle = '#fff';
  ctx.beginPath(); ctx.arc(mx, my, 6, 0, 2 * Math.PI); ctx.stroke();
  ctx.strokeStyle = '#000';
  ctx.beginPath(); ctx.arc(mx, my, 8, 0, 2 * Math.PI); ctx.stroke();
  return [lo, hi];
}

/** The live panel under a figure: a canvas the size of the photo and a caption. */
function panel(img, picture) {
  const fig = img.closest('figure');
  let live = fig.querySelector('.live');
  if (!live) {
    live = document.createElement('div');
    live.className = 'live';
    const canvas = document.createElement('canvas');
    [canvas.width, canvas.height] = picture.photo;
    const caption = document.createElement('p');
    caption.className = 'live-caption';
    live.append(canvas, caption);
    fig.append(live);
  }
  return { canvas: live.querySelector('canvas'), caption: live.querySelector('.live-caption') };
}

async function onClick(event, img, entry) {
  const start = performance.now();
  const { picture, heat, attention: a } = entry;
  if (!img.naturalWidth) return; // not loaded yet
  const f = fraction(event, img, picture.photo[0] / img.naturalWidth);
  if (!f) return;
  const [h, w] = a.grid;
  const [qx, qy] = [Math.floor(f[0] * w), Math.floor(f[1] * h)];
  status.textContent = `computing the attention row of (${qx}, ${qy}) of ${heat.map}...`;
  const { row, backend } = await computeRow(a, qy * w + qx);
  const { canvas, caption } = panel(img, picture);
  const [hk, wk] = a.keys;
  paint(canvas, picture, await photoOf(picture), row, hk, wk, [(qx + 0.5) / w, (qy + 0.5) / h]);
  const ms = performance.now() - start;
  canvas.onmousemove = (e) => {
    const g = fraction(e, canvas);
    if (g) showHover(e, `live row of (${qx}, ${qy}) at key (${Math.floor(g[0] * wk)}, ${Math.floor(g[1] * hk)}): ${row[Math.floor(g[1] * hk) * wk + Math.floor(g[0] * wk)].toPrecision(4)}`);
  };
  canvas.onmouseleave = hideHover;
  caption.textContent = `live: ${heat.map} of query (${qx}, ${qy}) of ${w} x ${h}, over ${wk} x ${hk} keys; ${backend}, ${ms.toFixed(1)} ms`;
  status.textContent = `last row computed with ${backend} in ${ms.toFixed(1)} ms`;
  report.backend = backend;
  report.last = { picture: picture.picture, map: heat.map, qx, qy, grid: [h, w], keys: [hk, wk], row: Array.from(row), backend, ms };
  report.rows.push(report.last);
  document.body.dataset.liveRows = String(report.rows.length);
}

function onHover(event, img, entry) {
  const { picture, heat } = entry;
  if (!img.naturalWidth) return;
  const f = fraction(event, img, picture.photo[0] / img.naturalWidth);
  if (!f) return hideHover();
  const [x, y] = [Math.floor(f[0] * heat.width), Math.floor(f[1] * heat.height)];
  const v = heat.data[y * heat.width + x];
  const what = heat.row === null ? heat.map : `${heat.map} row ${heat.row}`;
  showHover(event, `${what} at (${x}, ${y}) of ${heat.width} x ${heat.height}: ${v.toPrecision(4)}`);
}

for (const img of document.querySelectorAll('img[data-figure]')) {
  const entry = figures.get(img.dataset.figure);
  if (!entry) continue;
  img.addEventListener('mousemove', (e) => onHover(e, img, entry));
  img.addEventListener('mouseleave', hideHover);
  // Clicks compute rows under the picture's figure; the grid's thumbnails show values on hover.
  if (entry.attention && img.closest('figure')) {
    img.classList.add('clickable');
    img.title = 'click a pixel: its attention row is computed live';
    img.addEventListener('click', (e) => { e.preventDefault(); onClick(e, img, entry); });
  }
}

// ---- views ----

function view(name) {
  document.body.dataset.view = name;
  for (const b of document.querySelectorAll('[data-view-button]')) b.setAttribute('aria-pressed', String(b.dataset.viewButton === name));
}
for (const b of document.querySelectorAll('[data-view-button]')) b.addEventListener('click', () => view(b.dataset.viewButton));
view('pictures');

const live = [...figures.values()].filter((e) => e.attention).length;
status.textContent = live
  ? `Click a pixel of a Non-local map (${live} here): its attention row is computed live in this page.`
  : 'No Non-local maps here: hover any map for its values.';
report.ready = true;
