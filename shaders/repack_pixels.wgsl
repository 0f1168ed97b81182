// repack_pixels: out[n, (c, ky, kx), p] = x[n, c, oy sy - py + ky dy, ox sx - px + kx dx] (0 outside
// x) for the output pixels p = (oy, ox) < OH x OW of a conv with KH x KW taps, stride (sy, sx),
// padding (py, px) and dilation (dy, dx), zeros for p up to `packed` (OH x OW rounded up to a
// multiple of 4): the conv's input as a GEMM's B [N, C KH KW, packed] whose rows are whole vec4s
// (im2col; for a 1 x 1 conv without padding, x subsampled by its stride), for matmul_subgroup (see
// src/ops/matmul_repack.rs).
// Why: matmul_subgroup needs B's rows in whole aligned vec4s. A stride-2 1 x 1 conv read straight
// from x loads twice the elements it uses (conv2d_window_subgroup's 1 x 1 / 2), and a 7 x 7 map's
// 49 pixels straddle vec4s (2 loads per k in the windowed kernel); this pass copies C x pixels
// elements once per tap so the GEMM's Cout x C x taps x pixels multiply-adds run at
// matmul_subgroup's rate (on small maps, where Winograd's and the windowed kernel's tiles are
// mostly padding; see choose::conv2d).
// One invocation writes one vec4 (4 packed pixels of one row of out). Its pixels' coordinates step
// from the first's (one division instead of eight), and the divisions left divide by override
// constants (OW, QUADS, KH x KW, KW: the host sets them), which the driver's compiler turns into a
// multiply and a shift: lavapipe has no vector integer division and divides by a runtime value one
// lane at a time.
// PAIRS (the host sets it for a 1 x 1 conv without padding, stride 2 along x with an even output
// width, input rows of whole vec4s: ResNet's 56 x 56 and 28 x 28 inputs) reads the 4 pixels as 2
// aligned vec4s of x instead of 4 single elements (on lavapipe each load, of either size, is a loop
// over the lanes).
// The workgroup grid is 1-D, folded into y past 65535: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x = [N, C, h, w] (viewed as vec4s: every tensor buffer is padded to whole vec4s),
// out = [N, C KH KW, packed] viewed as vec4s.

override PAIRS: bool = false; // 1 x 1, no padding, stride_x = 2, ow even, w % 4 == 0 and pixels % 4 == 0
override OW: u32 = 1u;        // output columns
override QUADS: u32 = 1u;     // vec4s per row of out: output pixels rounded up to a multiple of 4, / 4
override KH: u32 = 1u;        // the conv's taps
override KW: u32 = 1u;

struct Params {
    rows: u32,     // rows of out: N x C x KH x KW
    h: u32,
    w: u32,
    pixels: u32,   // output pixels per row: oh x ow
    stride_y: u32,
    stride_x: u32,
    pad_y: u32,
    pad_x: u32,
    dil_y: u32,
    dil_x: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    if (i >= params.rows * QUADS) {
        return;
    }
    let row = i / QUADS;
    let p0 = (i - row * QUADS) * 4u;
    // Row (plane of x, tap): plane n C + c of x, tap (ky, kx).
    let plane = row / (KH * KW);
    let tap = row - plane * (KH * KW);
    let ky = tap / KW;
    let kx = tap - ky * KW;
    let w = params.w;
    let row_step = params.stride_y * w;
    var oy = p0 / OW;
    var ox = p0 - oy * OW;
    let base = plane * params.h * w;
    if (PAIRS) {
        // Columns ox, ox + 1 and the next two (on this output row, or the next row's first two) are
        // x's columns 2 ox, 2 ox + 2 and 2 ox + 4, 2 ox + 6 (or 0, 2 of the next row): the .x and .z
        // of two aligned vec4s (w % 4 == 0, ox and ow even: a pair never straddles two rows).
        let lo = base + oy * row_step + 2u * ox;
        let hi = select(base + (oy + 1u) * row_step, lo + 4u, ox + 2u < OW);
        let a = x[lo / 4u];
        let b = x[hi / 4u];
        out[i] = vec4(a.x, a.z, b.x, b.z);
        return;
    }
    // x's row and column for output (0, 0) at this tap, less the padding: u32 arithmetic wraps, so a
    // coordinate left of or above x becomes huge and fails the same `< h` / `< w` test as one past it.
    let y0 = ky * params.dil_y - params.pad_y;
    let x0 = kx * params.dil_x - params.pad_x;
    var v = vec4(0.0);
    for (var j = 0u; j < 4u; j++) {
        let iy = y0 + oy * params.stride_y;
        let ix = x0 + ox * params.stride_x;
        if (p0 + j < params.pixels && iy < params.h && ix < w) {
            let e = base + iy * w + ix;
            v[j] = x[e / 4u][e % 4u];
        }
        ox += 1u;
        if (ox == OW) {
            ox = 0u;
            oy += 1u;
        }
    }
    out[i] = v;
}
