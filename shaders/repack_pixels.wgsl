// repack_pixels: out[plane, p] = x[plane, (p / ow) * stride_y, (p % ow) * stride_x] for the
// pixels p < oh * ow of each of the N x C planes, zeros for p up to `packed` (oh * ow rounded up to
// a multiple of 4): the 1 x 1 conv's input, subsampled by its stride and laid out as a GEMM's B
// [N, C, packed] whose rows are whole vec4s, for matmul_subgroup (see src/ops/matmul_repack.rs).
// Why: matmul_subgroup needs B's rows in whole aligned vec4s. A stride-2 1 x 1 conv read straight
// from x loads twice the elements it uses (conv2d_window_subgroup's 1 x 1 / 2), and a 7 x 7 map's
// 49 pixels straddle vec4s (2 loads per k in the windowed kernel); this pass copies C x pixels
// elements once so the GEMM's Cout x C x pixels multiply-adds run at matmul_subgroup's rate.
// One invocation writes one vec4 (4 packed pixels of one plane). Its pixels' coordinates step from
// the first's (one division instead of eight: lavapipe has no vector integer division and runs
// each lane's in turn). PAIRS (the host sets it for stride 2 along x with output rows of whole quads
// and input rows of whole vec4 pairs: 56 x 56 maps) reads the 4 pixels as 2 aligned vec4s of x
// instead of 4 single elements (on lavapipe each load, of either size, is a loop over the lanes).
// The workgroup grid is 1-D, folded into y past 65535: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x = [N, C, h, w] (viewed as vec4s: every tensor buffer is padded to whole vec4s),
// out = [N, C, packed] viewed as vec4s.

override PAIRS: bool = false; // stride_x = 2, ow % 4 == 0 and w % 8 == 0

struct Params {
    planes: u32,   // N x C
    h: u32,
    w: u32,
    ow: u32,       // output columns: (w - 1) / stride_x + 1
    pixels: u32,   // output pixels per plane: oh x ow
    packed: u32,   // pixels rounded up to a multiple of 4: out's row length
    stride_y: u32,
    stride_x: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + li;
    let quads = params.packed / 4u;
    if (i >= params.planes * quads) {
        return;
    }
    let plane = i / quads;
    let p0 = (i - plane * quads) * 4u;
    let w = params.w;
    let row_step = params.stride_y * w;
    var oy = p0 / params.ow;
    var ox = p0 - oy * params.ow;
    let base = plane * params.h * w;
    if (PAIRS) {
        // The quad is one output row's columns ox .. ox + 3 (ow % 4 == 0): x's columns 2 ox .. 2 ox + 7,
        // aligned (w % 8 == 0, ox % 4 == 0).
        let at = (base + oy * row_step + 2u * ox) / 4u;
        let lo = x[at];
        let hi = x[at + 1u];
        out[i] = vec4(lo.x, lo.z, hi.x, hi.z);
        return;
    }
    var v = vec4(0.0);
    for (var j = 0u; j < 4u; j++) {
        if (p0 + j < params.pixels) {
            let e = base + oy * row_step + ox * params.stride_x;
            v[j] = x[e / 4u][e % 4u];
        }
        ox += 1u;
        if (ox == params.ow) {
            ox = 0u;
            oy += 1u;
        }
    }
    out[i] = v;
}
