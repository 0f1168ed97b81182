// conv2d_phases: a gather pass that lays x out so that a strided conv reads it like a stride-1 one.
//   out[plane, p, i, j] = x[plane, STEP (i - by) + a, STEP (j - bx) + b], 0 outside x,
// for each of the N C planes of x, with phase p = 2 a + b (PHASES = 4: a, b = row and column parity;
// PHASES = 1: a = b = 0). Each phase plane is PH x PW (PW a multiple of 4 where a conv reads it as
// vec4s), bordered by `by` rows and `bx` columns of zeros before x's first (the padding the conv
// would otherwise mask per tap).
//
// Why: a stride-2 conv's 4 consecutive outputs read every other element of x; in a phase plane they
// read 4 consecutive elements of one aligned vec4 window, so the conv's taps become stride-1 taps at
// constant offsets (conv2d_phased_subgroup), and a stride-2 dilation-2 3 x 3 conv, which reads only
// x's even rows and columns, becomes a stride-1 3 x 3 conv over the even phase alone
// (conv2d_window_subgroup). The pass costs one read and one write per element of out, against C_out
// multiply-adds per tap of the conv it feeds. STEP = 1 with PHASES = 1 pads a plane's rows
// (the stem's weight as rows of 7 taps, each padded to 8: conv2d_phased_subgroup's 2 steps of 4 k).
//
// Bindings, contiguous row-major f32:
//   1 x   [planes, h, w]
//   2 out [planes, PHASES, PH, PW]
// One invocation per 4 consecutive elements of out, stored as one vec4 (a store costs as much as
// a load on lavapipe, and so does each invocation's index arithmetic: a scalar pass ran the stem's
// planes at about a tenth of the conv's time); the buffer holds whole vec4s (16-byte allocations),
// so the last one may write past `total`. The workgroup grid is 1-D, folded into y past 65535.

override STEP: u32 = 2u;
override PHASES: u32 = 4u;
// A phase plane's height and width: constants, so that splitting an element index into plane, row
// and column divides by constants (multiply and shift; lavapipe runs integer division lane by lane).
override PH: u32 = 1u;
override PW: u32 = 4u;

struct Params {
    h: u32,
    w: u32,
    by: u32,
    bx: u32,
    total: u32, // elements of out
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let q = (wid.x + wid.y * nwg.x) * 64u + li;
    if (4u * q >= params.total) {
        return;
    }
    var v = vec4(0.0);
    for (var t = 0u; t < 4u; t++) {
        v[t] = element(4u * q + t);
    }
    out[q] = v;
}

// Element e of out (0 past `total`).
fn element(e: u32) -> f32 {
    let j = e % PW;
    let i = e / PW % PH;
    let p = e / (PW * PH) % PHASES;
    let plane = e / (PW * PH * PHASES);
    var a = 0u;
    var b = 0u;
    if (PHASES == 4u) {
        a = p / 2u;
        b = p % 2u;
    }
    // i - by may be negative (the border): signed arithmetic, then one range test.
    let y = i32(STEP) * (i32(i) - i32(params.by)) + i32(a);
    let xx = i32(STEP) * (i32(j) - i32(params.bx)) + i32(b);
    if (e >= params.total || y < 0 || y >= i32(params.h) || xx < 0 || xx >= i32(params.w)) {
        return 0.0;
    }
    return x[(plane * params.h + u32(y)) * params.w + u32(xx)];
}
