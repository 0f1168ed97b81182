// Every op case of `glimpse check` replayed in headless Chromium's WebGPU: the launches
// glimpse records (`glimpse check --export`), the unchanged shaders/*.wgsl, and the
// tolerance of src/check.rs. Fails on any compile error, mismatch or launch error.
// GLIMPSE_EXPORT=DIR reuses an export; GLIMPSE_SEED fixes the inputs (random otherwise).

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { glimpse, launchChromium, REPO, serve, tempDir, within } from './support.mjs';

test('every kernel case matches its CPU reference in Chromium WebGPU', { timeout: 3600_000 }, async () => {
  let dir = process.env.GLIMPSE_EXPORT;
  const fresh = !dir;
  if (fresh) {
    dir = tempDir('glimpse-export-');
    const seed = process.env.GLIMPSE_SEED ?? String(Math.floor(Math.random() * 2 ** 32));
    console.log(`exporting every case with seed ${seed} (replay: GLIMPSE_SEED=${seed} npm test)`);
    const start = performance.now();
    glimpse(['check', '--export', dir, '--seed', seed], { stdio: ['ignore', 'ignore', 'pipe'] });
    console.log(`export written in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  }
  const server = await serve({ '/web/': join(REPO, 'web'), '/shaders/': join(REPO, 'shaders'), '/export/': dir });
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${server.url}/web/conformance.html?export=/export/`);
    const ready = await within(60_000, 'opening WebGPU', page.evaluate(() => window.conformanceReady));
    console.log(`browser adapter: ${ready.adapter}`);
    const compiled = await within(600_000, 'compiling', page.evaluate(() => window.conformance.compileAll()));
    const compileErrors = compiled.filter((k) => !k.ok && !k.skipped);
    const notCompiled = compiled.filter((k) => k.skipped).map((k) => `${k.kernel} (${k.skipped})`);
    console.log(`${compiled.filter((k) => k.ok).length} of ${compiled.length} kernels compile in Chromium` +
      (notCompiled.length ? `; not compiled: ${notCompiled.join(', ')}` : ''));

    const outcomes = [];
    for (let i = 0; i < ready.cases; i++) {
      const o = await within(300_000, `case ${i}`, page.evaluate((n) => window.conformance.runCase(n), i));
      outcomes.push(o);
      const other = o.recordedLanes === undefined ? '' : ` (${o.recordedLanes ?? 'no'} lanes)`;
      const recorded = o.recordedMs == null ? 'none' : `${o.recordedMs.toFixed(2)} ms${other}`;
      const time = o.ms === undefined ? '' : `${o.ms.toFixed(2).padStart(9)} ms here ${recorded.padStart(22)} recorded`;
      const lanes = o.lanes ? ` (${o.lanes} lanes)` : '';
      const detail = o.status === 'ok' ? `err/tol ${o.worst.toFixed(3)}` : o.error ?? o.reason ??
        `err/tol ${o.worst} at ${o.worstIndex}: got ${o.gotAtWorst}, want ${o.wantAtWorst}`;
      console.log(`${o.status.padEnd(8)} ${o.op.padEnd(18)} ${o.label.slice(0, 44).padEnd(44)} ${((o.kernels ?? '') + lanes).padEnd(40)} ${time}  ${detail}`);
    }
    summarise(outcomes, compiled, ready.lanes);
    const failed = outcomes.filter((o) => o.status !== 'ok');
    assert.deepEqual(compileErrors, [], 'kernels that do not compile');
    // A case recorded for this adapter's subgroup width runs that variant, not the portable one.
    const missed = outcomes.filter((o) => o.hasVariantForLanes && o.lanes !== ready.lanes);
    assert.deepEqual(missed.map((o) => `${o.op} ${o.label}: ran ${o.kernels ?? o.status}`), [],
      `cases with a ${ready.lanes}-lane variant that did not run it`);
    assert.deepEqual(failed.map((o) => `${o.op} ${o.label}: ${o.status} ${o.error ?? o.reason ?? o.worst}`), [], 'cases that fail');
  } finally {
    await browser.close();
    await server.close();
    if (fresh) rmSync(dir, { recursive: true, force: true });
  }
});

/** Totals, the kernels that were only compiled, and time per op here and as recorded (lavapipe). */
function summarise(outcomes, compiled, lanes) {
  const ran = new Set(outcomes.flatMap((o) => (o.kernels ? o.kernels.split('+') : [])));
  const onlyCompiled = compiled.filter((k) => k.ok && !ran.has(k.kernel)).map((k) => k.kernel);
  const count = (s) => outcomes.filter((o) => o.status === s).length;
  console.log(`\n${outcomes.length} cases: ${count('ok')} ok, ${count('mismatch')} mismatch, ${count('error')} error, ${count('skipped')} skipped`);
  console.log(`kernels run: ${ran.size}; compiled but not run here: ${onlyCompiled.join(', ') || 'none'}`);
  const withSubgroups = outcomes.filter((o) => o.lanes);
  const byLanes = [...new Set(withSubgroups.map((o) => o.lanes))].map((w) =>
    `${withSubgroups.filter((o) => o.lanes === w && o.status === 'ok').length} ok of ${withSubgroups.filter((o) => o.lanes === w).length}` +
    ` with ${w}-lane subgroup kernels`);
  console.log(`adapter subgroups: ${lanes ? `${lanes} lanes` : 'none of a fixed width'}; cases run ${byLanes.join(', ') || 'with no subgroup kernels'}`);
  const others = [...new Set(outcomes.flatMap((o) => o.otherWidths ?? []))].sort((a, b) => a - b);
  const withOthers = outcomes.filter((o) => o.otherWidths?.length).length;
  if (withOthers) console.log(`${withOthers} cases also hold variants for ${others.join(', ')} lanes (other adapters; not run here)`);
  const byOp = new Map();
  for (const o of outcomes.filter((x) => x.ms !== undefined)) {
    const t = byOp.get(o.op) ?? { n: 0, here: 0, recorded: 0, median: [] };
    t.n++; t.here += o.ms;
    // Variants recorded for other lanes were not run by the exporter: no time to compare.
    if (o.recordedMs != null) { t.recorded += o.recordedMs; t.median.push(o.ms / o.recordedMs); }
    byOp.set(o.op, t);
  }
  console.log('\nop                  cases   ms here (sum)   ms recorded (sum)   median ratio');
  for (const [op, t] of byOp) {
    t.median.sort((a, b) => a - b);
    const median = t.median.length ? t.median[t.median.length >> 1].toFixed(2) : '-';
    console.log(`${op.padEnd(18)} ${String(t.n).padStart(6)} ${t.here.toFixed(1).padStart(15)} ${t.recorded.toFixed(1).padStart(19)} ${median.padStart(14)}`);
  }
}
