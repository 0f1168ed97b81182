// matmul (register-tiled, any layout): out[b, m, n] = epilogue(sum_k A[b, m, k] * B[b, k, n]).
// One invocation computes an 8 x 8 block of outputs: rows row0 + i (i = 0..7) and
// columns col0 + 8 * j (j = 0..7). A workgroup of 8 x 8 invocations covers a
// 64 x 64 tile. No workgroup memory and no barriers: on CPU drivers (lavapipe)
// every barrier is a coroutine switch, and the 64 accumulators already reuse
// each loaded value 8 times.
// Lane layout: neighbouring invocations (lid.x) take neighbouring columns, so the
// 8 B loads of one k step read 8 consecutive floats across the SIMD lanes, and
// share rows, so the A loads are the same address in every lane.
// The workgroup grid is 1-D over batch x row tiles x column tiles, folded into y
// past 65535: linear tile = wid.x + wid.y * nwg.x.
// Bindings (contiguous f32, addressed through the strides in Params, which is how
// transposes and a broadcast batch (stride 0) are expressed):
//   a   = A, element (b, m, k) at b * a_sb + m * a_sm + k * a_sk
//   bm  = B, element (b, k, n) at b * b_sb + k * b_sk + n * b_sn
//   epi = the epilogue input: affine [2, C] (row 0 scale, row 1 shift) when bit 0
//         of `epilogue` is set, else residual [batch, m, n] when bit 1 is set, else
//         unused (bound to a stand-in). The host never sets both bits here.
//   out = [batch, m, n]

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,   // output batch
    a_sb: u32,    // A strides in elements; a_sb = 0 broadcasts A over the batch
    a_sm: u32,
    a_sk: u32,
    b_sb: u32,    // B strides; b_sb = 0 broadcasts B
    b_sk: u32,
    b_sn: u32,
    epilogue: u32, // bit 0 affine, bit 1 residual, bits 2.. activation (0 none, 1 relu, 2 sigmoid)
    axis: u32,     // affine indexed by 0: row (m), 1: column (n)
    tiles_m: u32,  // ceil(m / 64)
    tiles_n: u32,  // ceil(n / 64)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> bm: array<f32>;
@group(0) @binding(3) var<storage, read> epi: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// The epilogue for output (row, col) stored at `idx`.
fn finish(acc: f32, row: u32, col: u32, idx: u32) -> f32 {
    var v = acc;
    if ((params.epilogue & 1u) != 0u) {
        let c = select(row, col, params.axis == 1u);
        let channels = select(params.m, params.n, params.axis == 1u);
        v = epi[c] * v + epi[channels + c];
    }
    if ((params.epilogue & 2u) != 0u) {
        v += epi[idx];
    }
    let act = params.epilogue >> 2u;
    if (act == 1u) {
        v = max(v, 0.0);
    } else if (act == 2u) {
        // Clamped so exp cannot overflow; sigmoid(+-88) is already 1 or 0 in f32.
        v = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    }
    return v;
}

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = wid.x + wid.y * nwg.x;
    let per_batch = params.tiles_m * params.tiles_n;
    if (tile >= per_batch * params.batch) {
        return;
    }
    let bi = tile / per_batch;
    let t = tile % per_batch;
    let row0 = (t / params.tiles_n) * 64u + lid.y * 8u;
    let col0 = (t % params.tiles_n) * 64u + lid.x;

    // Offsets of this invocation's 8 rows of A and 8 columns of B. Indices past
    // the edge are clamped to the last row / column: the loads stay in bounds
    // without branches in the k loop, and those results are never stored.
    var a_row: array<u32, 8>;
    var b_col: array<u32, 8>;
    for (var i = 0u; i < 8u; i++) {
        a_row[i] = bi * params.a_sb + min(row0 + i, params.m - 1u) * params.a_sm;
        b_col[i] = bi * params.b_sb + min(col0 + 8u * i, params.n - 1u) * params.b_sn;
    }

    // acc[2 i + h][j]: row row0 + i, column col0 + 8 * (4 h + j).
    var acc: array<vec4<f32>, 16>;
    for (var kk = 0u; kk < params.k; kk++) {
        let ka = kk * params.a_sk;
        let kb = kk * params.b_sk;
        let lo = vec4(bm[b_col[0] + kb], bm[b_col[1] + kb], bm[b_col[2] + kb], bm[b_col[3] + kb]);
        let hi = vec4(bm[b_col[4] + kb], bm[b_col[5] + kb], bm[b_col[6] + kb], bm[b_col[7] + kb]);
        for (var i = 0u; i < 8u; i++) {
            let av = vec4(a[a_row[i] + ka]);
            acc[2u * i] = fma(av, lo, acc[2u * i]);
            acc[2u * i + 1u] = fma(av, hi, acc[2u * i + 1u]);
        }
    }

    for (var i = 0u; i < 8u; i++) {
        let row = row0 + i;
        for (var j = 0u; j < 8u; j++) {
            let col = col0 + 8u * j;
            if (row < params.m && col < params.n) {
                let idx = (bi * params.m + row) * params.n + col;
                out[idx] = finish(acc[2u * i + j / 4u][j % 4u], row, col, idx);
            }
        }
    }
}
