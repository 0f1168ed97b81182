// global_pool_vec4: global_pool (per (n, c), the average and the max over the H x W map:
// out[n, 0, c] = mean_p x[n, c, p], out[n, 1, c] = max_p x[n, c, p]) for H * W a multiple of 4,
// reading four pixels per access.
// Why: on CPU adapters (lavapipe) every storage access is a loop over the SIMD lanes, so a vec4
// per lane costs about what a scalar does: the map's serial walk runs a quarter of the accesses.
// Layout as in global_pool: one invocation per (n, c) walks its whole map, workgroups of 64.
// Numerics: the quads are summed in blocks of 16 (64 pixels) into a vec4 (four sums of 16
// terms), each block's four lanes added to the total, so rounding grows with 64 + HW / 64 as in
// global_pool; the max is exact either way.
// Bindings: x [N, C, H, W] as vec4s and out [N, 2, C] (f32), contiguous. The host guarantees 4
// divides H * W and every index fits in u32.

struct Params {
    n: u32,      // batch
    c: u32,      // channels
    hw: u32,     // H * W, the length of one reduction
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const BLOCK: u32 = 16u;  // quads

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // row = n * C + c; x's row starts at quad row * HW / 4. Grid folded as in eltwise.
    let row = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (row >= params.n * params.c) {
        return;
    }
    let quads = params.hw / 4u;
    let base = row * quads;
    var sum = 0.0;
    var hi = x[base];
    for (var q0 = 0u; q0 < quads; q0 += BLOCK) {
        var part = vec4(0.0);
        let end = min(q0 + BLOCK, quads);
        for (var q = q0; q < end; q++) {
            let v = x[base + q];
            part += v;
            hi = max(hi, v);
        }
        sum += (part.x + part.y) + (part.z + part.w);
    }
    // out[n, 0, c] = out[n * 2C + c], out[n, 1, c] = out[n * 2C + C + c].
    let n = row / params.c;
    let o = row + n * params.c;
    out[o] = sum / f32(params.hw);
    out[o + params.c] = max(max(hi.x, hi.y), max(hi.z, hi.w));
}
