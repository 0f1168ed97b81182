// nonlocal_attention_wide: nonlocal_attention for wide values (Dv > 32), the same flash-style result
//   y[n, c, q] = sum_k f[q, k] * g[n, c, k],  f[q, :] = softmax_k(scale * sum_d theta[n, d, q] * phi[n, d, k]),
// with each score computed once per workgroup instead of once per 32-channel chunk.
//
// A workgroup owns QB = 64 queries x CW = 128 output channels (Dv > 128 is split over grid y, each chunk
// recomputing the scores: 2x at Dv = 256 instead of 8x). Invocation lid is query group qg = lid % 16
// (queries q0 + qg + 16 r, r = 0..3, the lanes of its vec4s) and channel group cg = lid / 16 (channels
// c0 + 32 cg + i, i = 0..31). Keys are walked in blocks of KB = 32, three phases per block:
//   1. scores: invocation (qg, cg) computes its 4 queries x keys k0 + 8 cg + j (j = 0..7) into s_tile;
//   2. after a barrier, every invocation takes the block max of its 4 queries over all 32 keys from
//      s_tile (the 4 channel groups of a query group agree, they read the same values), updates the
//      running max m, and writes exp(s - m) of its own 8 keys into p_tile;
//   3. after a barrier, it accumulates its 4 queries x 32 channels from the 32 shared probabilities.
// s_tile and p_tile are separate, so two barriers per block suffice: the next block's phase 1 writes
// s_tile only after everyone has passed this block's second barrier (so finished reading s_tile), and
// its phase 2 writes p_tile only after everyone has passed its first barrier (so finished phase 3).
// The online softmax is the one of nonlocal_attention.wgsl: when a block raises the max, acc and l are
// rescaled by exp(m_old - m_new) <= 1, every exp argument is <= 0, so logits above 300 cannot overflow.
// Barriers are coroutine switches on lavapipe: 32 keys x 64 queries x 128 channels of work amortise them.
// Each invocation's running sums of its 4 queries x 32 channels live in y (unnormalised until the end),
// not in a register array: llvmpipe builds compute shaders as coroutines, and with a 32-vec4 array
// indexed in a loop (live across the barriers, so kept in the coroutine frame) LLVM's frame builder made
// this pipeline's compile (at its first dispatch, OpenGL, D 16, Dv 128) 19-25 s instead of 1.0-1.6 s.
// The cost: 4 scattered loads and stores per channel per block; warm 4-8 % slower at D = Dv = 128,
// 56 x 56 (BENCHMARKS.md, "Non-local kernels' first run on OpenGL").
//
// Grid: x = blocks of QB queries from q_begin, y = channel chunks of CW, z = images from n_begin.
// Bindings: theta [N, D, Q], phi [N, D, K], g [N, Dv, K], y [N, Dv, Q], contiguous f32.
// Params, exp_nonpositive, theta_at, load_valid and store_valid repeat nonlocal_attention's: WGSL has no
// includes.

const QB: u32 = 64u; // queries per workgroup: 16 query groups x 4
const QG: u32 = 16u; // query groups
const KB: u32 = 32u; // keys per block
const KI: u32 = 8u;  // keys per invocation in phase 1: KB / 4 channel groups
const CI: u32 = 32u; // channels per invocation; CW = 4 x CI mirrors CHANNELS_PER_WIDE_WORKGROUP in the op

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

// Scaled scores and probabilities of the block: key j of query group qg at j * QG + qg (4 KiB in all).
var<workgroup> s_tile: array<vec4<f32>, 512>; // KB * QG
var<workgroup> p_tile: array<vec4<f32>, 512>;

// exp(x) for x <= 0 to a few ulps at any x: see nonlocal_attention.wgsl (Cody-Waite reduction, clamp at -100).
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
// and images past the end are clamped to the last): a clamped query belongs to another lane or
// invocation, which alone reads and writes it.
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
    // No early return: every invocation must reach the barriers. Out-of-range queries, channels and
    // keys are clamped to valid ones (computed on valid memory, never stored).
    let n = min(params.n_begin + wid.z, params.n_end - 1u);
    let qg = lid % QG;
    let cg = lid / QG;
    let q_lanes = vec4<u32>(params.q_begin + wid.x * QB + qg) + vec4<u32>(0u, 1u, 2u, 3u) * QG;
    // Stored lanes: queries in range of an image in range.
    let valid = (q_lanes < vec4<u32>(params.q_end)) & vec4<bool>(params.n_begin + wid.z < params.n_end);
    let qs = min(q_lanes, vec4<u32>(params.q_end - 1u));
    let c_first = wid.y * (4u * CI) + cg * CI; // first channel of this invocation; may be >= dv
    let t_base = n * params.d * params.q; // theta[n, 0, 0]; channel d at + d * Q
    let p_base = n * params.d * params.k; // phi[n, 0, 0]; channel d at + d * K
    let last = params.k - 1u;

    var m = vec4<f32>(0.0);        // running max, set from the first block
    var l = vec4<f32>(0.0);        // running sum of exp(s - m)
    for (var k0 = 0u; k0 < params.k; k0 += KB) {
        // Phase 1: scores of keys k_mine + j. Keys past the end read key K - 1 (a real score, so the block
        // max is unaffected); their probabilities are zeroed in phase 2. Channels four at a time, summed
        // pairwise, as in nonlocal_attention.wgsl (score rounding error like sqrt(D / 4) ulps).
        let k_mine = k0 + cg * KI;
        // Zeroed for every block by an explicit initializer: for a bare `var s: array<..>;` in the loop,
        // Chromium's WebGPU (Tint, SwiftShader) kept the previous block's scores (web/, npm test).
        var s = array<vec4<f32>, KI>();
        var d = 0u;
        for (; d + 4u <= params.d; d += 4u) {
            let t0 = theta_at(t_base + d * params.q, qs);
            let t1 = theta_at(t_base + (d + 1u) * params.q, qs);
            let t2 = theta_at(t_base + (d + 2u) * params.q, qs);
            let t3 = theta_at(t_base + (d + 3u) * params.q, qs);
            let p_row = p_base + d * params.k;
            let k2 = params.k * 2u;
            for (var j = 0u; j < KI; j++) {
                let kj = p_row + min(k_mine + j, last);
                s[j] += (t0 * phi[kj] + t1 * phi[kj + params.k]) + (t2 * phi[kj + k2] + t3 * phi[kj + k2 + params.k]);
            }
        }
        for (; d < params.d; d++) {
            let t = theta_at(t_base + d * params.q, qs);
            let p_row = p_base + d * params.k;
            for (var j = 0u; j < KI; j++) {
                s[j] += t * phi[p_row + min(k_mine + j, last)];
            }
        }
        for (var j = 0u; j < KI; j++) {
            s_tile[(cg * KI + j) * QG + qg] = s[j] * params.scale;
        }
        workgroupBarrier();

        // Phase 2: block max over all KB keys, the rescaling factor, and this invocation's probabilities.
        var block_max = s_tile[qg];
        for (var j = 1u; j < KB; j++) {
            block_max = max(block_max, s_tile[j * QG + qg]);
        }
        if (k0 == 0u) {
            m = block_max; // so the first correction is exp(0) = 1 (acc and l are still 0)
        }
        let m_new = max(m, block_max);
        let corr = exp_nonpositive(m - m_new); // <= 1: shrinks what was summed against the old max
        m = m_new;
        for (var j = 0u; j < KI; j++) {
            let at = (cg * KI + j) * QG + qg;
            p_tile[at] = select(vec4<f32>(0.0), exp_nonpositive(s_tile[at] - m_new), k_mine + j < params.k);
        }
        workgroupBarrier();

        // Phase 3: the block's 32 terms per channel are summed apart, then added to the rescaled acc
        // (rounding error like sqrt(32) + sqrt(K / 32) ulps rather than sqrt(K), as in nonlocal_attention).
        var p: array<vec4<f32>, KB>;
        var block_sum = vec4<f32>(0.0);
        for (var j = 0u; j < KB; j++) {
            p[j] = p_tile[j * QG + qg];
            block_sum += p[j];
        }
        l = l * corr + block_sum;
        for (var i = 0u; i < CI; i++) {
            // Channels past Dv read channel Dv - 1; never stored.
            let g_row = (n * params.dv + min(c_first + i, params.dv - 1u)) * params.k;
            var part = vec4<f32>(0.0);
            for (var j = 0u; j < KB; j++) {
                part += p[j] * g[g_row + min(k0 + j, last)];
            }
            let c = c_first + i;
            if (c < params.dv) {
                let row = (n * params.dv + c) * params.q; // y[n, c, 0]: this channel's running sum
                var acc = vec4<f32>(0.0);
                if (k0 != 0u) {
                    acc = load_valid(row, qs, valid);
                }
                store_valid(row, qs, valid, acc * corr + part);
            }
        }
    }

    // l >= 1: the key holding the final max contributes exp(0).
    let inv = 1.0 / l;
    for (var i = 0u; i < CI; i++) {
        let c = c_first + i;
        if (c >= params.dv) {
            break;
        }
        let row = (n * params.dv + c) * params.q; // y[n, c, 0]
        store_valid(row, qs, valid, load_valid(row, qs, valid) * inv);
    }
}
