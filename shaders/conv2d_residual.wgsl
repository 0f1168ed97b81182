// conv2d_residual: the second pass of a conv2d whose epilogue has a residual:
// out[i] = act(out[i] + residual[i]), out holding conv2d's result after its
// affine (the fused pass would need 5 storage buffers, over the portable 4).
// One invocation per element. The grid is folded into y when it needs more
// than 65535 workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: residual and out, both [N, C_out, OH, OW] contiguous f32.

struct Params {
    n: u32,          // element count
    activation: u32, // 0 none, 1 relu, 2 sigmoid
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> residual: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= params.n) {
        return;
    }
    var v = out[i] + residual[i];
    if (params.activation == 1u) {
        v = max(v, 0.0);
    } else if (params.activation == 2u) {
        // exp overflows f32 past 88: clamping keeps the sigmoid finite and exact to f32.
        v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    }
    out[i] = v;
}
