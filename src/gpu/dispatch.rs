//! Kernels, dispatch recording, submission and GPU timing.

use super::compile::CompileEntry;
use super::pipelines::PendingPipeline;
use super::{Gpu, GpuTensor};
use crate::{Error, Result};
use std::sync::Arc;
use wgpu::util::DeviceExt;

/// A WGSL compute shader: `shaders/<name>.wgsl`, entry point `main`.
/// Binding 0 is its `Params`, declared a uniform (bound as a read-only storage buffer on
/// lavapipe: see [`super::ParamsBinding`]); bindings 1.. are storage buffers in the order the op
/// passes them.
#[derive(Clone, Copy, Debug)]
pub struct Kernel {
    /// The op (or fused op) name; also the shader's file stem and the pipeline label.
    pub name: &'static str,
    /// The WGSL source.
    pub source: &'static str,
}

/// The WGSL directive a shader that calls subgroup builtins must carry.
const SUBGROUPS_DIRECTIVE: &str = "enable subgroups;";

impl Kernel {
    /// Whether the shader calls subgroup builtins (it says `enable subgroups;`, as WGSL
    /// requires): it runs only on devices with [`Gpu::subgroup_size`].
    pub fn needs_subgroups(&self) -> bool {
        self.source.lines().any(is_subgroups_directive)
    }

    /// The source as wgpu's WGSL front end (naga 30) takes it: naga parses subgroup
    /// builtins without the `enable subgroups;` directive and rejects the directive itself
    /// (gfx-rs/wgpu#5555), while tint and the WGSL spec require it. So the files carry it
    /// and it is blanked here (a blank line keeps naga's line numbers).
    pub fn naga_source(&self) -> std::borrow::Cow<'static, str> {
        if !self.needs_subgroups() {
            return self.source.into();
        }
        let lines: Vec<&str> =
            self.source.lines().map(|line| if is_subgroups_directive(line) { "" } else { line }).collect();
        (lines.join("\n") + "\n").into()
    }
}

/// Whether `line` is the `enable subgroups;` directive (a comment may follow it).
fn is_subgroups_directive(line: &str) -> bool {
    line.split("//").next().is_some_and(|code| code.trim() == SUBGROUPS_DIRECTIVE)
}

/// Declares a [`Kernel`] whose source is `shaders/<name>.wgsl`.
#[macro_export]
macro_rules! kernel {
    ($name:literal) => {
        $crate::gpu::Kernel {
            name: $name,
            source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $name, ".wgsl")),
        }
    };
}

/// One recorded kernel launch: pipeline, bound buffers and grid, created once
/// and replayable by any number of submits (a clone replays the same launch).
#[derive(Clone, Debug)]
pub struct Dispatch {
    label: &'static str,
    /// Compiled in the background ([`super::pipelines`]): wait before recording.
    pipeline: Arc<PendingPipeline>,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
    recipe: Recipe,
    /// A launch a kernel runs besides the one that writes the op's output (a layout pass, a
    /// transform, Winograd's GEMMs): part of that kernel's cost, not a separate op (see
    /// [`Dispatch::auxiliary`]).
    auxiliary: bool,
    /// Set by [`Dispatch::into_prepared`]: the bytes of the buffer it fills from constants alone.
    prepared: Option<u64>,
}

/// What a [`Dispatch`] was made from, kept so that another WebGPU runtime can replay it
/// (`glimpse check --export`: the browser runs the same launches).
#[derive(Clone, Debug)]
pub struct Recipe {
    /// The kernel: its file stem and source.
    pub kernel: Kernel,
    /// Pipeline-overridable constants, by name.
    pub constants: Vec<(String, f64)>,
    /// The `Params` bytes (binding 0), unpadded.
    pub params: Vec<u8>,
    /// The tensors bound at bindings 1.., in order (views share their buffer).
    pub bindings: Vec<GpuTensor>,
}

impl Dispatch {
    /// The kernel's name.
    pub fn label(&self) -> &'static str {
        self.label
    }

    /// The number of workgroups launched.
    pub fn workgroups(&self) -> [u32; 3] {
        self.workgroups
    }

    /// The kernel, constants, parameters and buffers it was prepared with.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// This launch marked as one of a kernel's auxiliary launches (it writes scratch another launch
    /// of the same op reads): counted with that op, e.g. when fusion's dispatch counts are compared.
    pub fn into_auxiliary(mut self) -> Dispatch {
        self.auxiliary = true;
        self
    }

    /// Whether this launch is one of a kernel's auxiliary launches ([`Dispatch::into_auxiliary`]):
    /// passes a per-device kernel choice adds before the launch that writes the op's output.
    pub fn auxiliary(&self) -> bool {
        self.auxiliary
    }

    /// This launch marked as computing, from constant tensors alone, `held`: a buffer of its own
    /// that no other launch writes ([`Gpu::derived`]). Running it again changes nothing, so a plan
    /// runs it once, when compiled, and keeps only the other launches; `held` counts as weights in
    /// the plan's memory. Also auxiliary.
    pub fn into_prepared(mut self, held: &GpuTensor) -> Dispatch {
        self.auxiliary = true;
        self.prepared = Some(held.capacity());
        self
    }

    /// The bytes of the buffer this launch fills once ([`Dispatch::into_prepared`]); None for a
    /// launch that runs on every run.
    pub fn prepared_bytes(&self) -> Option<u64> {
        self.prepared
    }

    /// Waits until its pipeline is compiled (inside [`Gpu::compiling_in_parallel`] a worker thread
    /// compiles it after `prepare` returned): the driver's compile error, if it failed.
    pub fn ready(&self) -> Result<()> {
        self.pipeline().map(|_| ())
    }

    /// Its pipeline, once compiled (see [`Dispatch::ready`]).
    pub(super) fn pipeline(&self) -> Result<&wgpu::ComputePipeline> {
        self.pipeline.wait()
    }

    /// The pipeline's entry in the device's compile log (its first run is timed).
    pub(super) fn compile_entry(&self) -> &CompileEntry {
        &self.pipeline.log
    }
}

/// Most timestamp queries one query set may hold (wgpu's limit).
const MAX_QUERIES: usize = 4096;

impl Gpu {
    /// Workgroup counts for `groups` workgroups along one logical axis. Past the
    /// per-dimension limit (65535 by default) the grid folds into y; shaders
    /// recover the linear index as `wid.x + wid.y * nwg.x` and guard the tail.
    pub fn grid_1d(&self, op: &str, groups: u64) -> Result<[u32; 3]> {
        let max = self.max_workgroups_per_dim() as u64;
        let groups = groups.max(1);
        if groups <= max {
            return Ok([groups as u32, 1, 1]);
        }
        let y = groups.div_ceil(max);
        if y > max {
            return Err(Error::invalid(op, format!("{groups} workgroups exceed this device's grid of {max} x {max}")));
        }
        Ok([max as u32, y as u32, 1])
    }

    /// Prepares one launch of `kernel` over `workgroups`, with `params` in
    /// binding 0 and `bindings` in bindings 1.. (read-only inputs first, output last).
    pub fn prepare<P: bytemuck::Pod>(
        &self,
        kernel: &Kernel,
        constants: &[(&str, f64)],
        params: &P,
        bindings: &[&GpuTensor],
        workgroups: [u32; 3],
    ) -> Result<Dispatch> {
        let max = self.max_workgroups_per_dim();
        if workgroups.iter().any(|&w| w > max) {
            return Err(Error::invalid(
                kernel.name,
                format!("grid {workgroups:?} exceeds this device's {max} workgroups per dimension"),
            ));
        }
        let (pipeline, layout) = self.pipeline(kernel, constants)?;
        let bind_group = self.scoped(&format!("binding kernel {}", kernel.name), || {
            // Uniform blocks are sized in 16-byte steps on some backends.
            let mut bytes = bytemuck::bytes_of(params).to_vec();
            bytes.resize(bytes.len().next_multiple_of(16), 0);
            let params = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(kernel.name),
                contents: &bytes,
                usage: self.params.usage(),
            });
            let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() }];
            for (i, t) in bindings.iter().enumerate() {
                entries.push(wgpu::BindGroupEntry { binding: i as u32 + 1, resource: t.buffer.as_entire_binding() });
            }
            self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some(kernel.name),
                layout: &layout.bind_group,
                entries: &entries,
            })
        })?;
        let recipe = Recipe {
            kernel: *kernel,
            constants: constants.iter().map(|&(name, value)| (name.to_string(), value)).collect(),
            params: bytemuck::bytes_of(params).to_vec(),
            bindings: bindings.iter().map(|&t| t.clone()).collect(),
        };
        Ok(Dispatch { label: kernel.name, pipeline, bind_group, workgroups, recipe, auxiliary: false, prepared: None })
    }

    /// Records `dispatches` in order into one command buffer, submits it and
    /// waits for the GPU to finish.
    pub fn submit(&self, dispatches: &[Dispatch]) -> Result<()> {
        self.execute(dispatches, None, &[], "submit").map(|_| ())
    }

    /// Like [`Gpu::submit`], and returns each dispatch's GPU time in
    /// nanoseconds from timestamp queries. Errors when the adapter has none.
    pub fn submit_timed(&self, dispatches: &[Dispatch]) -> Result<Vec<f64>> {
        if !self.has_timestamps() {
            return Err(Error::invalid("timing", format!("adapter {} has no timestamp queries", self.adapter())));
        }
        let count = dispatches.len() * 2;
        if count == 0 || count > MAX_QUERIES {
            return Err(Error::invalid(
                "timing",
                format!("can time 1 to {} dispatches, got {}", MAX_QUERIES / 2, dispatches.len()),
            ));
        }
        let (queries, resolved) = self.scoped("timed submit", || {
            let queries = self.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: count as u32,
            });
            let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: count as u64 * 8,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (queries, resolved)
        })?;
        let bytes =
            self.execute(dispatches, Some((&queries, &resolved)), &[(&resolved, count as u64 * 8)], "timed submit")?;
        let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes[0]);
        let period = self.queue.get_timestamp_period() as f64;
        Ok(ticks.chunks(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period).collect())
    }

    /// Records `dispatches` into `encoder` with their `pipelines` ([`super::pipelines::ready`]),
    /// one compute pass each so that each can carry its own timestamps; resolves the timestamps
    /// after the last.
    pub(super) fn record(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        dispatches: &[Dispatch],
        pipelines: &[&wgpu::ComputePipeline],
        timing: Option<(&wgpu::QuerySet, &wgpu::Buffer)>,
    ) {
        for (i, (d, pipeline)) in dispatches.iter().zip(pipelines).enumerate() {
            let timestamp_writes = timing.map(|(queries, _)| wgpu::ComputePassTimestampWrites {
                query_set: queries,
                beginning_of_pass_write_index: Some(2 * i as u32),
                end_of_pass_write_index: Some(2 * i as u32 + 1),
            });
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(d.label), timestamp_writes });
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &d.bind_group, &[]);
            let [x, y, z] = d.workgroups;
            pass.dispatch_workgroups(x, y, z);
        }
        if let Some((queries, resolved)) = timing {
            encoder.resolve_query_set(queries, 0..(dispatches.len() * 2) as u32, resolved, 0);
        }
    }
}
