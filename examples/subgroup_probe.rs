//! What the default adapter's subgroups really do, against the width it reports: one 64-invocation
//! workgroup records, per invocation, subgroup_size, subgroup_invocation_id, a broadcast of lane 1's
//! local index, a shuffle from the next lane, a broadcast of a vec4 from lane 3 and a subgroupAdd of
//! the local index; the probe prints the first invocation of each subgroup, counts, per value, the
//! invocations that disagree with subgroups of the reported width, and fails if any do.
//! `LP_NATIVE_VECTOR_WIDTH=1024 cargo run --release --example subgroup_probe`
//! (lavapipe, Mesa 22.3.6 and 25.0.7 alike, reports 32 lanes there and runs subgroups of 16:
//! BENCHMARKS.md, "Subgroups of 32 and 64 lanes on lavapipe".)

use anyhow::{bail, Context, Result};

// No `enable subgroups;`: naga rejects the directive (gfx-rs/wgpu#5555) and takes the builtins
// without it.
const PROBE: &str = r#"
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) i: u32, @builtin(subgroup_size) size: u32,
        @builtin(subgroup_invocation_id) lane: u32) {
    out[i * 6u + 0u] = size;
    out[i * 6u + 1u] = lane;
    out[i * 6u + 2u] = subgroupBroadcast(i, 1u);
    out[i * 6u + 3u] = subgroupShuffle(i, (lane + 1u) % size);
    out[i * 6u + 4u] = subgroupBroadcast(vec4(i, i + 1u, i + 2u, i + 3u), 3u).w;
    out[i * 6u + 5u] = subgroupAdd(i);
}
"#;

const FIELDS: [&str; 6] =
    ["size", "lane", "broadcast(i, 1)", "shuffle(i, lane + 1)", "broadcast(vec4(i .. i + 3), 3).w", "add(i)"];

fn main() -> Result<()> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).context("no adapter")?;
    let info = adapter.get_info();
    println!("{} ({:?}, {})", info.name, info.backend, info.driver_info);
    if !adapter.features().contains(wgpu::Features::SUBGROUP) {
        bail!("this adapter has no subgroups");
    }
    let width = info.subgroup_max_size;
    println!("reported subgroup sizes: {} to {}", info.subgroup_min_size, width);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_features: wgpu::Features::SUBGROUP,
        ..Default::default()
    }))?;
    let bytes = 64 * FIELDS.len() as u64 * 4;
    let buffer = |label, usage| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        })
    };
    let out = buffer("out", wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let read = buffer("read", wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("subgroup probe"),
        source: wgpu::ShaderSource::Wgsl(PROBE.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("subgroup probe"),
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: out.as_entire_binding() }],
    });
    let mut encoder = device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(1, 1, 1);
    }
    encoder.copy_buffer_to_buffer(&out, 0, &read, 0, bytes);
    queue.submit([encoder.finish()]);
    read.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("map the probe's output"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let values: Vec<u32> = bytemuck::cast_slice(&read.slice(..).get_mapped_range()?).to_vec();

    // What subgroups of `width` lanes, laid over the 64 invocations in order, would give.
    let expected = |i: u32| {
        let first = i / width * width;
        let lane = i - first;
        [width, lane, first + 1, first + (lane + 1) % width, first + 6, (first..first + width).sum()]
    };
    let mut wrong = 0;
    let mut wrong_by_field = [0; FIELDS.len()];
    for i in 0..64u32 {
        let got = &values[i as usize * 6..][..6];
        if i % width.min(64) == 0 || i < 2 {
            println!(
                "invocation {i:2}: {}",
                FIELDS.iter().zip(got).map(|(f, v)| format!("{f} {v}")).collect::<Vec<_>>().join(", ")
            );
        }
        for (field, (g, e)) in FIELDS.iter().zip(got.iter().zip(expected(i))) {
            if *g != e {
                wrong += 1;
                wrong_by_field[FIELDS.iter().position(|f| f == field).unwrap()] += 1;
                if wrong <= 8 {
                    println!("  invocation {i}: {field} = {g}, {width}-lane subgroups give {e}");
                }
            }
        }
    }
    for (field, n) in FIELDS.iter().zip(wrong_by_field).filter(|(_, n)| *n > 0) {
        println!("{field}: {n} of 64 invocations differ");
    }
    if wrong > 0 {
        bail!("{wrong} of {} values differ from {width}-lane subgroups", 64 * FIELDS.len());
    }
    println!("every value is what {width}-lane subgroups give");
    Ok(())
}
