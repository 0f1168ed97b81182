// matmul_naive: the baseline GEMM, one output per invocation:
// out[b, m, n] = epilogue(sum_k A[b, m, k] * B[b, k, n]).
// Invocation i (1-D over batch x m x n, folded into y past 65535 workgroups:
// linear workgroup = wid.x + wid.y * nwg.x) computes output element i, so
// neighbouring invocations take neighbouring columns.
// Bindings and Params are those of matmul.wgsl: a, bm through strides (transposes,
// stride-0 broadcast batch), affine [2, C] (read when bit 0 is set), residual
// [batch, m, n] (read when bit 1 is set; unused slots hold a stand-in),
// out = [batch, m, n]: 5 storage buffers.

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
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid)
    axis: u32,     // affine indexed by 0: row, 1: column
    tiles_m: u32,  // unused here
    tiles_n: u32,  // unused here
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<f32>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.x + wid.y * nwg.x) * 256u + lid;
    // The host checked batch * m * n fits in u32.
    if (idx >= params.batch * params.m * params.n) {
        return;
    }
    let col = idx % params.n;
    let row = (idx / params.n) % params.m;
    let bi = idx / (params.n * params.m);

    var acc = 0.0;
    let a0 = bi * params.a_sb + row * params.a_sm;
    let b0 = bi * params.b_sb + col * params.b_sn;
    for (var kk = 0u; kk < params.k; kk++) {
        acc = fma(a[a0 + kk * params.a_sk], bm[b0 + kk * params.b_sk], acc);
    }

    var v = acc;
    if ((params.epilogue & 1u) != 0u) {
        let c = select(row, col, params.axis == 1u);
        let channels = select(params.m, params.n, params.axis == 1u);
        v = affine[c] * v + affine[channels + c];
    }
    if ((params.epilogue & 2u) != 0u) {
        v += residual[idx];
    }
    let act = params.epilogue >> 2u;
    if (act == 1u) {
        v = max(v, 0.0);
    } else if (act == 2u) {
        // Clamped so exp cannot overflow; sigmoid(+-88) is already 1 or 0 in f32.
        v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    }
    out[idx] = v;
}
