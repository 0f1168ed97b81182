// matmul (register-tiled, any layout): out[b, m, n] = epilogue(sum_k A[b, m, k] * B[b, k, n]).
// One invocation computes an 8 x 8 block of outputs: rows row0 + i (i = 0..7) and
// columns col0 + 8 * j (j = 0..7). A workgroup of 8 x 8 invocations covers a
// 64 x 64 tile. No workgroup memory and no barriers: on CPU drivers (lavapipe)
// every barrier is a coroutine switch, and the 64 accumulators already reuse
// each loaded value 8 times. Any layout works (scalar loads through strides);
// matmul_vec4 is the faster path when rows are whole vec4s.
// The k loop takes 4 k per step and multiplies 4 x 4 blocks held in mat4x4s:
// no array is indexed dynamically, so everything stays in registers (an
// indexed local array becomes scratch memory with gathers on lavapipe).
// Lane layout: neighbouring invocations (lid.x) take neighbouring columns, so the
// 8 B loads of one k step read 8 consecutive floats across the SIMD lanes, and
// share rows, so the A loads are the same address in every lane.
// The workgroup grid is 1-D over batch x row tiles x column tiles, folded into y
// past 65535: linear tile = wid.x + wid.y * nwg.x.
// Bindings (contiguous f32, addressed through the strides in Params, which is how
// transposes and a broadcast batch (stride 0) are expressed):
//   a   = A, element (b, m, k) at b * a_sb + m * a_sm + k * a_sk
//   bm  = B, element (b, k, n) at b * b_sb + k * b_sk + n * b_sn
//   affine   = [2, C] (row 0 scale, row 1 shift), read when bit 0 of `epilogue` is set
//   residual = [batch, m, n], read when bit 1 is set
//   out      = [batch, m, n]
// An unused affine or residual slot holds a stand-in (A) that is never read.
// Both epilogue inputs in one pass make 5 storage buffers, within WebGPU's 8.

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
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// The epilogue for output (row, col) stored at `idx`. Every flag is applied with
// `select`, never an `if` on the uniform alone: lavapipe (Mesa 22.3) recompiles a
// shader at every dispatch for each uniform-only branch or loop bound it can
// inline and keeps every copy (about 1 MB per dispatch; tests/leak.rs). An unused
// epilogue input is read at element 0 of its stand-in, which always exists.
fn finish(acc: f32, row: u32, col: u32, idx: u32) -> f32 {
    let with_affine = (params.epilogue & 1u) != 0u;
    let with_residual = (params.epilogue & 2u) != 0u;
    let act = params.epilogue >> 2u;
    let c = select(0u, select(row, col, params.axis == 1u), with_affine);
    let channels = select(0u, select(params.m, params.n, params.axis == 1u), with_affine);
    var v = select(acc, affine[c] * acc + affine[channels + c], with_affine);
    v += select(0.0, residual[select(0u, idx, with_residual)], with_residual);
    // Clamped so exp cannot overflow; sigmoid(+-88) is already 1 or 0 in f32.
    let sigmoid = 1.0 / (1.0 + exp(-clamp(v, -88.0, 88.0)));
    return select(select(v, sigmoid, act == 2u), max(v, 0.0), act == 1u);
}

// A[rows r0 .. r0 + 3, k = k0 .. k0 + 3] as a mat4x4 whose column t is the
// 4 rows at k0 + t. Rows past the edge are clamped to the last row (never
// stored); k past the end is clamped too and its column zeroed, so the partial
// last k step adds nothing.
fn a_block(base: u32, r0: u32, k0: u32) -> mat4x4<f32> {
    let r = min(vec4(r0) + vec4(0u, 1u, 2u, 3u), vec4(params.m - 1u)) * params.a_sm + base;
    return mat4x4(a_col(r, k0), a_col(r, k0 + 1u), a_col(r, k0 + 2u), a_col(r, k0 + 3u));
}

// A at element offsets r (4 rows) and k = kk, or zeros when kk is past the end.
fn a_col(r: vec4<u32>, kk: u32) -> vec4<f32> {
    let off = min(kk, params.k - 1u) * params.a_sk;
    let v = vec4(a[r.x + off], a[r.y + off], a[r.z + off], a[r.w + off]);
    return select(vec4(0.0), v, kk < params.k);
}

// B[k = k0 .. k0 + 3, columns c0 + 8 j (j = 0..3)] as a mat4x4 whose column j
// is that column over the 4 k; clamped like a_block (A's zeros cancel k past
// the end).
fn b_block(base: u32, c0: u32, k0: u32) -> mat4x4<f32> {
    let c = min(vec4(c0) + vec4(0u, 8u, 16u, 24u), vec4(params.n - 1u)) * params.b_sn + base;
    let kk = min(vec4(k0) + vec4(0u, 1u, 2u, 3u), vec4(params.k - 1u)) * params.b_sk;
    return mat4x4(
        vec4(bm[c.x + kk.x], bm[c.x + kk.y], bm[c.x + kk.z], bm[c.x + kk.w]),
        vec4(bm[c.y + kk.x], bm[c.y + kk.y], bm[c.y + kk.z], bm[c.y + kk.w]),
        vec4(bm[c.z + kk.x], bm[c.z + kk.y], bm[c.z + kk.z], bm[c.z + kk.w]),
        vec4(bm[c.w + kk.x], bm[c.w + kk.y], bm[c.w + kk.z], bm[c.w + kk.w]),
    );
}

// Applies the epilogue to a 4 x 4 block (column j = output column c0 + 8 j,
// row i = output row r0 + i) and stores the elements inside the output.
fn store(bi: u32, r0: u32, c0: u32, acc: mat4x4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        for (var i = 0u; i < 4u; i++) {
            let row = r0 + i;
            let col = c0 + 8u * j;
            if (row < params.m && col < params.n) {
                let idx = (bi * params.m + row) * params.n + col;
                out[idx] = finish(acc[j][i], row, col, idx);
            }
        }
    }
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
    let a_base = bi * params.a_sb;
    let b_base = bi * params.b_sb;

    // c[r][c]: rows row0 + 4r .. +3, columns col0 + 32c + 8j (j = 0..3).
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    // ceil(k / 4) steps, written so that it cannot overflow. The loop counts from
    // the tile index, not 0, so its bound is not the uniform alone (see `finish`).
    let steps = (params.k - 1u) / 4u + 1u;
    for (var q = t; q < t + steps; q++) {
        let k0 = 4u * (q - t);
        let a0 = a_block(a_base, row0, k0);
        let a1 = a_block(a_base, row0 + 4u, k0);
        let b0 = b_block(b_base, col0, k0);
        let b1 = b_block(b_base, col0 + 32u, k0);
        c00 += a0 * b0;
        c01 += a0 * b1;
        c10 += a1 * b0;
        c11 += a1 * b1;
    }

    store(bi, row0, col0, c00);
    store(bi, row0, col0 + 32u, c01);
    store(bi, row0 + 4u, col0, c10);
    store(bi, row0 + 4u, col0 + 32u, c11);
}
