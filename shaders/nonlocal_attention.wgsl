// nonlocal_attention: the embedded-Gaussian Non-local attention, flash style:
//   y[n, c, q] = sum_k f[q, k] * g[n, c, k],  f[q, :] = softmax_k(scale * sum_d theta[n, d, q] * phi[n, d, k]).
// The Q x K score matrix is never stored: keys are walked in blocks of KB with an online softmax.
//
// One invocation owns QPI = 4 queries (the lanes of its vec4s) and a chunk of up to DVC output channels.
// Its queries are q_first + WG * r (r = 0..3), strided rather than adjacent so that neighbouring
// invocations read neighbouring theta addresses and write neighbouring y addresses (coalesced).
// Per key block it computes its 4 x KB scores, then updates a running max m and running sum l per query;
// when the block raises the max, the accumulator and l are rescaled by exp(m_old - m_new) <= 1, so every
// exp argument is <= 0 and logits of any size (e.g. above 300) cannot overflow.
//
// Why no workgroup memory: lavapipe runs a workgroup on one CPU thread and each barrier is a coroutine
// switch per 8 lanes; every invocation of a workgroup reads the same phi and g addresses at the same
// time (key and channel indices are uniform), which caches serve as a broadcast on GPUs and CPUs alike.
// Why channel chunks: a query's accumulator is Dv floats; an invocation keeps 4 queries x 32 channels,
// and Dv > 32 is split over grid y, each chunk recomputing the scores (score work x ceil(Dv / 32)).
// Why the accumulators live in y (unnormalised until the end) and not in a register array: llvmpipe
// (Mesa's CPU driver behind OpenGL and lavapipe) builds compute shaders as coroutines, and LLVM's
// coroutine frame builder spent most of this pipeline's compile (at its first dispatch) on a 32-vec4
// array indexed in a loop: 2.5-3.2 s on OpenGL, 0.8-1.4 s with the sums in y (single-shader probe,
// Mesa 22.3). The extra y traffic is 4 loads and 4 stores per channel per block of 16 keys; warm time
// did not measurably change (BENCHMARKS.md, "Non-local kernels' first run on OpenGL").
//
// Grid: x = groups of WG * QPI queries from q_begin, y = channel chunks, z = images from n_begin.
// The host splits big problems into several dispatches (query ranges, image ranges) so no dispatch runs long.
// Bindings: theta [N, D, Q], phi [N, D, K], g [N, Dv, K], y [N, Dv, Q], contiguous f32.

const WG: u32 = 64u;  // invocations per workgroup
const QPI: u32 = 4u;  // queries per invocation (one vec4)
const KB: u32 = 16u;  // keys per block
const DVC: u32 = 32u; // output channels per invocation; mirrors CHANNELS_PER_INVOCATION in the op

struct Params {
    d: u32,       // channels of theta and phi
    dv: u32,      // channels of g and y
    q: u32,       // query pixels
    k: u32,       // key pixels
    q_begin: u32, // this dispatch's queries: [q_begin, q_end)
    q_end: u32,
    n_begin: u32, // this dispatch's images: [n_begin, n_end)
    n_end: u32,
    scale: f32,   // multiplies every score
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> theta: array<f32>;
@group(0) @binding(2) var<storage, read> phi: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// exp(x) for x <= 0 to a few ulps at any x. Drivers may compute exp(x) as exp2(x * log2(e)), whose
// rounding of the product costs up to |x| ulps (Vulkan allows 3 + 2|x|): at x = -10 an error of 1e-6,
// over the tolerance once many such weights are summed. Cody-Waite reduction instead: x = n ln2 + r
// with |r| <= ln2 / 2, ln2 = HI + LO where HI has 16 significant bits so n * HI is exact.
// Clamping at -100 (exp = 4e-44) keeps 2^n within ldexp's range; such weights are 0 in f32 anyway.
fn exp_nonpositive(x: vec4<f32>) -> vec4<f32> {
    let xc = max(x, vec4<f32>(-100.0));
    let n = round(xc * 1.4426950408889634);
    let r = (xc - n * 0.693145751953125) - n * 1.4286068203094173e-6;
    return ldexp(exp(r), vec4<i32>(n));
}

// theta at channel row `row` (the index of theta[n, d, 0]) for the 4 queries.
fn theta_at(row: u32, qs: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(theta[row + qs.x], theta[row + qs.y], theta[row + qs.z], theta[row + qs.w]);
}

// y at channel row `row` (the index of y[n, c, 0]) for the valid queries, 0 for the others (queries
// past the end repeat q_first): a clamped query belongs to another lane or invocation, which alone
// reads and writes it.
fn load_valid(row: u32, qs: vec4<u32>, valid: vec4<bool>) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (valid.x) {
        v.x = y[row + qs.x];
    }
    if (valid.y) {
        v.y = y[row + qs.y];
    }
    if (valid.z) {
        v.z = y[row + qs.z];
    }
    if (valid.w) {
        v.w = y[row + qs.w];
    }
    return v;
}

// Writes v to y at channel row `row` for the valid queries (see load_valid).
fn store_valid(row: u32, qs: vec4<u32>, valid: vec4<bool>, v: vec4<f32>) {
    if (valid.x) {
        y[row + qs.x] = v.x;
    }
    if (valid.y) {
        y[row + qs.y] = v.y;
    }
    if (valid.z) {
        y[row + qs.z] = v.z;
    }
    if (valid.w) {
        y[row + qs.w] = v.w;
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = params.n_begin + wid.z;
    let q_first = params.q_begin + wid.x * (WG * QPI) + lid;
    let c0 = wid.y * DVC;
    if (n >= params.n_end || q_first >= params.q_end || c0 >= params.dv) {
        return;
    }
    let dvn = min(DVC, params.dv - c0);
    // Queries past the end are replaced by q_first: computed on valid memory, never stored.
    let valid = vec4<u32>(q_first) + vec4<u32>(0u, 1u, 2u, 3u) * WG < vec4<u32>(params.q_end);
    let qs = select(vec4<u32>(q_first), vec4<u32>(q_first) + vec4<u32>(0u, 1u, 2u, 3u) * WG, valid);
    let t_base = n * params.d * params.q;         // theta[n, 0, 0]; channel d at + d * Q
    let p_base = n * params.d * params.k;         // phi[n, 0, 0]; channel d at + d * K
    let g_base = (n * params.dv + c0) * params.k; // g[n, c0, 0]; channel c0 + i at + i * K
    let last = params.k - 1u;
    let y_base = (n * params.dv + c0) * params.q; // y[n, c0, 0]; channel c0 + i at + i * Q

    var m = vec4<f32>(0.0);         // running max, set from the first block
    var l = vec4<f32>(0.0);         // running sum of exp(s - m)
    for (var k0 = 0u; k0 < params.k; k0 += KB) {
        // Scores of the block. Keys past the end read key K - 1 (clamped index): a real score, so the
        // block max is unaffected; their probabilities are zeroed below.
        // Channels are taken four at a time and summed pairwise before joining the running score: a
        // score's rounding error, which softmax turns into a relative error of its weight, grows like
        // sqrt(D / 4) ulps of the score instead of sqrt(D).
        // Zeroed for every block by an explicit initializer: for a bare `var s: array<..>;` in the loop,
        // Chromium's WebGPU (Tint, SwiftShader) kept the previous block's scores (web/, npm test).
        var s = array<vec4<f32>, KB>();
        var d = 0u;
        for (; d + 4u <= params.d; d += 4u) {
            let t0 = theta_at(t_base + d * params.q, qs);
            let t1 = theta_at(t_base + (d + 1u) * params.q, qs);
            let t2 = theta_at(t_base + (d + 2u) * params.q, qs);
            let t3 = theta_at(t_base + (d + 3u) * params.q, qs);
            let p_row = p_base + d * params.k;
            let k2 = params.k * 2u;
            // Two loops of KB / 2 keys, not one of KB: llvmpipe (Mesa's CPU driver behind lavapipe and
            // OpenGL) took 25-45 s to compile the one loop on a first run and 4 s the two (a loop this
            // big is past the size its compiler unrolls, leaving s[j] indexed at run time). Each s[j]
            // sums the same terms in the same order either way.
            for (var j = 0u; j < KB / 2u; j++) {
                let kj = p_row + min(k0 + j, last);
                s[j] += (t0 * phi[kj] + t1 * phi[kj + params.k]) + (t2 * phi[kj + k2] + t3 * phi[kj + k2 + params.k]);
            }
            for (var j = KB / 2u; j < KB; j++) {
                let kj = p_row + min(k0 + j, last);
                s[j] += (t0 * phi[kj] + t1 * phi[kj + params.k]) + (t2 * phi[kj + k2] + t3 * phi[kj + k2 + params.k]);
            }
        }
        for (; d < params.d; d++) {
            let t = theta_at(t_base + d * params.q, qs);
            let p_row = p_base + d * params.k;
            for (var j = 0u; j < KB; j++) {
                s[j] += t * phi[p_row + min(k0 + j, last)];
            }
        }
        var block_max = s[0] * params.scale;
        for (var j = 0u; j < KB; j++) {
            s[j] *= params.scale;
            block_max = max(block_max, s[j]);
        }
        if (k0 == 0u) {
            m = block_max; // so the first correction is exp(0) = 1 (acc and l are still 0)
        }
        let m_new = max(m, block_max);
        let corr = exp_nonpositive(m - m_new); // <= 1: shrinks what was summed against the old max
        var block_sum = vec4<f32>(0.0);
        for (var j = 0u; j < KB; j++) {
            let p = select(vec4<f32>(0.0), exp_nonpositive(s[j] - m_new), k0 + j < params.k); // max-subtracted
            s[j] = p;
            block_sum += p;
        }
        l = l * corr + block_sum;
        m = m_new;
        // The block's 16 terms are summed apart, then added: rounding error grows like
        // sqrt(16) + sqrt(K / 16) ulps instead of sqrt(K) for one running sum (y is often a small
        // average of many terms of both signs, so its error is judged against much smaller values).
        for (var i = 0u; i < dvn; i++) {
            let g_row = g_base + i * params.k;
            var part = vec4<f32>(0.0);
            for (var j = 0u; j < KB; j++) {
                part += s[j] * g[g_row + min(k0 + j, last)];
            }
            let row = y_base + i * params.q; // this channel's running sum (see the top)
            var acc = vec4<f32>(0.0);
            if (k0 != 0u) {
                acc = load_valid(row, qs, valid);
            }
            store_valid(row, qs, valid, acc * corr + part);
        }
    }

    // l >= 1: the key holding the final max contributes exp(0).
    let inv = 1.0 / l;
    for (var i = 0u; i < dvn; i++) {
        let row = y_base + i * params.q;
        store_valid(row, qs, valid, load_valid(row, qs, valid) * inv);
    }
}
