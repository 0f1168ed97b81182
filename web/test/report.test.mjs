// The interactive report of `glimpse map`, opened from disk (file://) in headless Chromium:
// clicked pixels' attention rows, computed live in the page (WebGPU, then the plain
// JavaScript fallback with WebGPU removed), must match `glimpse run --maps --query X,Y`
// for the same pixels within src/check.rs's tolerance; hovering shows the map's value;
// the grid view's screenshot is not blank. Prints the answer time of clicks on a 56 x 56 map.

import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { compare } from '../lib/compare.js';
import { readSafetensors } from './safetensors.mjs';
import { glimpse, launchChromium, REPO, tempDir, within } from './support.mjs';

const WEIGHTS = join(REPO, 'tests/fixtures/networks/timm.resnet18_nl.weights.safetensors');
const NETWORK = ['--arch', 'timm.resnet18', '--arg', 'attn_layer=nl', '--weights', WEIGHTS];
const PICTURE = '000_circle';
// Query cells (x, y) clicked on two maps: layer1.0 is 56 x 56 (its clicks are timed), layer4.1 7 x 7.
// `glimpse run --query X,Y` takes each block's own grid, so every cell must lie in the smallest (7 x 7).
const CLICKS = [
  ['layer1.0.se.attention', [0, 0]], ['layer1.0.se.attention', [6, 3]], ['layer1.0.se.attention', [2, 6]],
  ['layer4.1.se.attention', [6, 6]], ['layer4.1.se.attention', [0, 5]], ['layer4.1.se.attention', [3, 2]],
];

let dir, tolerance, expected;

before(() => {
  dir = tempDir('glimpse-report-');
  const pictures = ['000_circle.png', '001_triangle.png'].map((p) => join(REPO, 'examples/demo/images', p));
  glimpse(['map', ...NETWORK, '--img-size', '224', ...pictures, '-o', join(dir, 'report'), '-q']);
  // The tolerance, from src/check.rs through the export (never written here).
  glimpse(['check', '--export', join(dir, 'export'), '--filter', 'attention_rows', '--seed', '1']);
  tolerance = JSON.parse(readFileSync(join(dir, 'export/manifest.json'), 'utf8')).tolerance.rel;
  // The same network on the same input (the report keeps it as x), rows for the same cells.
  const queries = CLICKS.flatMap(([, [x, y]]) => ['--query', `${x},${y}`]);
  glimpse(['run', ...NETWORK, '--input', join(dir, 'report', PICTURE, 'maps.safetensors'),
    '--output', join(dir, 'run.safetensors'), '--maps', ...queries, '-q']);
  expected = readSafetensors(join(dir, 'run.safetensors'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Opens the report from disk and clicks every cell of CLICKS; returns what the page computed. */
async function clickAll(webgpu) {
  const browser = await launchChromium({ webgpu });
  try {
    if (!webgpu) await browser.context.addInitScript(() => { delete Navigator.prototype.gpu; });
    const page = await browser.context.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`file://${join(dir, 'report', 'index.html')}`);
    await within(30_000, 'report script', page.waitForFunction(() => window.glimpseReport?.ready === true));
    const results = [];
    for (const [i, [map, [qx, qy]]] of CLICKS.entries()) {
      const img = page.locator(`figure img[data-figure="${PICTURE}/${map}.q0.png"]`);
      await img.scrollIntoViewIfNeeded();
      await img.evaluate((el) => el.decode()); // figures load lazily
      const share = await img.evaluate((el) => {
        const data = window.glimpseLive.find((p) => p.picture === el.dataset.figure.split('/')[0]);
        return data.photo[0] / el.naturalWidth;
      });
      const grid = await page.evaluate((m) => window.glimpseLive[0].attention.find((a) => a.map === m).grid, map);
      const box = await img.boundingBox();
      const position = { x: ((qx + 0.5) / grid[1]) * share * box.width, y: ((qy + 0.5) / grid[0]) * box.height };
      const start = performance.now();
      await img.click({ position });
      await within(60_000, `row ${i}`, page.waitForFunction((n) => Number(document.body.dataset.liveRows) === n, i + 1, { polling: 'raf' }));
      const wall = performance.now() - start;
      const last = await page.evaluate(() => window.glimpseReport.last);
      results.push({ ...last, wall, want: [qx, qy], caption: await page.locator('.live-caption').first().textContent() });
    }
    const hover = await hoverCheck(page);
    const status = await page.locator('#glimpse-live-status').textContent();
    return { results, hover, status, problems, page, browser };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Hovers cell (10, 20) of layer1.0's first map; returns the text shown and the stored value. */
async function hoverCheck(page) {
  const img = page.locator(`figure img[data-figure="${PICTURE}/layer1.0.se.attention.q0.png"]`);
  await img.scrollIntoViewIfNeeded();
  await img.evaluate((el) => el.decode());
  const share = await img.evaluate((el) => window.glimpseLive[0].photo[0] / el.naturalWidth);
  const box = await img.boundingBox();
  await page.mouse.move(box.x + (10.5 / 56) * share * box.width, box.y + (20.5 / 56) * box.height);
  const text = await page.locator('#glimpse-hover').textContent();
  const maps = readSafetensors(join(dir, 'report', PICTURE, 'maps.safetensors'));
  return { text, stored: maps['layer1.0.se.attention'].data[20 * 56 + 10] };
}

function checkRows(results, backend) {
  for (const r of results) {
    assert.deepEqual([r.qx, r.qy], r.want, `the click landed on (${r.qx}, ${r.qy}), meant ${r.want}`);
    assert.ok(r.backend.startsWith(backend), `ran ${r.backend}, expected ${backend}`);
    const run = expected[r.map];
    const k = run.shape[2] * run.shape[3];
    const index = CLICKS.findIndex(([m, [x, y]]) => m === r.map && x === r.qx && y === r.qy);
    const want = run.data.subarray(index * k, (index + 1) * k);
    const c = compare(r.row, want, tolerance);
    console.log(`${r.map} (${r.qx}, ${r.qy}) of ${r.grid[1]} x ${r.grid[0]}: ${r.backend}, err/tol ${c.worst.toFixed(3)}, ` +
      `answered in ${r.ms.toFixed(1)} ms (page) / ${r.wall.toFixed(1)} ms (click to drawn, from Node)`);
    assert.ok(c.passed, `${r.map} (${r.qx}, ${r.qy}): err/tol ${c.worst} at ${c.worstIndex}: ${r.row[c.worstIndex]} vs ${want[c.worstIndex]}`);
  }
  const big = results.filter((r) => r.grid[0] === 56).map((r) => r.ms.toFixed(1));
  console.log(`56 x 56 map, ${backend}: clicks answered in ${big.join(', ')} ms (the first includes looking for WebGPU and opening it where found)`);
}

test('clicked rows computed with WebGPU match glimpse run, hover shows values, the grid is drawn', { timeout: 600_000 }, async () => {
  const { results, hover, status, problems, page, browser } = await clickAll(true);
  try {
    assert.deepEqual(problems, []);
    console.log(`status: ${status}`);
    checkRows(results, 'WebGPU');
    assert.match(results[0].caption, /WebGPU/);
    const shown = Number(hover.text.split(': ').pop());
    assert.ok(Math.abs(shown - hover.stored) <= 1e-3 * Math.abs(hover.stored), `hover shows ${hover.text}, map holds ${hover.stored}`);

    await page.locator('[data-view-button=grid]').click();
    const grid = page.locator('#grid-view');
    await grid.waitFor({ state: 'visible' });
    assert.equal(await page.locator('section.picture').first().isVisible(), false, 'the grid view hides the pictures');
    const cells = await grid.locator('img').count();
    assert.equal(cells, 2 * 8, 'every picture x every attention layer (2 x 8)');
    await grid.locator('img').evaluateAll((imgs) => Promise.all(imgs.map((i) => i.decode())));
    const png = (await grid.screenshot()).toString('base64');
    const stats = await page.evaluate(async (b64) => {
      const blob = await (await fetch(`data:image/png;base64,${b64}`)).blob();
      const bitmap = await createImageBitmap(blob);
      const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bitmap, 0, 0);
      const px = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
      const colours = new Set();
      let inked = 0;
      for (let i = 0; i < px.length; i += 4) {
        colours.add((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]);
        if (px[i] + px[i + 1] + px[i + 2] < 700) inked++;
      }
      return { width: bitmap.width, height: bitmap.height, colours: colours.size, inked: inked / (px.length / 4) };
    }, png);
    const thumb = await grid.locator('img').first().boundingBox();
    await page.mouse.move(thumb.x + thumb.height / 2, thumb.y + thumb.height / 2);
    const gridHover = await page.locator('#glimpse-hover').textContent();
    assert.match(gridHover, /^layer1\.0\.se\.attention row 0 at \(\d+, \d+\) of 56 x 56: /, 'hovering a grid cell shows its value');
    console.log(`grid view screenshot ${stats.width} x ${stats.height}: ${stats.colours} colours, ${(100 * stats.inked).toFixed(0)}% not white`);
    assert.ok(stats.colours > 1000 && stats.inked > 0.3, `the grid view looks blank: ${JSON.stringify(stats)}`);
  } finally {
    await browser.close();
  }
});

test('without WebGPU the plain JavaScript fallback computes the same rows and says so', { timeout: 600_000 }, async () => {
  const { results, status, problems, browser } = await clickAll(false);
  try {
    assert.deepEqual(problems, []);
    console.log(`status: ${status}`);
    checkRows(results, 'plain JavaScript');
    assert.match(results[0].caption, /plain JavaScript \(this browser offers no WebGPU\)/);
  } finally {
    await browser.close();
  }
});

test('the demo report: clicking a map\'s own query pixel reproduces its stored row (sub-sampled keys)', { timeout: 600_000 }, async () => {
  glimpse(['demo', '-o', join(dir, 'demo'), '-q']);
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.goto(`file://${join(dir, 'demo', 'index.html')}`);
    await within(30_000, 'report script', page.waitForFunction(() => window.glimpseReport?.ready === true));
    const picture = await page.evaluate(() => window.glimpseLive[0].picture);
    const figure = `${picture}/nl.attention.q0.png`;
    // The static map's query, as its caption names it: "nl attention of query (x, y) of W x H".
    const caption = await page.locator(`figure:has(img[data-figure="${figure}"]) figcaption`).first().textContent();
    const [, qx, qy, w, h] = caption.match(/query \((\d+), (\d+)\) of (\d+) x (\d+)/).map(Number);
    const img = page.locator(`figure img[data-figure="${figure}"]`);
    await img.scrollIntoViewIfNeeded();
    await img.evaluate((el) => el.decode());
    const share = await img.evaluate((el) => window.glimpseLive[0].photo[0] / el.naturalWidth);
    const box = await img.boundingBox();
    await img.click({ position: { x: ((qx + 0.5) / w) * share * box.width, y: ((qy + 0.5) / h) * box.height } });
    await within(60_000, 'the row', page.waitForFunction(() => document.body.dataset.liveRows === '1'));
    const last = await page.evaluate(() => window.glimpseReport.last);
    assert.deepEqual([last.qx, last.qy], [qx, qy]);
    const stored = readSafetensors(join(dir, 'demo', picture, 'maps.safetensors'))['nl.attention'];
    const k = stored.shape[2] * stored.shape[3];
    assert.deepEqual(last.keys, [stored.shape[2], stored.shape[3]]);
    const c = compare(last.row, stored.data.subarray(0, k), tolerance);
    console.log(`demo ${picture} nl.attention (${qx}, ${qy}) of ${w} x ${h} over ${last.keys.join(' x ')} keys: ${last.backend}, err/tol ${c.worst.toFixed(3)}`);
    assert.ok(c.passed, `err/tol ${c.worst}`);
  } finally {
    await browser.close();
  }
});
