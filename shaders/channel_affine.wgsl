// channel_affine: out[i] = scale[c] * x[i] + shift[c], c the channel (dimension 1)
// of element i in x [N, C, inner...]: c = (i / inner) % C. A BatchNorm in eval
// mode, a bias, or both, folded into one scale and shift per channel.
// One invocation per element; the grid folds into y past 65535 workgroups:
// linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x [N * C * inner], affine [2, C] (row 0 scale, row 1 shift), out like x.

struct Params {
    n: u32,      // element count
    c: u32,      // channels
    inner: u32,  // elements per channel plane (product of the dimensions after C)
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    let c = (i / params.inner) % params.c;
    out[i] = affine[c] * x[i] + affine[params.c + c];
}
