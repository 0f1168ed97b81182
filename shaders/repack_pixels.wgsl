// repack_pixels: out[plane, p] = x[plane, (p / ow) * stride_y, (p % ow) * stride_x] for the
// pixels p < oh * ow of each of the N x C planes, zeros for p up to `packed` (oh * ow rounded up to
// a multiple of 4): the 1 x 1 conv's input, subsampled by its stride and laid out as a GEMM's B
// [N, C, packed] whose rows are whole vec4s, for matmul_subgroup (see src/ops/matmul_repack.rs).
// Why: matmul_subgroup needs B's rows in whole aligned vec4s. A stride-2 1 x 1 conv read straight
// from x loads twice the elements it uses (conv2d_window_subgroup's 1 x 1 / 2), and a 7 x 7 map's
// 49 pixels straddle vec4s (2 loads per k in the windowed kernel); this pass copies C x pixels
// elements once so the GEMM's Cout x C x pixels multiply-adds run at matmul_subgroup's rate.
// One invocation writes one vec4 (4 packed pixels of one plane): 4 scalar loads, 1 vector store.
// The workgroup grid is 1-D, folded into y past 65535: linear workgroup = wid.x + wid.y * nwg.x.
// Bindings: x = [N, C, h, w] (scalar), out = [N, C, packed] viewed as vec4s.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
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
    let p0 = (i % quads) * 4u;
    let base = plane * params.h * params.w;
    var v = vec4(0.0);
    for (var j = 0u; j < 4u; j++) {
        let p = p0 + j;
        if (p < params.pixels) {
            v[j] = x[base + (p / params.ow) * params.stride_y * params.w + (p % params.ow) * params.stride_x];
        }
    }
    out[i] = v;
}
