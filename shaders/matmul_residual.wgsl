// matmul_residual: the second pass of a GEMM whose epilogue has both an affine
// and a residual: out[i] = activation(out[i] + residual[i]), in place.
// Why a second pass: A, B, affine, residual and out would be 5 storage buffers,
// one more than the portable WebGPU baseline (4 per stage) allows. The GEMM
// pass applies the affine and writes scale * acc + shift; this pass adds the
// residual and applies the activation, so the result equals the fused epilogue.
// One invocation per element, 1-D over batch x m x n, folded into y past 65535
// workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: residual [batch, m, n], out [batch, m, n] (read and written).
// Params are those of matmul.wgsl; only m, n, batch and epilogue are read.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_sb: u32,
    a_sm: u32,
    a_sk: u32,
    b_sb: u32,
    b_sk: u32,
    b_sn: u32,
    epilogue: u32, // bits 2.. activation (0 none, 1 relu, 2 sigmoid)
    axis: u32,
    tiles_m: u32,
    tiles_n: u32,
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
    // The host checked batch * m * n fits in u32.
    if (i >= params.batch * params.m * params.n) {
        return;
    }
    var v = out[i] + residual[i];
    let act = params.epilogue >> 2u;
    if (act == 1u) {
        v = max(v, 0.0);
    } else if (act == 2u) {
        // Clamped so exp cannot overflow; sigmoid(+-88) is already 1 or 0 in f32.
        v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    }
    out[i] = v;
}
