enable subgroups; // WGSL and tint require it; wgpu's naga rejects it, so Kernel::naga_source blanks it

// nonlocal_attention_subgroup: nonlocal_attention (the narrow flash kernel: same grid, same 4 queries
// per invocation, same online softmax and summation order, a cheaper exp) for devices whose subgroups
// have one fixed power-of-two width SUBGROUP_WIDTH from 4 to 64 (the host sets it from the adapter),
// with up to 128 output channels per invocation instead of 32:
//   y[n, c, q] = sum_k f[q, k] * g[n, c, k],  f[q, :] = softmax_k(scale * sum_d theta[n, d, q] * phi[n, d, k]).
// Why: every invocation needs the same phi and g values (key and channel indices are uniform), and on
// lavapipe each storage-buffer load is a loop over the SIMD lanes. Here lane l of a subgroup loads
// keys k0 + 2 l and k0 + 2 l + 1 of a block of 16 keys, and subgroupBroadcast (a register extract on
// lavapipe) hands them to the other lanes: 2 loads per lane, channel and block instead of 16. With 8
// or more lanes, lanes past 8 repeat the loads of lanes 0 .. 7 and are never broadcast from; with 4
// lanes (SwiftShader), lane l loads keys k0 + 4 l .. k0 + 4 l + 3 instead. Both sum each score and
// each output in the same order, so the width never changes a result.
// With loads this cheap the score recomputation per channel chunk dominates, so a chunk is 128
// channels (measured with a register accumulator on NonLocal 1x256x56x56, Dv = 128: 255 ms at 32
// channels, 169 at 64, 122 at 128, 131 at 256). The running sums of a chunk live in y itself, not in
// registers: see the accumulation below.
// Subgroup operations need every lane of the subgroup active, so no invocation returns early unless
// its whole workgroup does: a query past the end is computed on a valid query and never stored.
// Params, theta_at, load_valid and store_valid repeat nonlocal_attention's: WGSL has no includes.
// Grid: x = groups of WG * QPI queries from q_begin, y = channel chunks, z = images from n_begin.
// Bindings: theta [N, D, Q], phi [N, D, K], g [N, Dv, K], y [N, Dv, Q], contiguous f32.

const WG: u32 = 64u;  // invocations per workgroup
const QPI: u32 = 4u;  // queries per invocation (one vec4)
const KB: u32 = 16u;  // keys per block
const DVC: u32 = 128u; // output channels per invocation; mirrors SUBGROUP_CHANNELS_PER_INVOCATION in the op

override SUBGROUP_WIDTH: u32 = 8u; // lanes per subgroup, a power of two from 4 to 64 (the host sets it)

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

// exp(x) for x <= 0 as exp2(x log2(e)): the product's rounding costs up to |x| ulps of the result,
// i.e. at most 0.53 ulps of the largest weight (|x| exp(x) <= 1 / e; 1.44 |x| ulps in log2 units).
// Why not Cody-Waite reduction and ldexp (exact to a few ulps at any x), as nonlocal_attention does:
// on lavapipe (Mesa 22.3, LLVM 15) that form made this pipeline's first dispatch (llvmpipe compiles
// then) 4-6 s slower (in LLVM's coroutine frame builder), and each weight cost more to run.
fn exp_nonpositive(x: vec4<f32>) -> vec4<f32> {
    return exp2(x * 1.4426950408889634);
}

// theta at channel row `row` (the index of theta[n, d, 0]) for the 4 queries.
fn theta_at(row: u32, qs: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(theta[row + qs.x], theta[row + qs.y], theta[row + qs.z], theta[row + qs.w]);
}

// This lane's two keys of the block at k0 in the channel row starting at `row` of `src` (phi or g),
// clamped to the last key (a real value: the score max is unaffected; probabilities past the end are
// zeroed).
// Lanes past 8 (wider subgroups) load what lane l % 8 loads: only lanes 0 .. 7 are broadcast from.
fn phi_pair(row: u32, k0: u32, lane_any: u32) -> vec2<f32> {
    let lane = lane_any & 7u;
    let last = params.k - 1u;
    return vec2<f32>(phi[row + min(k0 + 2u * lane, last)], phi[row + min(k0 + 2u * lane + 1u, last)]);
}

fn g_pair(row: u32, k0: u32, lane_any: u32) -> vec2<f32> {
    let lane = lane_any & 7u;
    let last = params.k - 1u;
    return vec2<f32>(g[row + min(k0 + 2u * lane, last)], g[row + min(k0 + 2u * lane + 1u, last)]);
}

// With 4 lanes: this lane's four keys of the block at k0 (k0 + 4 l .. + 3), clamped as phi_pair.
fn phi_quad(row: u32, k0: u32, lane_any: u32) -> vec4<f32> {
    let first = k0 + 4u * (lane_any & 3u);
    let last = params.k - 1u;
    return vec4<f32>(phi[row + min(first, last)], phi[row + min(first + 1u, last)],
                     phi[row + min(first + 2u, last)], phi[row + min(first + 3u, last)]);
}

fn g_quad(row: u32, k0: u32, lane_any: u32) -> vec4<f32> {
    let first = k0 + 4u * (lane_any & 3u);
    let last = params.k - 1u;
    return vec4<f32>(g[row + min(first, last)], g[row + min(first + 1u, last)],
                     g[row + min(first + 2u, last)], g[row + min(first + 3u, last)]);
}

// The block's 16 keys from the 4 lanes' quads: key j is lane j / 4's component j % 4.
fn spread_quads(v: vec4<f32>) -> array<f32, KB> {
    let l0 = subgroupBroadcast(v, 0u);
    let l1 = subgroupBroadcast(v, 1u);
    let l2 = subgroupBroadcast(v, 2u);
    let l3 = subgroupBroadcast(v, 3u);
    return array<f32, KB>(l0.x, l0.y, l0.z, l0.w, l1.x, l1.y, l1.z, l1.w,
                          l2.x, l2.y, l2.z, l2.w, l3.x, l3.y, l3.z, l3.w);
}

// y at channel row `row` for the 4 queries, where valid (0 elsewhere): an invalid query is a copy of
// q_begin, whose y another invocation owns.
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
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    let n = params.n_begin + wid.z;
    let q_first = params.q_begin + wid.x * (WG * QPI) + lid;
    let c0 = wid.y * DVC;
    if (n >= params.n_end || c0 >= params.dv) {
        return; // the whole workgroup
    }
    let dvn = min(DVC, params.dv - c0);
    // Queries past the end are replaced by q_begin: computed on valid memory, never stored.
    let valid = vec4<u32>(q_first) + vec4<u32>(0u, 1u, 2u, 3u) * WG < vec4<u32>(params.q_end);
    let qs = select(vec4<u32>(params.q_begin), vec4<u32>(q_first) + vec4<u32>(0u, 1u, 2u, 3u) * WG, valid);
    let t_base = n * params.d * params.q;         // theta[n, 0, 0]; channel d at + d * Q
    let p_base = n * params.d * params.k;         // phi[n, 0, 0]; channel d at + d * K
    let g_base = (n * params.dv + c0) * params.k; // g[n, c0, 0]; channel c0 + i at + i * K

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
        // SUBGROUP_WIDTH is fixed at pipeline creation, so only one side ever runs.
        if (SUBGROUP_WIDTH >= 8u) {
            for (; d + 4u <= params.d; d += 4u) {
                let t0 = theta_at(t_base + d * params.q, qs);
                let t1 = theta_at(t_base + (d + 1u) * params.q, qs);
                let t2 = theta_at(t_base + (d + 2u) * params.q, qs);
                let t3 = theta_at(t_base + (d + 3u) * params.q, qs);
                let p_row = p_base + d * params.k;
                let p0 = phi_pair(p_row, k0, lane);
                let p1 = phi_pair(p_row + params.k, k0, lane);
                let p2 = phi_pair(p_row + 2u * params.k, k0, lane);
                let p3 = phi_pair(p_row + 3u * params.k, k0, lane);
                // Key j of the block is lane j / 2's component j % 2 (written out: broadcast lanes must be
                // constants, and constant indices keep s in registers).
                s[0] += (t0 * subgroupBroadcast(p0.x, 0u) + t1 * subgroupBroadcast(p1.x, 0u))
                    + (t2 * subgroupBroadcast(p2.x, 0u) + t3 * subgroupBroadcast(p3.x, 0u));
                s[1] += (t0 * subgroupBroadcast(p0.y, 0u) + t1 * subgroupBroadcast(p1.y, 0u))
                    + (t2 * subgroupBroadcast(p2.y, 0u) + t3 * subgroupBroadcast(p3.y, 0u));
                s[2] += (t0 * subgroupBroadcast(p0.x, 1u) + t1 * subgroupBroadcast(p1.x, 1u))
                    + (t2 * subgroupBroadcast(p2.x, 1u) + t3 * subgroupBroadcast(p3.x, 1u));
                s[3] += (t0 * subgroupBroadcast(p0.y, 1u) + t1 * subgroupBroadcast(p1.y, 1u))
                    + (t2 * subgroupBroadcast(p2.y, 1u) + t3 * subgroupBroadcast(p3.y, 1u));
                s[4] += (t0 * subgroupBroadcast(p0.x, 2u) + t1 * subgroupBroadcast(p1.x, 2u))
                    + (t2 * subgroupBroadcast(p2.x, 2u) + t3 * subgroupBroadcast(p3.x, 2u));
                s[5] += (t0 * subgroupBroadcast(p0.y, 2u) + t1 * subgroupBroadcast(p1.y, 2u))
                    + (t2 * subgroupBroadcast(p2.y, 2u) + t3 * subgroupBroadcast(p3.y, 2u));
                s[6] += (t0 * subgroupBroadcast(p0.x, 3u) + t1 * subgroupBroadcast(p1.x, 3u))
                    + (t2 * subgroupBroadcast(p2.x, 3u) + t3 * subgroupBroadcast(p3.x, 3u));
                s[7] += (t0 * subgroupBroadcast(p0.y, 3u) + t1 * subgroupBroadcast(p1.y, 3u))
                    + (t2 * subgroupBroadcast(p2.y, 3u) + t3 * subgroupBroadcast(p3.y, 3u));
                s[8] += (t0 * subgroupBroadcast(p0.x, 4u) + t1 * subgroupBroadcast(p1.x, 4u))
                    + (t2 * subgroupBroadcast(p2.x, 4u) + t3 * subgroupBroadcast(p3.x, 4u));
                s[9] += (t0 * subgroupBroadcast(p0.y, 4u) + t1 * subgroupBroadcast(p1.y, 4u))
                    + (t2 * subgroupBroadcast(p2.y, 4u) + t3 * subgroupBroadcast(p3.y, 4u));
                s[10] += (t0 * subgroupBroadcast(p0.x, 5u) + t1 * subgroupBroadcast(p1.x, 5u))
                    + (t2 * subgroupBroadcast(p2.x, 5u) + t3 * subgroupBroadcast(p3.x, 5u));
                s[11] += (t0 * subgroupBroadcast(p0.y, 5u) + t1 * subgroupBroadcast(p1.y, 5u))
                    + (t2 * subgroupBroadcast(p2.y, 5u) + t3 * subgroupBroadcast(p3.y, 5u));
                s[12] += (t0 * subgroupBroadcast(p0.x, 6u) + t1 * subgroupBroadcast(p1.x, 6u))
                    + (t2 * subgroupBroadcast(p2.x, 6u) + t3 * subgroupBroadcast(p3.x, 6u));
                s[13] += (t0 * subgroupBroadcast(p0.y, 6u) + t1 * subgroupBroadcast(p1.y, 6u))
                    + (t2 * subgroupBroadcast(p2.y, 6u) + t3 * subgroupBroadcast(p3.y, 6u));
                s[14] += (t0 * subgroupBroadcast(p0.x, 7u) + t1 * subgroupBroadcast(p1.x, 7u))
                    + (t2 * subgroupBroadcast(p2.x, 7u) + t3 * subgroupBroadcast(p3.x, 7u));
                s[15] += (t0 * subgroupBroadcast(p0.y, 7u) + t1 * subgroupBroadcast(p1.y, 7u))
                    + (t2 * subgroupBroadcast(p2.y, 7u) + t3 * subgroupBroadcast(p3.y, 7u));
            }
            for (; d < params.d; d++) {
                let t = theta_at(t_base + d * params.q, qs);
                let p = phi_pair(p_base + d * params.k, k0, lane);
                s[0] += t * subgroupBroadcast(p.x, 0u);
                s[1] += t * subgroupBroadcast(p.y, 0u);
                s[2] += t * subgroupBroadcast(p.x, 1u);
                s[3] += t * subgroupBroadcast(p.y, 1u);
                s[4] += t * subgroupBroadcast(p.x, 2u);
                s[5] += t * subgroupBroadcast(p.y, 2u);
                s[6] += t * subgroupBroadcast(p.x, 3u);
                s[7] += t * subgroupBroadcast(p.y, 3u);
                s[8] += t * subgroupBroadcast(p.x, 4u);
                s[9] += t * subgroupBroadcast(p.y, 4u);
                s[10] += t * subgroupBroadcast(p.x, 5u);
                s[11] += t * subgroupBroadcast(p.y, 5u);
                s[12] += t * subgroupBroadcast(p.x, 6u);
                s[13] += t * subgroupBroadcast(p.y, 6u);
                s[14] += t * subgroupBroadcast(p.x, 7u);
                s[15] += t * subgroupBroadcast(p.y, 7u);
            }
        } else {
            for (; d + 4u <= params.d; d += 4u) {
                let t0 = theta_at(t_base + d * params.q, qs);
                let t1 = theta_at(t_base + (d + 1u) * params.q, qs);
                let t2 = theta_at(t_base + (d + 2u) * params.q, qs);
                let t3 = theta_at(t_base + (d + 3u) * params.q, qs);
                let p_row = p_base + d * params.k;
                var p0 = spread_quads(phi_quad(p_row, k0, lane));
                var p1 = spread_quads(phi_quad(p_row + params.k, k0, lane));
                var p2 = spread_quads(phi_quad(p_row + 2u * params.k, k0, lane));
                var p3 = spread_quads(phi_quad(p_row + 3u * params.k, k0, lane));
                for (var j = 0u; j < KB; j++) {
                    s[j] += (t0 * p0[j] + t1 * p1[j]) + (t2 * p2[j] + t3 * p3[j]);
                }
            }
            for (; d < params.d; d++) {
                let t = theta_at(t_base + d * params.q, qs);
                var p = spread_quads(phi_quad(p_base + d * params.k, k0, lane));
                for (var j = 0u; j < KB; j++) {
                    s[j] += t * p[j];
                }
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
            var part = vec4<f32>(0.0);
            if (SUBGROUP_WIDTH >= 8u) {
                let gv = g_pair(g_base + i * params.k, k0, lane);
                part += s[0] * subgroupBroadcast(gv.x, 0u);
                part += s[1] * subgroupBroadcast(gv.y, 0u);
                part += s[2] * subgroupBroadcast(gv.x, 1u);
                part += s[3] * subgroupBroadcast(gv.y, 1u);
                part += s[4] * subgroupBroadcast(gv.x, 2u);
                part += s[5] * subgroupBroadcast(gv.y, 2u);
                part += s[6] * subgroupBroadcast(gv.x, 3u);
                part += s[7] * subgroupBroadcast(gv.y, 3u);
                part += s[8] * subgroupBroadcast(gv.x, 4u);
                part += s[9] * subgroupBroadcast(gv.y, 4u);
                part += s[10] * subgroupBroadcast(gv.x, 5u);
                part += s[11] * subgroupBroadcast(gv.y, 5u);
                part += s[12] * subgroupBroadcast(gv.x, 6u);
                part += s[13] * subgroupBroadcast(gv.y, 6u);
                part += s[14] * subgroupBroadcast(gv.x, 7u);
                part += s[15] * subgroupBroadcast(gv.y, 7u);
            } else {
                var gq = spread_quads(g_quad(g_base + i * params.k, k0, lane));
                for (var j = 0u; j < KB; j++) {
                    part += s[j] * gq[j];
                }
            }
            // The running sum of channel c0 + i lives in y itself, unnormalised until the end. A
            // register array of DVC vec4 instead made llvmpipe's compile of this pipeline (at its first
            // dispatch) 8 s longer (LLVM's coroutine frame builder again), and 512 floats per
            // invocation are far past a GPU's registers too.
            let row = y_base + i * params.q;
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
