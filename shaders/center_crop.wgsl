// center_crop: out[p, y, x] = x[p, top + y, left + x] for the N * C planes p.
// One invocation per output element; neighbouring invocations copy
// neighbouring elements of one row. The grid is folded into y past 65535
// workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N, C, H, W] and out [N, C, OH, OW], contiguous f32.
// The host computes top and left (torchvision's round-half-to-even offsets),
// guarantees top + OH <= H and left + OW <= W, and that every index fits in u32.

struct Params {
    n: u32,     // output element count, N * C * OH * OW
    h: u32,     // input height
    w: u32,     // input width
    oh: u32,    // crop height
    ow: u32,    // crop width
    top: u32,   // first input row kept
    left: u32,  // first input column kept
    _pad0: u32,
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
    // i = (p * OH + y) * OW + x.
    let ox = i % params.ow;
    let oy = (i / params.ow) % params.oh;
    let p = i / (params.ow * params.oh);
    out[i] = x[(p * params.h + params.top + oy) * params.w + params.left + ox];
}
