// The tolerance rule of src/check.rs (`compare`), written again for the browser. The
// numbers come from glimpse's export (manifest.tolerance.rel), never from this file:
// an element passes when |got - want| <= rel * (|want| + rms(want)), rms over the
// whole reference; NaN never passes.

/**
 * Compares `got` with `want` (array-likes of numbers) element by element.
 * @returns {{passed: boolean, worst: number, worstIndex: number, maxAbs: number}}
 *   worst is the largest error as a multiple of what the rule allows (<= 1 passes).
 */
export function compare(got, want, rel) {
  if (!(rel > 0)) throw new Error(`compare: the tolerance must be a positive number, got ${rel}`);
  let sumSq = 0;
  for (let i = 0; i < want.length; i++) sumSq += want[i] * want[i];
  const rms = Math.sqrt(sumSq / Math.max(want.length, 1));
  let maxAbs = 0, worst = 0, worstIndex = 0;
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    let d = Math.abs(got[i] - want[i]);
    if (Number.isNaN(d)) d = Infinity; // an unwritten (poisoned) element scores infinitely bad
    const allowed = rel * (Math.abs(want[i]) + rms);
    const score = d === 0 ? 0 : d / allowed;
    if (score > worst) { worst = score; worstIndex = i; }
    if (d > maxAbs) maxAbs = d;
  }
  const passed = got.length === want.length && worst <= 1;
  return { passed, worst, worstIndex, maxAbs };
}

/** 32-bit FNV-1a of a byte array, as glimpse's export computes it (src/check/export.rs). */
export function fnv1a32(bytes) {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}
