//! What storing costs on the default adapter, apart from any kernel's arithmetic: 4 Mi vec4 stores
//! (64 MiB) laid out as matmul_subgroup's store phase lays them out: each subgroup of 8 lanes writes
//! SUBGROUP_ROWS rows (default 64, its R), one vec4 per lane and row (128 bytes per row), over rows
//! of each given length in vec4s (at least 8; a 56 x 56 map's 3136 floats are 784, a 28 x 28
//! map's 196). Beside them: each subgroup's stores contiguous, loads in the same patterns (summed,
//! one store per invocation), and the same stores as rgba32float storage-texture texels plus the
//! copy of that texture into a buffer. Wall time per dispatch, the fastest of 5 after a warm-up.
//! `LP_NUM_THREADS=1 SUBGROUP_ROWS=16 cargo run --release --example store_costs -- 196 784 1024`
//! On lavapipe this measures the driver's store loops on the host CPU, not GPU speed (BENCHMARKS.md,
//! "What bounds the rows still under the line").

use anyhow::{anyhow, Context, Result};
use std::time::Instant;

const N_VEC4: u32 = 1 << 22;
const TEXTURE_WIDTH: u32 = 8192;

// Invocation `lane` of subgroup sg (8 lanes) accesses vec4 index `at` for its rows r.
const STORES: &str = r#"
override ROW: u32 = 0u; // row length in vec4s; 0: each subgroup's rows contiguous
override MODE: u32 = 0u; // 0: buffer stores, 1: texture stores, 2: buffer loads (summed, one store)
override SUBGROUP_ROWS: u32 = 64u; // rows each subgroup writes (matmul_subgroup: its R)
@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var tex: texture_storage_2d<rgba32float, write>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let sg = g.x / 8u;
    let lane = g.x % 8u;
    var sum = vec4(0.0);
    for (var r = 0u; r < SUBGROUP_ROWS; r++) {
        var at = (sg * SUBGROUP_ROWS + r) * 8u + lane;
        if (ROW != 0u) {
            // Subgroups side by side along a row (a row's last ROW % 8 vec4s stay unwritten; max:
            // ROW = 0 never gets here, but the constant is folded).
            let per_row = max(ROW / 8u, 1u);
            at = ((sg / per_row) * SUBGROUP_ROWS + r) * ROW + (sg % per_row) * 8u + lane;
        }
        let v = vec4(f32(at), f32(r), 1.0, 2.0);
        if (MODE == 1u) {
            textureStore(tex, vec2(at % 8192u, at / 8192u), v);
        } else if (MODE == 2u) {
            sum += out[at];
        } else {
            out[at] = v;
        }
    }
    if (MODE == 2u) {
        out[g.x] = sum; // keeps the loads; the values do not matter
    }
}
"#;

fn main() -> Result<()> {
    let rows: Vec<u32> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse::<u32>().ok().filter(|r| *r >= 8).ok_or_else(|| anyhow!("row length {a:?}: at least 8 (vec4s)"))
        })
        .collect::<Result<_>>()?;
    let subgroup_rows = match std::env::var("SUBGROUP_ROWS") {
        Ok(v) => v.parse::<u32>().ok().filter(|r| [1, 2, 4, 8, 16, 32, 64].contains(r)),
        Err(_) => Some(64),
    }
    .ok_or_else(|| anyhow!("SUBGROUP_ROWS: a power of two from 1 to 64"))?;
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).context("no adapter")?;
    println!("{} ({:?})", adapter.get_info().name, adapter.get_info().device_type);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))?;
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("out"),
        size: N_VEC4 as u64 * 16,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let extent = wgpu::Extent3d { width: TEXTURE_WIDTH, height: N_VEC4 / TEXTURE_WIDTH, depth_or_array_layers: 1 };
    let texture = device.create_texture(&wgpu::TextureDescriptor {
        label: Some("out texture"),
        size: extent,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba32Float,
        usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let view = texture.create_view(&Default::default());
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("stores"),
        source: wgpu::ShaderSource::Wgsl(STORES.into()),
    });
    let time = |what: &str, encode: &dyn Fn(&mut wgpu::CommandEncoder)| -> Result<()> {
        let mut best = f64::INFINITY;
        for round in 0..6 {
            let mut encoder = device.create_command_encoder(&Default::default());
            encode(&mut encoder);
            let start = Instant::now();
            queue.submit([encoder.finish()]);
            device.poll(wgpu::PollType::wait_indefinitely())?;
            if round > 0 {
                best = best.min(start.elapsed().as_secs_f64() * 1e3);
            }
        }
        println!("{what:<42} {best:8.2} ms");
        Ok(())
    };
    let (stores, texels, loads) = (0, 1, 2);
    let mut patterns: Vec<(String, u32, u32)> = vec![("stores, contiguous per subgroup".into(), 0, stores)];
    patterns.extend(rows.iter().map(|&r| (format!("stores, rows of {r} vec4s ({} bytes)", r * 16), r, stores)));
    patterns.push(("loads, contiguous per subgroup".into(), 0, loads));
    patterns.extend(rows.iter().map(|&r| (format!("loads, rows of {r} vec4s"), r, loads)));
    patterns.push(("texel stores, contiguous per subgroup".into(), 0, texels));
    for (what, row, mode) in patterns {
        let constants = [("ROW", row as f64), ("MODE", mode as f64), ("SUBGROUP_ROWS", subgroup_rows as f64)];
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("stores"),
            layout: None,
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
            cache: None,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: buffer.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&view) },
            ],
        });
        time(&what, &|encoder| {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(N_VEC4 / 64 / subgroup_rows, 1, 1);
        })?;
    }
    time("copy texture -> buffer", &|encoder| {
        encoder.copy_texture_to_buffer(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            wgpu::TexelCopyBufferInfo {
                buffer: &buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(TEXTURE_WIDTH * 16),
                    rows_per_image: None,
                },
            },
            extent,
        );
    })
}
