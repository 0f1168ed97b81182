// cbam_channel_mlp: CBAM's channel attention from the pooled vectors of image n:
//   out[n, c] = sigmoid(fc2[c] . relu(fc1 . avg[n]) + fc2[c] . relu(fc1 . max[n]))
//             = sigmoid(sum_r fc2[c, r] * hidden[r]),
//   hidden[r] = relu(fc1[r] . avg[n]) + relu(fc1[r] . max[n]).
// Summing the two ReLU'd hidden vectors before fc2 (fc2 is linear) keeps R
// values, not 2R, in workgroup memory.
// One workgroup of 64 invocations per image n (folded into y past 65535
// images: n = wid.x + wid.y * nwg.x). Phase 1 strides the R hidden units over
// the invocations; phase 2 strides the C channels. The work is tiny (a few
// thousand MACs per image): clarity over speed.
// Bindings: pooled [N, 2, C] (row 0 the spatial average, row 1 the spatial max
// of each channel), fc1 [R, C], fc2 [C, R], out [N, C]; contiguous f32.
// The host guarantees R <= 4096 (the size of `hidden`, 16 KiB) and that every
// index below fits in u32.

struct Params {
    n: u32,  // images
    c: u32,  // channels
    r: u32,  // hidden units (R <= C)
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> pooled: array<f32>;
@group(0) @binding(2) var<storage, read> fc1: array<f32>;
@group(0) @binding(3) var<storage, read> fc2: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

var<workgroup> hidden: array<f32, 4096>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = wid.x + wid.y * nwg.x;
    // Uniform across the workgroup (it depends on the workgroup id only), so
    // the barrier below stays in uniform control flow.
    if (n >= params.n) {
        return;
    }
    let avg = n * 2u * params.c;  // pooled[n, 0, :]
    let mx = avg + params.c;       // pooled[n, 1, :]

    // Phase 1: both pooled vectors through fc1 in one pass over row r.
    for (var r = lid; r < params.r; r += 64u) {
        let row = r * params.c;
        var a = 0.0;
        var m = 0.0;
        for (var c = 0u; c < params.c; c++) {
            let w = fc1[row + c];
            a += w * pooled[avg + c];
            m += w * pooled[mx + c];
        }
        hidden[r] = max(a, 0.0) + max(m, 0.0);
    }
    // Every hidden unit must be written before any channel reads them.
    workgroupBarrier();

    // Phase 2: fc2 and the sigmoid, clamped to +-88 so exp stays finite in f32.
    for (var c = lid; c < params.c; c += 64u) {
        let row = c * params.r;
        var z = 0.0;
        for (var r = 0u; r < params.r; r++) {
            z += fc2[row + r] * hidden[r];
        }
        out[n * params.c + c] = 1.0 / (1.0 + exp(-clamp(z, -88.0, 88.0)));
    }
}
