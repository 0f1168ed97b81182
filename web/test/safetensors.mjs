// Reads a .safetensors file's F32 tensors (all the browser tests need) without dependencies.

import { readFileSync } from 'node:fs';

/** { name: { shape, data: Float32Array } } for every F32 tensor of `path`. */
export function readSafetensors(path) {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
  const base = 8 + headerLength;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || t.dtype !== 'F32') continue;
    const [begin, end] = t.data_offsets;
    const data = new Float32Array((end - begin) / 4);
    for (let i = 0; i < data.length; i++) data[i] = bytes.readFloatLE(base + begin + 4 * i);
    tensors[name] = { shape: t.shape, data };
  }
  return tensors;
}
