// hard_mask: a 0/1 mask from a soft map, per plane of hw values.
// One invocation per element e of the elements [base, base + n) this dispatch
// covers (whole planes). The grid is folded into y past 65535 workgroups:
// linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] and out [N, C, H, W], contiguous f32.
//   rule 0 (threshold): out[e] = 1 when x[e] >= threshold, else 0.
//   rule 1 (top-k): out[e] = 1 when rank(e) < k, where rank(e) counts the
//   elements of e's plane that come before it in a stable descending sort:
//   larger values, and equal values at a lower index. Ranks are then a
//   permutation of 0..hw, so exactly k ones per plane, ties going to the
//   lower index. Each invocation scans its whole plane: O(hw^2) per plane,
//   so the host caps hw and splits the planes over several dispatches.
// Comparisons only: exact in f32, no rounding to match.

struct Params {
    n: u32,          // elements in this dispatch (a whole number of planes)
    hw: u32,         // plane size H * W
    base: u32,       // first element of this dispatch
    rule: u32,       // 0: threshold, 1: top-k
    k: u32,          // top-k: ones per plane, 1..=hw
    threshold: f32,  // threshold: the smallest value mapped to 1 (finite)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    let e = params.base + i;
    let v = x[e];
    if (params.rule == 0u) {
        out[e] = select(0.0, 1.0, v >= params.threshold);
        return;
    }
    // e = plane_start + j with j its index inside the plane.
    let j = e % params.hw;
    let plane_start = e - j;
    // Elements before e in the plane outrank it when >= v (equal and lower
    // index), those after it only when > v: splitting the scan at j saves an
    // index comparison per step. Stop once the rank reaches k: e is out.
    var rank = 0u;
    for (var t = 0u; t < j && rank < params.k; t++) {
        rank += select(0u, 1u, x[plane_start + t] >= v);
    }
    for (var t = j + 1u; t < params.hw && rank < params.k; t++) {
        rank += select(0u, 1u, x[plane_start + t] > v);
    }
    out[e] = select(0.0, 1.0, rank < params.k);
}
