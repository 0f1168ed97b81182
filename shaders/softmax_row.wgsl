// softmax_row: softmax over contiguous rows (the axis is the last one, inner
// == 1), e.g. Non-local attention rows [N, HW, HW] over the keys:
// out[r, l] = exp(x[r, l] - m) / sum_l' exp(x[r, l'] - m), m = max_l x[r, l]
// (max-subtracted: rows offset by 1e4 or with +80 spikes stay finite).
// One workgroup of 64 invocations per row. Each invocation strides over the
// row (neighbours read neighbouring elements: coalesced), then two tree
// reductions in workgroup memory give the row's max and sum, then every
// invocation writes its strided elements.
// Rows are folded into y past 65535 workgroups: row = wid.x + wid.y * nwg.x.
// Bindings: x [rows, len] and out [rows, len], contiguous f32.

struct Params {
    rows: u32,   // number of rows (outer)
    len: u32,    // row length
    inner: u32,  // always 1 here; shared layout with softmax.wgsl
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

// 64 x 4 bytes of workgroup memory, reused by both reductions.
var<workgroup> scratch: array<f32, WG>;

// Tree reduction of scratch[0..WG) into scratch[0]; `is_max` picks max or +.
// Returns the result to every invocation.
fn reduce(lid: u32, is_max: bool) -> f32 {
    for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
        // Makes the previous step's (or the caller's) writes visible.
        workgroupBarrier();
        if (lid < stride) {
            let a = scratch[lid];
            let b = scratch[lid + stride];
            scratch[lid] = select(a + b, max(a, b), is_max);
        }
    }
    workgroupBarrier();
    let r = scratch[0];
    // Nobody may overwrite scratch[0] (next reduction) before all have read it.
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    // Uniform across the workgroup: no invocation skips a barrier.
    if (row >= params.rows) {
        return;
    }
    let base = row * params.len;
    // Invocations past the end of a short row hold x[base], a harmless max.
    var m = x[base];
    for (var l = lid; l < params.len; l += WG) {
        m = max(m, x[base + l]);
    }
    scratch[lid] = m;
    m = reduce(lid, true);
    // Each invocation sums about len / 64 terms, then the tree adds the
    // partial sums pairwise: the f32 error stays a few ulps.
    var sum = 0.0;
    for (var l = lid; l < params.len; l += WG) {
        sum += exp(x[base + l] - m);
    }
    scratch[lid] = sum;
    sum = reduce(lid, false);
    // sum >= 1 (the max term is exp(0)), so the division is safe.
    for (var l = lid; l < params.len; l += WG) {
        out[base + l] = exp(x[base + l] - m) / sum;
    }
}
