// cbam_channel_mlp_vec4: cbam_channel_mlp where C and R are multiples of 4 (every CBAM of a ResNet:
// C = 64 .. 2048, R = C / 16), reading 4 weights and 4 pooled values per access:
//   out[n, c] = sigmoid(sum_r fc2[c, r] * hidden[r]),
//   hidden[r] = relu(fc1[r] . avg[n]) + relu(fc1[r] . max[n]).
// Why: on CPU adapters (lavapipe) every storage access is a loop over the SIMD lanes, so a vec4
// per lane costs about what a scalar does; the scalar kernel's 2R C + C R loads per image (a
// million at C = 2048) took 2.4-2.7 ms in resnet50 + CBAM, this one 1.4-2.6 (BENCHMARKS.md, "Where
// the networks' time goes, and plane-major element-wise kernels").
// Layout as in cbam_channel_mlp: one workgroup of 64 invocations per image n (folded into y past
// 65535 images: n = wid.x + wid.y * nwg.x); phase 1 strides the R hidden units over the
// invocations, phase 2 the C channels. Each dot product keeps 4 partial sums (one per vec4
// component), added at the end.
// Bindings: pooled [N, 2, C] (row 0 the spatial average, row 1 the spatial max of each channel),
// fc1 [R, C] and fc2 [C, R] as vec4s, out [N, C]; contiguous f32.
// The host guarantees 4 divides C and R, R <= 4096 (`hidden`: 1024 vec4s, 16 KiB) and that every
// index below fits in u32.

struct Params {
    n: u32,  // images
    c: u32,  // channels
    r: u32,  // hidden units (R <= C)
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pooled: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fc1: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> fc2: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> hidden: array<vec4<f32>, 1024>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = wid.x + wid.y * nwg.x;
    // Uniform across the workgroup (it depends on the workgroup id only), so
    // the barrier below stays in uniform control flow.
    if (n >= params.n) {
        return;
    }
    let c4 = params.c / 4u;
    let r4 = params.r / 4u;
    let avg = n * 2u * c4;  // pooled[n, 0, :] in vec4s
    let mx = avg + c4;       // pooled[n, 1, :]

    // Phase 1: both pooled vectors through fc1 in one pass over row r.
    for (var r = lid; r < params.r; r += 64u) {
        let row = r * c4;
        var a = vec4(0.0);
        var m = vec4(0.0);
        for (var j = 0u; j < c4; j++) {
            let w = fc1[row + j];
            a = fma(w, pooled[avg + j], a);
            m = fma(w, pooled[mx + j], m);
        }
        let sum_a = (a.x + a.y) + (a.z + a.w);
        let sum_m = (m.x + m.y) + (m.z + m.w);
        hidden[r / 4u][r % 4u] = max(sum_a, 0.0) + max(sum_m, 0.0);
    }
    // Every hidden unit must be written before any channel reads them.
    workgroupBarrier();

    // Phase 2: fc2 and the sigmoid, clamped to +-88 so exp stays finite in f32.
    for (var c = lid; c < params.c; c += 64u) {
        let row = c * r4;
        var z = vec4(0.0);
        for (var j = 0u; j < r4; j++) {
            z = fma(fc2[row + j], hidden[j], z);
        }
        let s = (z.x + z.y) + (z.z + z.w);
        out[n * params.c + c] = 1.0 / (1.0 + exp(-clamp(s, -88.0, 88.0)));
    }
}
