// channel_pool: per pixel, the mean and the max over channels (CBAM's
// spatial-attention input): out[n, 0, p] = mean_c x[n, c, p],
// out[n, 1, p] = max_c x[n, c, p], with p = h * W + w.
// One invocation per (n, p); it loops over c. Neighbouring invocations take
// neighbouring pixels, so every load and store is coalesced.
// The grid is folded into y when it needs more than 65535 workgroups:
// linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] and out [N, 2, H, W], contiguous f32.

struct Params {
    n: u32,      // batch
    c: u32,      // channels
    hw: u32,     // pixels per channel, H * W
    total: u32,  // n * hw: invocations that do work
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Channels summed per partial sum: blocking keeps the f32 rounding error of a
// long sum near sqrt(C) ulps instead of C.
const BLOCK: u32 = 64u;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.total) {
        return;
    }
    let n = i / params.hw;
    let p = i - n * params.hw;
    // x[n, c, p] = x[(n * C + c) * HW + p]: start at channel 0, step HW per channel.
    let base = n * params.c * params.hw + p;
    var sum = 0.0;
    var hi = x[base];
    for (var c0 = 0u; c0 < params.c; c0 += BLOCK) {
        var part = 0.0;
        let end = min(c0 + BLOCK, params.c);
        for (var c = c0; c < end; c++) {
            let v = x[base + c * params.hw];
            part += v;
            hi = max(hi, v);
        }
        sum += part;
    }
    // out[n, 0, p] and out[n, 1, p].
    let o = n * 2u * params.hw + p;
    out[o] = sum / f32(params.c);
    out[o + params.hw] = hi;
}
