// softmax: the tensor viewed as [outer, len, inner] around the softmax axis;
// out[o, l, k] = exp(x[o, l, k] - m) / sum_l' exp(x[o, l', k] - m), with
// m = max_l x[o, l, k] subtracted so exp never overflows (rows offset by 1e4
// or with +80 spikes stay finite and exact).
// One invocation per (o, k) loops serially over l: three passes (max, sum,
// write) with no workgroup memory and no barriers. Neighbouring invocations
// take neighbouring k, so loads are coalesced when inner > 1 (SK: [N, M, C]
// over M). For inner == 1 and long rows softmax_row.wgsl is used instead.
// Small workgroups (64) so that few rows still spread over every core.
// The grid is folded into y past 65535 workgroups: wid.x + wid.y * nwg.x.
// Bindings: x and out, contiguous f32 of the same shape.

struct Params {
    outer: u32,  // product of the dimensions before the axis
    len: u32,    // the axis' length
    inner: u32,  // product of the dimensions after the axis
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// Terms summed per partial sum: blocking keeps the f32 rounding error of a
// 3136-term sum near a few ulps.
const BLOCK: u32 = 64u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= params.outer * params.inner) {
        return;
    }
    // i = o * inner + k; x[o, l, k] = x[(o * len + l) * inner + k].
    let o = i / params.inner;
    let k = i - o * params.inner;
    let base = o * params.len * params.inner + k;
    let step = params.inner;
    var m = x[base];
    for (var l = 1u; l < params.len; l++) {
        m = max(m, x[base + l * step]);
    }
    var sum = 0.0;
    for (var l0 = 0u; l0 < params.len; l0 += BLOCK) {
        var part = 0.0;
        let end = min(l0 + BLOCK, params.len);
        for (var l = l0; l < end; l++) {
            part += exp(x[base + l * step] - m);
        }
        sum += part;
    }
    // sum >= 1 (the max term is exp(0)), so the division is safe.
    for (var l = 0u; l < params.len; l++) {
        let j = base + l * step;
        out[j] = exp(x[j] - m) / sum;
    }
}
