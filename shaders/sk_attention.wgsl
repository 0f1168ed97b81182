// sk_attention: SKNet's attention over M branches for one image n:
//   z[d]        = act(scale[d] * sum over c of fc[d, c] * s[n, c] + shift[d])
//   l[m, c]     = sum over d of sel_w[m * C + c, d] * z[d] + sel_b[m * C + c]
//   out[n, m, c] = softmax over m of l[m, c]
// One workgroup per image n (the grid folds into y past 65535 workgroups:
// n = wid.x + wid.y * nwg.x). Phase 1: invocations stride over d, each a
// serial dot over C, writing z into workgroup memory; a barrier; phase 2:
// invocations stride over channels c, each computing its M logits, the
// softmax and M outputs. The work is tiny (an M*C x D and a D x C matrix per
// image), so one dispatch and no global round trip for z is the point.
// Bindings: s [N, C], fc [D, C], fc_affine [2, D] (row 0 scale, row 1 shift),
// sel_w [M * C, D] (path-major: row m * C + c is branch m, channel c),
// sel_b [M * C], out [N, M, C]; contiguous f32: 6 storage buffers, within
// WebGPU's default 8.
// The host guarantees 2 <= M <= 4, D <= MAX_D and that every element count
// fits in u32.

struct Params {
    n: u32,           // images
    c: u32,           // channels
    d: u32,           // reduced width D
    branches: u32,    // M, 2..=4
    activation: u32,  // 0: none, 1: ReLU, 2: sigmoid
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> fc: array<f32>;
@group(0) @binding(3) var<storage, read> fc_affine: array<f32>;
@group(0) @binding(4) var<storage, read> sel_w: array<f32>;
@group(0) @binding(5) var<storage, read> sel_b: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

const WORKGROUP: u32 = 64u;
// z fills the portable 16 KiB of workgroup memory: far above any SK block's
// D (max(C / 16, 32)). Mirrored by MAX_D in src/ops/sk_attention.rs.
const MAX_D: u32 = 4096u;

var<workgroup> z: array<f32, MAX_D>;

fn activate(v: f32) -> f32 {
    switch params.activation {
        case 1u: {
            return max(v, 0.0);
        }
        case 2u: {
            // Clamped so exp cannot overflow (WGSL may assume no Inf).
            return 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
        }
        default: {
            return v;
        }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    // n depends only on workgroup builtins, so the whole workgroup returns or
    // none does, and the barrier below stays in uniform control flow.
    let n = wid.x + wid.y * nwg.x;
    if (n >= params.n) {
        return;
    }
    let C = params.c;
    let D = params.d;
    let M = params.branches;

    // Phase 1: z[d] for d = lid, lid + 64, ...
    for (var d = lid; d < D; d += WORKGROUP) {
        var acc = 0.0;
        for (var c = 0u; c < C; c++) {
            acc += fc[d * C + c] * s[n * C + c];
        }
        z[d] = activate(fc_affine[d] * acc + fc_affine[D + d]);
    }
    // Every z[d] is written before any invocation reads them in phase 2.
    workgroupBarrier();

    // Phase 2: channel c = lid, lid + 64, ...
    for (var c = lid; c < C; c += WORKGROUP) {
        // Softmax is unchanged by a common shift, so the biases are shifted by
        // their largest first: a large offset shared by the branches (1e3)
        // then cancels exactly instead of rounding away the logits' low bits.
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
                acc += sel_w[row + d] * z[d];
            }
            logit[m] = acc + (sel_b[m * C + c] - bmax);
            lmax = select(max(lmax, logit[m]), logit[m], m == 0u);
        }
        // Max-subtracted: every exponent is <= 0 and the largest term is 1,
        // so nothing overflows and the sum is at least 1.
        var sum = 0.0;
        for (var m = 0u; m < M; m++) {
            logit[m] = exp(logit[m] - lmax);
            sum += logit[m];
        }
        for (var m = 0u; m < M; m++) {
            out[(n * M + m) * C + c] = logit[m] / sum;
        }
    }
}
