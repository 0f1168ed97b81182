// global_pool: per (n, c), the average and the max over the H x W map:
// out[n, 0, c] = mean_p x[n, c, p], out[n, 1, c] = max_p x[n, c, p].
// One invocation per (n, c) walks its whole map serially: no workgroup memory
// and no barriers. On CPU adapters (lavapipe) this ran 10-50x faster than a
// tree reduction; global_pool_tree.wgsl is the variant for real GPUs.
// Small workgroups (64) so that few channels still spread over every core.
// Bindings: x [N, C, H, W] and out [N, 2, C], contiguous f32.

struct Params {
    n: u32,      // batch
    c: u32,      // channels
    hw: u32,     // H * W, the length of one reduction
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Elements summed per partial sum: blocking keeps the f32 rounding error of a
// 3136-element sum near a few ulps (the mean is compared at 1e-5 relative).
const BLOCK: u32 = 64u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // row = n * C + c; x's row starts at row * HW. Grid folded as in eltwise.
    let row = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (row >= params.n * params.c) {
        return;
    }
    let base = row * params.hw;
    var sum = 0.0;
    var hi = x[base];
    for (var p0 = 0u; p0 < params.hw; p0 += BLOCK) {
        var part = 0.0;
        let end = min(p0 + BLOCK, params.hw);
        for (var p = p0; p < end; p++) {
            let v = x[base + p];
            part += v;
            hi = max(hi, v);
        }
        sum += part;
    }
    // out[n, 0, c] = out[n * 2C + c], out[n, 1, c] = out[n * 2C + C + c].
    let n = row / params.c;
    let o = row + n * params.c;
    out[o] = sum / f32(params.hw);
    out[o + params.c] = hi;
}
