// cbam_spatial_gate_pack: first of the three cbam_spatial_gate dispatches.
// The portable baseline allows 4 storage buffers per stage, fewer than the
// op's inputs, so the small ones are packed into one scratch buffer:
//   scratch = [ ca (N * C) | weight (2 * k * k) | scale, shift (2) | s (N * H * W) ]
// This kernel fills the first three parts: one invocation per element i of
// them (scale, shift = 1, 0 without the affine flag, so the next kernel needs
// no branch). The grid is folded into y past 65535 workgroups: linear
// workgroup = wid.x + wid.y * nwg.x.
// Bindings: ca [N, C], weight [1, 2, k, k], affine [2, 1] (scale, shift; the
// host binds weight here without the affine flag and it is not read),
// scratch as above; contiguous f32. The host guarantees every index fits in u32.

struct Params {
    pixels: u32,  // N * H * W
    c: u32,       // channels of x
    h: u32,       // height
    w: u32,       // width
    k: u32,       // kernel size (odd), padding k / 2
    flags: u32,   // bit 0: affine, bit 1: residual, bit 2: relu
    n: u32,       // images
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> ca: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read_write> scratch: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    let gates = params.n * params.c;             // ca occupies [0, gates)
    let taps = gates + 2u * params.k * params.k;  // weight occupies [gates, taps)
    if (i >= taps + 2u) {
        return;
    }
    if (i < gates) {
        scratch[i] = ca[i];
    } else if (i < taps) {
        scratch[i] = weight[i - gates];
    } else if ((params.flags & 1u) != 0u) {
        scratch[i] = affine[i - taps];
    } else {
        scratch[i] = select(0.0, 1.0, i == taps);  // identity: scale 1, shift 0
    }
}
