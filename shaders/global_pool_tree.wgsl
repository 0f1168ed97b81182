// global_pool_tree: the same result as global_pool.wgsl,
// out[n, 0, c] = mean_p x[n, c, p], out[n, 1, c] = max_p x[n, c, p],
// with one workgroup of 256 invocations per (n, c): each invocation strides
// over the map (neighbours read neighbouring pixels: coalesced), then a tree
// reduction in workgroup memory combines the 256 partial sums and maxima.
// The GPU-style variant: it wins on real GPUs when N * C is small and H * W
// large; on CPU adapters every barrier is costly (see global_pool.wgsl).
// Workgroups are folded into y past 65535: row = wid.x + wid.y * nwg.x.
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

const WG: u32 = 256u;

// 2 x 256 x 4 bytes = 2 KiB of workgroup memory.
var<workgroup> sums: array<f32, WG>;
var<workgroup> maxes: array<f32, WG>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    // The guard is uniform across the workgroup, so no invocation skips a barrier.
    if (row >= params.n * params.c) {
        return;
    }
    let base = row * params.hw;
    // Invocations past the end of a short map hold the identities (0, x[base]).
    var sum = 0.0;
    var hi = x[base];
    for (var p = lid; p < params.hw; p += WG) {
        let v = x[base + p];
        sum += v;
        hi = max(hi, v);
    }
    sums[lid] = sum;
    maxes[lid] = hi;
    // Halve the active range each step; the barrier makes the partner's
    // value from the previous step visible before it is read.
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        workgroupBarrier();
        if (lid < stride) {
            sums[lid] += sums[lid + stride];
            maxes[lid] = max(maxes[lid], maxes[lid + stride]);
        }
    }
    if (lid == 0u) {
        let n = row / params.c;
        let o = row + n * params.c;
        out[o] = sums[0] / f32(params.hw);
        out[o + params.c] = maxes[0];
    }
}
