// attention_rows: softmax rows of the Non-local attention for chosen query pixels:
//   out[n, r, k] = softmax_k(scale * sum_d theta[n, d, queries[r]] * phi[n, d, k]),
// for visualising where a query pixel looks. Only the requested rows are computed, never the Q x K matrix.
//
// One workgroup of 64 per (row, image); invocation lid handles keys lid, lid + 64, ... (neighbouring
// invocations read neighbouring phi addresses). The row is its own scratch space, in three passes:
// scores written to out with a per-invocation max; the maxima reduced; exp(s - max) (max-subtracted, so
// every exp argument is <= 0) written back with a per-invocation sum; the sums reduced; out scaled by 1 / sum.
// Each invocation re-reads only the elements it wrote itself, so only the two reductions need barriers.
// The reductions are one barrier each and a serial loop over the 64 partials in every invocation: on
// lavapipe a barrier costs a coroutine switch per 8 lanes, more than 64 loads.
//
// Grid: x = rows [row_begin, row_begin + row_count) of this dispatch, y = images from n_begin.
// Bindings: theta [N, D, Q], phi [N, D, K], out [N, rows, K], contiguous f32.

const WG: u32 = 64u;

struct Params {
    d: u32,         // channels of theta and phi
    q: u32,         // query pixels
    k: u32,         // key pixels
    rows: u32,      // rows of out (all requested queries)
    row_begin: u32, // first row of this dispatch
    row_count: u32, // rows in this dispatch (<= 16)
    n_begin: u32,   // this dispatch's images: [n_begin, n_end)
    n_end: u32,
    scale: f32,     // multiplies every score
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    // Flat query index (y * W + x) of row row_begin + i at queries[i / 4][i % 4]: uniform arrays
    // have a 16-byte element stride, so the indices are packed four to a vec4.
    queries: array<vec4<u32>, 4>,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> phi: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> partial_max: array<f32, WG>;
var<workgroup> partial_sum: array<f32, WG>;

// exp(x) for x <= 0 to a few ulps at any x. Drivers may compute exp(x) as exp2(x * log2(e)), whose
// rounding of the product costs up to |x| ulps (Vulkan allows 3 + 2|x|): at x = -10 an error of 1e-6,
// over the tolerance once many such weights are summed. Cody-Waite reduction instead: x = n ln2 + r
// with |r| <= ln2 / 2, ln2 = HI + LO where HI has 16 significant bits so n * HI is exact.
// Clamping at -100 (exp = 4e-44) keeps 2^n within ldexp's range; such weights are 0 in f32 anyway.
fn exp_nonpositive(x: f32) -> f32 {
    let xc = max(x, -100.0);
    let n = round(xc * 1.4426950408889634);
    let r = (xc - n * 0.693145751953125) - n * 1.4286068203094173e-6;
    return ldexp(exp(r), i32(n));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = wid.x;
    let n = params.n_begin + wid.y;
    // Workgroup-uniform guard: the barriers below stay in uniform control flow.
    if (r >= params.row_count || n >= params.n_end) {
        return;
    }
    let query = params.queries[r / 4u][r % 4u];
    let t_col = n * params.d * params.q + query;                    // theta[n, 0, query]; channel d at + d * Q
    let p_base = n * params.d * params.k;                           // phi[n, 0, 0]; channel d at + d * K
    let o_base = (n * params.rows + params.row_begin + r) * params.k; // out[n, row, 0]
    // The channel loop below runs over addresses up to t_end, not `d < params.d`: lavapipe (Mesa
    // 22.3) inlines a uniform bounding a loop with a constant start and step, recompiles the
    // shader with its value at every dispatch and frees the copies only with the pipeline (300 KB
    // and 3 ms per dispatch at D = 8). A bound that depends on the workgroup is never inlined.
    let t_end = t_col + params.d * params.q;

    // Pass 1: scores. An invocation without keys (K < 64) keeps the lowest finite max.
    var m = -3.4e38;
    for (var k = lid; k < params.k; k += WG) {
        var s = 0.0;
        var p = p_base + k;
        for (var t = t_col; t < t_end; t += params.q) { // theta[n, d, query] for d = 0, 1, ...
            s += theta[t] * phi[p];                    // phi[n, d, k]
            p += params.k;
        }
        s *= params.scale;
        out[o_base + k] = s;
        m = max(m, s);
    }
    partial_max[lid] = m;
    workgroupBarrier(); // every partial max is written
    var row_max = partial_max[0];
    for (var i = 1u; i < WG; i++) {
        row_max = max(row_max, partial_max[i]);
    }

    // Pass 2: exponentials of the max-subtracted scores, and their sum (>= 1: the max gives exp(0)).
    var l = 0.0;
    for (var k = lid; k < params.k; k += WG) {
        let p = exp_nonpositive(out[o_base + k] - row_max);
        out[o_base + k] = p;
        l += p;
    }
    partial_sum[lid] = l;
    workgroupBarrier(); // every partial sum is written
    var total = 0.0;
    for (var i = 0u; i < WG; i++) {
        total += partial_sum[i];
    }

    // Pass 3: normalise.
    let inv = 1.0 / total;
    for (var k = lid; k < params.k; k += WG) {
        out[o_base + k] *= inv;
    }
}
