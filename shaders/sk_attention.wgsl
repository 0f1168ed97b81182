// sk_attention: SKNet's branch weights from z (shaders/sk_attention_reduce.wgsl):
//   l[m, c]      = sum over d of sel_w[m * C + c, d] * z[n, d] + sel_b[m * C + c]
//   out[n, m, c] = softmax over m of l[m, c]
// One invocation per (n, c), c fastest, computing its M logits, the softmax
// and M outputs: neighbouring invocations share z[n, :] (a broadcast) and
// write neighbouring outputs. The grid is folded into y past 65535
// workgroups: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: z [N, D], sel_w [M * C, D] (path-major: row m * C + c is branch
// m, channel c), sel_b [M * C], out [N, M, C]; contiguous f32.
// The host guarantees 2 <= M <= 4 and that every element count fits in u32.

struct Params {
    n: u32,           // images
    c: u32,           // channels
    d: u32,           // reduced width D
    branches: u32,    // M, 2..=4
    activation: u32,  // applied by sk_attention_reduce; unused here
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read> sel_w: array<f32>;
@group(0) @binding(3) var<storage, read> sel_b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= params.n * params.c) {
        return;
    }
    // i = n * C + c.
    let C = params.c;
    let D = params.d;
    let M = params.branches;
    let c = i % C;
    let n = i / C;
    let zrow = n * D;

    // Softmax is unchanged by a common shift, so the biases are shifted by
    // their largest first: a large offset shared by the branches (1e3) then
    // cancels exactly instead of rounding away the logits' low bits.
    var bmax = sel_b[c];
    for (var m = 1u; m < M; m++) {
        bmax = max(bmax, sel_b[m * C + c]);
    }
    var logit: array<f32, 4>;
    var lmax = 0.0;
    for (var m = 0u; m < M; m++) {
        let row = (m * C + c) * D;
        var acc = 0.0;
        for (var d = 0u; d < D; d++) {
            acc += sel_w[row + d] * z[zrow + d];
        }
        logit[m] = acc + (sel_b[m * C + c] - bmax);
        lmax = select(max(lmax, logit[m]), logit[m], m == 0u);
    }
    // Max-subtracted: every exponent is <= 0 and the largest term is 1, so
    // nothing overflows and the sum is at least 1.
    var sum = 0.0;
    for (var m = 0u; m < M; m++) {
        logit[m] = exp(logit[m] - lmax);
        sum += logit[m];
    }
    for (var m = 0u; m < M; m++) {
        out[(n * M + m) * C + c] = logit[m] / sum;
    }
}
