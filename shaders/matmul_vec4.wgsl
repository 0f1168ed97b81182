// matmul_vec4 (register-tiled, vec4 loads): out[b, m, n] = epilogue(sum_k A[b, m, k] * B[b, k, n])
// for operands whose contiguous rows are whole vec4s: A's row length (K, or M when
// TRANS_A) and B's (N, or K when TRANS_B) are multiples of 4; the host checks.
// One invocation computes an 8 x 8 block: rows row0 + i (i = 0..7, row0 a multiple
// of 8) and columns col0 + j and col0 + 32 + j (j = 0..3, col0 a multiple of 4). A
// workgroup of 8 x 8 invocations covers a 64 x 64 tile; no workgroup memory, no
// barriers (on CPU drivers each barrier is a coroutine switch).
// Why vec4: lavapipe (Mesa 22.3) loads storage buffers in a loop over the lanes,
// and those loads, not the multiply-adds, bound this kernel (measured: loads alone
// ran at about half the speed of multiply-adds alone). A vec4 fetches 4 floats in
// one pass of that loop. Each step of 4 k loads 8 vec4s of A and 8 of B for 256
// multiply-adds per invocation. Blocks are mat4x4s so that no local array is
// indexed dynamically (that becomes scratch memory with gathers on lavapipe).
// Lanes: neighbouring invocations (lid.x) take neighbouring vec4s of columns, so B
// loads (without TRANS_B) read consecutive 16-byte chunks across the SIMD lanes, and
// they share rows, so their A loads hit the same addresses.
// Override constants TRANS_A / TRANS_B pick the layout at pipeline creation, so the
// k loop holds only the loads of that layout.
// The workgroup grid is 1-D over batch x row tiles x column tiles, folded into y
// past 65535: linear tile = wid.x + wid.y * nwg.x.
// Bindings (contiguous f32 viewed as vec4; batch strides a_sb, b_sb are 0 for a
// broadcast operand and multiples of 4 otherwise):
//   a4  = A: [batch, m, k], or [batch, k, m] when TRANS_A
//   b4  = B: [batch, k, n], or [batch, n, k] when TRANS_B
//   affine   = [2, C] (row 0 scale, row 1 shift), read when bit 0 of `epilogue` is set
//   residual = [batch, m, n] (scalars), read when bit 1 is set
//   out      = [batch, m, n] (scalars)
// An unused affine or residual slot holds a stand-in (A) that is never read.
// Both epilogue inputs in one pass make 5 storage buffers, within WebGPU's 8.

override TRANS_A: bool = false;
override TRANS_B: bool = false;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,
    a_sb: u32,     // A strides in elements; a_sb = 0 broadcasts A over the batch
    a_sm: u32,
    a_sk: u32,
    b_sb: u32,     // B strides; b_sb = 0 broadcasts B
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
@group(0) @binding(1) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> affine: array<f32>;
@group(0) @binding(4) var<storage, read> residual: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// The epilogue for output (row, col) stored at `idx`.
fn finish(acc: f32, row: u32, col: u32, idx: u32) -> f32 {
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
    return v;
}

// A[rows r0 .. r0 + 3, k = 4 kq .. 4 kq + 3] as a mat4x4 whose column t is
// the 4 rows at k = 4 kq + t. Rows past the edge are clamped to the last valid
// row (or the last whole vec4 of rows): loads stay in bounds without branches,
// and those results are never stored.
fn a_block(base: u32, r0: u32, kq: u32) -> mat4x4<f32> {
    let m = params.m;
    let k = params.k;
    if (TRANS_A) {
        // Stored [k, m]: each k holds a vec4 of 4 consecutive rows.
        let at = base + min(r0, m - 4u) / 4u + 4u * kq * (m / 4u);
        return mat4x4(a4[at], a4[at + m / 4u], a4[at + 2u * (m / 4u)], a4[at + 3u * (m / 4u)]);
    }
    // Stored [m, k]: each row holds a vec4 along k; transposing is free on
    // SIMD-across-lanes hardware (a vec4 is 4 registers).
    let r = vec4(min(r0, m - 1u), min(r0 + 1u, m - 1u), min(r0 + 2u, m - 1u), min(r0 + 3u, m - 1u));
    let at = base + r * (k / 4u) + kq;
    return transpose(mat4x4(a4[at.x], a4[at.y], a4[at.z], a4[at.w]));
}

// B[k = 4 kq .. 4 kq + 3, columns c0 .. c0 + 3] as a mat4x4 whose column j is
// column c0 + j over the 4 k. Clamped like a_block.
fn b_block(base: u32, c0: u32, kq: u32) -> mat4x4<f32> {
    let n = params.n;
    let k = params.k;
    if (TRANS_B) {
        // Stored [n, k]: each column holds a vec4 along k.
        let c = vec4(min(c0, n - 1u), min(c0 + 1u, n - 1u), min(c0 + 2u, n - 1u), min(c0 + 3u, n - 1u));
        let at = base + c * (k / 4u) + kq;
        return mat4x4(b4[at.x], b4[at.y], b4[at.z], b4[at.w]);
    }
    // Stored [k, n]: each k holds a vec4 of 4 consecutive columns; neighbouring
    // lanes read neighbouring vec4s.
    let at = base + min(c0, n - 4u) / 4u + 4u * kq * (n / 4u);
    return transpose(mat4x4(b4[at], b4[at + n / 4u], b4[at + 2u * (n / 4u)], b4[at + 3u * (n / 4u)]));
}

// a b + c as fused multiply-adds chained into the accumulator (c += a * b
// would add a separate product, 5 operations per 4 multiply-adds).
fn mad(a: mat4x4<f32>, b: mat4x4<f32>, c: mat4x4<f32>) -> mat4x4<f32> {
    return mat4x4(mad_col(a, b[0], c[0]), mad_col(a, b[1], c[1]), mad_col(a, b[2], c[2]), mad_col(a, b[3], c[3]));
}

fn mad_col(a: mat4x4<f32>, b: vec4<f32>, c: vec4<f32>) -> vec4<f32> {
    return fma(a[3], vec4(b.w), fma(a[2], vec4(b.z), fma(a[1], vec4(b.y), fma(a[0], vec4(b.x), c))));
}

// The outer product a b^T as a mat4x4 (column j = a * b[j]).
fn outer(a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4(a * b.x, a * b.y, a * b.z, a * b.w);
}

// Applies the epilogue to a 4 x 4 block (column = output column) and stores
// the elements inside the output.
fn store(bi: u32, r0: u32, c0: u32, acc: mat4x4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        for (var i = 0u; i < 4u; i++) {
            let row = r0 + i;
            let col = c0 + j;
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
    let col0 = (t % params.tiles_n) * 64u + lid.x * 4u;
    let m = params.m;
    let n = params.n;
    let k = params.k;

    // The k loop runs over whole vec4s of k; per step it multiplies 4 x 4 blocks.
    // Accumulators are mat4x4s (column = output column, row = output row) so
    // that nothing is indexed dynamically and everything stays in registers:
    // c[r][c] covers rows row0 + 4r .. +3 and columns col0 + 32c .. +3.
    var c00 = mat4x4<f32>();
    var c01 = mat4x4<f32>();
    var c10 = mat4x4<f32>();
    var c11 = mat4x4<f32>();
    let a_base = bi * params.a_sb / 4u;
    let b_base = bi * params.b_sb / 4u;
    let k4 = k / 4u;
    for (var kq = 0u; kq < k4; kq++) {
        // A blocks: column t = rows at k = 4 kq + t.
        let a0 = a_block(a_base, row0, kq);
        let a1 = a_block(a_base, row0 + 4u, kq);
        // B blocks: column j = output column j over k = 4 kq .. +3.
        let b0 = b_block(b_base, col0, kq);
        let b1 = b_block(b_base, col0 + 32u, kq);
        c00 = mad(a0, b0, c00);
        c01 = mad(a0, b1, c01);
        c10 = mad(a1, b0, c10);
        c11 = mad(a1, b1, c11);
    }
    // The last k % 4 steps, possible only when k is contiguous in neither operand
    // (TRANS_A without TRANS_B): one k at a time, as outer products.
    for (var kk = 4u * k4; kk < k; kk++) {
        let a0 = a4[a_base + kk * (m / 4u) + min(row0, m - 4u) / 4u];
        let a1 = a4[a_base + kk * (m / 4u) + min(row0 + 4u, m - 4u) / 4u];
        let b0 = b4[b_base + kk * (n / 4u) + min(col0, n - 4u) / 4u];
        let b1 = b4[b_base + kk * (n / 4u) + min(col0 + 32u, n - 4u) / 4u];
        c00 += outer(a0, b0);
        c01 += outer(a0, b1);
        c10 += outer(a1, b0);
        c11 += outer(a1, b1);
    }

    store(bi, row0, col0, c00);
    store(bi, row0, col0 + 32u, c01);
    store(bi, row0 + 4u, col0, c10);
    store(bi, row0 + 4u, col0 + 32u, c11);
}
