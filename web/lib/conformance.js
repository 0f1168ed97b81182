// The browser runner: replays the launches `glimpse check --export DIR` recorded,
// through navigator.gpu, on the unchanged shader files, and judges each case's output
// against the CPU reference by the exported tolerance. No dependencies.

import { compare, fnv1a32 } from './compare.js';

/** Opens the adapter and a device with subgroups where the adapter offers them. */
export async function openDevice() {
  if (!navigator.gpu) throw new Error('this browser has no navigator.gpu (WebGPU)');
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error('navigator.gpu.requestAdapter() found no adapter');
  const subgroups = adapter.features.has('subgroups');
  const device = await adapter.requestDevice({ requiredFeatures: subgroups ? ['subgroups'] : [] });
  const info = adapter.info || {};
  const lanes = subgroups && info.subgroupMinSize === info.subgroupMaxSize ? info.subgroupMinSize : null;
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
  return { device, subgroups, lanes, adapter: `${name}; subgroups: ${subgroups ? `${info.subgroupMinSize}-${info.subgroupMaxSize} lanes` : 'no'}` };
}

/** A conformance run over one export: `base` is the export's URL, `root` the repo's (for shaders/). */
export class Runner {
  constructor(gpu, manifest, base, root) {
    Object.assign(this, { gpu, manifest, base, root });
    this.modules = new Map();   // kernel name -> GPUShaderModule
    this.pipelines = new Map(); // kernel + constants -> GPUComputePipeline
  }

  static async open(base, root) {
    const gpu = await openDevice();
    const manifest = await (await fetchOk(new URL('manifest.json', base))).json();
    return new Runner(gpu, manifest, base, root);
  }

  /** Loads and compiles every kernel file the export names; returns [{kernel, ok, error}]
   *  (subgroup kernels on an adapter without subgroups: {kernel, ok: false, skipped}). */
  async compileAll() {
    const results = [];
    for (const [name, k] of Object.entries(this.manifest.kernels)) {
      if (k.needs_subgroups && !this.gpu.subgroups) {
        results.push({ kernel: name, ok: false, skipped: 'needs subgroups, which this adapter lacks' });
        continue;
      }
      try {
        await this.module(name, k);
        results.push({ kernel: name, ok: true });
      } catch (e) {
        results.push({ kernel: name, ok: false, error: String(e.message || e) });
      }
    }
    return results;
  }

  async module(name, k = this.manifest.kernels[name]) {
    if (this.modules.has(name)) return this.modules.get(name);
    if (k.needs_subgroups && !this.gpu.subgroups) throw new Error(`${name} needs subgroups, which this adapter lacks`);
    const bytes = new Uint8Array(await (await fetchOk(new URL(k.file, this.root))).arrayBuffer());
    if (bytes.length !== k.bytes || fnv1a32(bytes) !== k.fnv1a32) {
      throw new Error(`${k.file} is not the text the glimpse binary was built with (rebuild it, then export again)`);
    }
    const device = this.gpu.device;
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ label: name, code: new TextDecoder().decode(bytes) });
    const info = await module.getCompilationInfo();
    const scoped = await device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length || scoped) {
      const text = errors.map((m) => `${k.file}:${m.lineNum}:${m.linePos}: ${m.message}`).join('\n');
      throw new Error(`${name} does not compile: ${text || scoped.message}`);
    }
    this.modules.set(name, module);
    return module;
  }

  async pipeline(name, constants) {
    const key = `${name}${JSON.stringify(constants)}`;
    if (!this.pipelines.has(key)) {
      const module = await this.module(name);
      const pipeline = await this.gpu.device.createComputePipelineAsync({
        label: name, layout: 'auto', compute: { module, entryPoint: 'main', constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return this.pipelines.get(key);
  }

  /** The variant recorded for this adapter's lane count where the case has one, else the portable
   *  variant (no subgroups); subgroup variants need their exact lane count. */
  chooseVariant(c) {
    const lanes = this.gpu.subgroups ? this.gpu.lanes : null;
    const variant = c.variants.find((v) => lanes !== null && v.subgroup_size === lanes) ??
      c.variants.find((v) => v.subgroup_size === null);
    const skipped = c.variants.filter((v) => v !== variant);
    return { variant, skipped };
  }

  /** Runs case `index`; returns its outcome (never throws for a failing case). */
  async runCase(index) {
    const c = this.manifest.cases[index];
    const outcome = { index, op: c.op, label: c.label, shapes: c.shapes };
    const { variant, skipped } = this.chooseVariant(c);
    // Lane counts of the subgroup variants not run here (recorded for other adapters).
    outcome.otherWidths = skipped.map((v) => v.subgroup_size).filter((w) => w !== null);
    // Whether the export holds a variant for this adapter's lanes: then it must be the one run.
    outcome.hasVariantForLanes = this.gpu.lanes !== null && c.variants.some((v) => v.subgroup_size === this.gpu.lanes);
    if (!variant) {
      const why = c.no_portable_variant ?? '';
      return { ...outcome, status: 'skipped', reason: `no variant runs here: ${why}` };
    }
    outcome.kernels = kernelsOf(variant);
    outcome.lanes = variant.subgroup_size; // null: portable kernels
    // The exporter's time for this variant; one recorded for other lanes than the exporter's was not
    // run there, so the time of the variant it did run (its own lanes) stands in, marked as such.
    const timed = variant.recorded_ms !== null ? variant : c.variants.find((v) => v.recorded_ms !== null);
    outcome.recordedMs = timed?.recorded_ms ?? null;
    outcome.recordedLanes = timed && timed !== variant ? timed.subgroup_size : undefined;
    try {
      const data = await (await fetchOk(new URL(c.data, this.base))).arrayBuffer();
      const pipelines = [];
      for (const d of variant.dispatches) pipelines.push(await this.pipeline(d.kernel, d.constants));
      const { got, ms } = await this.launch(c, variant, pipelines, data);
      const want = new Float32Array(data, c.want.offset, numel(c.want.shape));
      const r = compare(got, want, this.manifest.tolerance.rel);
      return { ...outcome, status: r.passed ? 'ok' : 'mismatch', ms, worst: r.worst, maxAbs: r.maxAbs, worstIndex: r.worstIndex,
        gotAtWorst: got[r.worstIndex], wantAtWorst: want[r.worstIndex] };
    } catch (e) {
      return { ...outcome, status: 'error', error: String(e.message || e) };
    }
  }

  /** Uploads, launches every dispatch (one pass each, as glimpse records them) and reads the output. */
  async launch(c, variant, pipelines, data) {
    const device = this.gpu.device;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    const start = performance.now();
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const buffers = [];
    const make = (size, usage) => { const b = device.createBuffer({ size, usage }); buffers.push(b); return b; };
    // Sized as glimpse sizes its buffers: whole vec4s, so a kernel may read any tensor as vec4s.
    const padded = (bytes) => Math.max(16, Math.ceil(bytes / 16) * 16);
    const inputs = c.inputs.map((t) => {
      const bytes = numel(t.shape) * 4;
      const b = make(padded(bytes), storage);
      device.queue.writeBuffer(b, 0, data, t.offset, bytes);
      return b;
    });
    const outBytes = numel(c.want.shape) * 4;
    const output = make(padded(outBytes), storage);
    device.queue.writeBuffer(output, 0, new Float32Array(outBytes / 4).fill(NaN)); // unwritten elements fail
    const encoder = device.createCommandEncoder();
    // One buffer per scratch id, as large as the largest view of it any launch binds.
    const scratch = [];
    const scratchBytes = [];
    for (const d of variant.dispatches) {
      for (const b of d.bindings) {
        if (typeof b === 'object') scratchBytes[b.id] = Math.max(scratchBytes[b.id] ?? 0, b.scratch);
      }
    }
    variant.dispatches.forEach((d, i) => {
      const params = new Uint8Array(Math.ceil(d.params.length / 16) * 16);
      params.set(d.params);
      const uniform = make(params.length, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
      device.queue.writeBuffer(uniform, 0, params);
      const entries = [{ binding: 0, resource: { buffer: uniform } }];
      // A binding is an input's index, 'output', or { scratch: bytes, id }: a buffer the encoder made
      // for a slot the kernel must have but this case does not read (a fused kernel's unused side
      // output), or one that passes data from one launch to a later one (conv2d_phases' planes,
      // repack_pixels' rows, Winograd's transforms):
      // one buffer per id across the variant's launches.
      const scratchOf = (b) => (scratch[b.id] ??= make(padded(scratchBytes[b.id]), storage));
      const buffer = (b) => (b === 'output' ? output : typeof b === 'object' ? scratchOf(b) : inputs[b]);
      d.bindings.forEach((b, j) => entries.push({ binding: j + 1, resource: { buffer: buffer(b) } }));
      const group = device.createBindGroup({ layout: pipelines[i].getBindGroupLayout(0), entries });
      const pass = encoder.beginComputePass({ label: d.kernel });
      pass.setPipeline(pipelines[i]);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(...d.workgroups);
      pass.end();
    });
    const staging = make(outBytes, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    encoder.copyBufferToBuffer(output, 0, staging, 0, outBytes);
    device.queue.submit([encoder.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const got = new Float32Array(staging.getMappedRange().slice(0));
    const ms = performance.now() - start;
    staging.unmap();
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    buffers.forEach((b) => b.destroy());
    if (validation || oom) throw new Error((validation || oom).message);
    return { got, ms };
  }
}

function kernelsOf(v) {
  return [...new Set(v.dispatches.map((d) => d.kernel))].join('+');
}

function numel(shape) {
  return shape.reduce((a, b) => a * b, 1);
}

async function fetchOk(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r;
}
