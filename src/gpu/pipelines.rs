//! The pipeline cache: one pipeline per kernel and set of override constants, behind bind-group
//! layouts read from the kernel's own WGSL; inside [`Gpu::compiling_in_parallel`] (how a plan
//! encodes its ops) compiled on worker threads while the caller goes on encoding.
//!
//! Why in parallel: creating a pipeline is where lavapipe runs its NIR passes and GPU drivers
//! compile, and a network asks for dozens (timm.skresnet18: 73, 5.3 s on lavapipe, eight of them
//! matmul_rows_subgroup at about 0.5 s each), which one thread created one after another while the
//! plan was encoded. On the 2-core host its first plan and run took 2.8 s instead of 4.1-4.6
//! (`glimpse bench --suite networks --batch 1 --filter skresnet18 -v`, the cold column), four
//! such pipelines 0.9 s instead of 1.5 (`cargo run --release --example compile_probe`;
//! BENCHMARKS.md, "Pipelines compiled in parallel"). Why only inside that call: it waits for every
//! compile it started, so none outlives it (a compile thread still inside the driver when the
//! process exits could crash it), and a lone `prepare` keeps reporting a compile error itself.
//!
//! Why explicit layouts: a launch's bind group is created when it is prepared, so that binding the
//! wrong buffers is an error right there; with layouts derived from the compiled pipeline
//! (`layout: None`) that would wait for the compile. The layout is the kernel's `@group(0)`
//! bindings as its source declares them (uniform, read-only or read-write storage), read once per
//! kernel with naga, wgpu's own WGSL front end.

use super::compile::{CompileEntry, PipelineCompile};
use super::{Dispatch, Gpu, Kernel};
use crate::{Error, Result};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

/// A kernel's source as compiled on this device and the layouts read from it.
#[derive(Debug)]
pub(super) struct KernelLayout {
    /// The WGSL after [`super::ParamsBinding::apply`] and [`Kernel::naga_source`].
    source: Arc<str>,
    pub(super) bind_group: wgpu::BindGroupLayout,
    pipeline: wgpu::PipelineLayout,
}

/// A pipeline a worker thread is compiling, or has compiled (or failed to).
#[derive(Debug)]
pub(super) struct PendingPipeline {
    done: OnceLock<Result<wgpu::ComputePipeline>>,
    /// Its entry in the device's compile log, shared with its launches (their first run is timed).
    pub(super) log: CompileEntry,
}

impl PendingPipeline {
    /// The pipeline, once compiled: blocks until its worker is done.
    pub(super) fn wait(&self) -> Result<&wgpu::ComputePipeline> {
        self.done.wait().as_ref().map_err(Clone::clone)
    }
}

/// The compile threads of one device: how many may compile at once (a counting semaphore as wide
/// as the host's cores: compiling is the driver's work on the CPU, whatever the device) and how many
/// compiles are still running.
#[derive(Debug)]
pub(super) struct CompileSlots {
    counts: Mutex<Counts>,
    changed: Condvar,
}

#[derive(Debug)]
struct Counts {
    /// Compiles that may start now.
    free: usize,
    /// Compiles started on worker threads and not yet finished.
    in_flight: usize,
}

impl Default for CompileSlots {
    fn default() -> Self {
        CompileSlots::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl CompileSlots {
    fn new(slots: usize) -> Self {
        CompileSlots { counts: Mutex::new(Counts { free: slots, in_flight: 0 }), changed: Condvar::new() }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Counts guard nothing else: a panic while they were held leaves nothing to repair.
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` once a slot is free.
    fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut counts = self.counts();
            while counts.free == 0 {
                counts = self.changed.wait(counts).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            counts.free -= 1;
        }
        let value = f();
        self.counts().free += 1;
        self.changed.notify_all();
        value
    }

    /// Counts a compile handed to a worker thread until [`CompileSlots::finished`].
    fn started(&self) {
        self.counts().in_flight += 1;
    }

    fn finished(&self) {
        self.counts().in_flight -= 1;
        self.changed.notify_all();
    }

    /// Blocks until no compile handed to a worker thread is running.
    fn wait_idle(&self) {
        let mut counts = self.counts();
        while counts.in_flight > 0 {
            counts = self.changed.wait(counts).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }
}

thread_local! {
    /// How many [`Gpu::compiling_in_parallel`] calls this thread is inside.
    static IN_PARALLEL: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Every launch's pipeline, waiting for those still compiling; the first compile error in order.
pub(super) fn ready(dispatches: &[Dispatch]) -> Result<Vec<&wgpu::ComputePipeline>> {
    dispatches.iter().map(Dispatch::pipeline).collect()
}

impl Gpu {
    /// Compiles `kernel` now (pipelines are otherwise compiled on first use): shows a shader is
    /// accepted by this device and its limits.
    pub fn compile(&self, kernel: &Kernel) -> Result<()> {
        self.pipeline(kernel, &[])?.0.wait().map(|_| ())
    }

    /// Runs `encode` with every pipeline its [`Gpu::prepare`] calls need compiled on worker threads
    /// (as many at once as the host has cores) instead of one after another inside `prepare`, and
    /// returns once all of them have finished, whatever `encode` returned (or if it panicked): no
    /// compile outlives the call, so none is still inside the driver when the process exits.
    /// Inside, `prepare` does not wait for its pipeline and a driver's compile error comes from
    /// [`Dispatch::ready`] (or the first run); [`crate::graph::Plan::compile`] encodes its ops
    /// this way and checks every launch's pipeline before it returns.
    pub fn compiling_in_parallel<T>(&self, encode: impl FnOnce() -> T) -> T {
        struct Leave<'a>(&'a CompileSlots);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                IN_PARALLEL.with(|depth| depth.set(depth.get() - 1));
                self.0.wait_idle();
            }
        }
        IN_PARALLEL.with(|depth| depth.set(depth.get() + 1));
        let _leave = Leave(&self.compile_slots);
        encode()
    }

    /// The pipeline for `kernel` with override `constants`, from the cache or compiled now: on this
    /// thread (its error returned here), or inside [`Gpu::compiling_in_parallel`] on a worker
    /// thread, returned at once (the driver's error then comes from [`PendingPipeline::wait`]);
    /// with the kernel's layouts, which its bind groups take.
    pub(super) fn pipeline(
        &self,
        kernel: &Kernel,
        constants: &[(&str, f64)],
    ) -> Result<(Arc<PendingPipeline>, Arc<KernelLayout>)> {
        // The source's address joins the name: two Kernel values sharing a name
        // must not share a pipeline.
        let kernel_key = format!("{}@{:p}", kernel.name, kernel.source.as_ptr());
        let layout = self.kernel_layout(kernel, &kernel_key)?;
        let key = format!("{kernel_key}{constants:?}");
        let in_parallel = IN_PARALLEL.with(|depth| depth.get() > 0);
        let mut cache = self.pipelines.lock().expect("pipeline cache should not be poisoned");
        let pending = match cache.get(&key) {
            Some(p) => p.clone(),
            None => {
                let pending = Arc::new(PendingPipeline {
                    done: OnceLock::new(),
                    log: self.log_compile(PipelineCompile {
                        kernel: kernel.name,
                        constants: constants.iter().map(|&(name, value)| (name.to_string(), value)).collect(),
                        create_ms: 0.0,
                        first_run_ms: None,
                    }),
                });
                cache.insert(key, pending.clone());
                drop(cache);
                let owned: Vec<(String, f64)> = constants.iter().map(|&(n, v)| (n.to_string(), v)).collect();
                if in_parallel {
                    self.compile_in_background(kernel.name, layout.clone(), owned, pending.clone());
                } else {
                    self.compile_now(kernel.name, &layout, &owned, &pending);
                }
                pending
            }
        };
        if !in_parallel {
            pending.wait()?;
        }
        Ok((pending, layout))
    }

    /// Starts [`Gpu::compile_now`] on a worker thread, counted in flight until it is done.
    fn compile_in_background(
        &self,
        name: &'static str,
        layout: Arc<KernelLayout>,
        constants: Vec<(String, f64)>,
        pending: Arc<PendingPipeline>,
    ) {
        /// Counts the compile finished however its thread ends (a panic too), so that
        /// [`CompileSlots::wait_idle`] never waits for a thread that is gone.
        struct InFlight(Arc<CompileSlots>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                self.0.finished();
            }
        }
        self.compile_slots.started();
        let (gpu, job_pending, in_flight) = (self.view(), pending.clone(), InFlight(self.compile_slots.clone()));
        let spawned = std::thread::Builder::new().name(format!("compile {name}")).spawn(move || {
            let _in_flight = in_flight;
            gpu.compile_now(name, &layout, &constants, &job_pending);
        });
        if let Err(e) = spawned {
            // Set here, as the job would have: nothing ever waits for a compile that cannot start
            // (the closure, and with it the InFlight count, was dropped with the error).
            let msg = format!("could not start a thread to compile it: {e}");
            let _ = pending.done.set(Err(Error::Gpu { context: format!("compiling kernel {name}"), msg }));
        }
    }

    /// Creates the pipeline and stores the outcome in `pending`, which always gets one: a panic
    /// inside wgpu becomes an error, never a launch waiting forever.
    fn compile_now(
        &self,
        name: &'static str,
        layout: &KernelLayout,
        constants: &[(String, f64)],
        pending: &PendingPipeline,
    ) {
        self.compile_slots.run(|| {
            let context = format!("compiling kernel {name}");
            let start = Instant::now();
            let constants: Vec<(&str, f64)> = constants.iter().map(|(n, v)| (n.as_str(), *v)).collect();
            let create = || {
                self.scoped(&context, || {
                    let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(name),
                        source: wgpu::ShaderSource::Wgsl(layout.source.as_ref().into()),
                    });
                    self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(name),
                        layout: Some(&layout.pipeline),
                        module: &module,
                        entry_point: Some("main"),
                        // No zero-filling of workgroup memory: every kernel writes each element of
                        // its workgroup arrays before reading it (tests/shaders.rs lists the kernels
                        // checked). On OpenGL, wgpu zero-fills with one array constructor per
                        // variable (4096 zeros for cbam_channel_mlp and sk_attention), which
                        // llvmpipe took 500 and 900 s to compile on a first run.
                        compilation_options: wgpu::PipelineCompilationOptions {
                            constants: &constants,
                            zero_initialize_workgroup_memory: false,
                        },
                        cache: None,
                    })
                })
            };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(create)).unwrap_or_else(|_| {
                Err(Error::Gpu { context: context.clone(), msg: "the driver panicked creating the pipeline".into() })
            });
            pending.log.lock().expect("compile entry should not be poisoned").create_ms =
                start.elapsed().as_secs_f64() * 1e3;
            // Only this job sets it.
            let _ = pending.done.set(result);
        });
    }

    /// `kernel`'s source as this device compiles it and its layouts, read once per kernel (`key`).
    fn kernel_layout(&self, kernel: &Kernel, key: &str) -> Result<Arc<KernelLayout>> {
        let mut cache = self.layouts.lock().expect("layout cache should not be poisoned");
        if let Some(layout) = cache.get(key) {
            return Ok(layout.clone());
        }
        let context = format!("compiling kernel {}", kernel.name);
        if kernel.needs_subgroups() && !self.features.contains(wgpu::Features::SUBGROUP) {
            return Err(Error::Gpu {
                context,
                msg: format!("it needs subgroup operations, which {} does not offer", self.adapter().name),
            });
        }
        let source: Arc<str> = self.params.apply(kernel.naga_source()).into();
        let entries = bindings(&source).map_err(|msg| Error::Gpu { context: context.clone(), msg })?;
        let layout = self.scoped(&context, || {
            let bind_group = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                label: Some(kernel.name),
                entries: &entries,
            });
            let pipeline = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: Some(kernel.name),
                bind_group_layouts: &[Some(&bind_group)],
                immediate_size: 0,
            });
            Arc::new(KernelLayout { source: source.clone(), bind_group, pipeline })
        })?;
        cache.insert(key.to_string(), layout.clone());
        Ok(layout)
    }
}

/// The `@group(0)` buffer bindings `source` declares, as layout entries; a parse error, another
/// group or a binding that is not a buffer as the message.
fn bindings(source: &str) -> std::result::Result<Vec<wgpu::BindGroupLayoutEntry>, String> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| e.emit_to_string(source))?;
    let mut entries = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(binding) = &var.binding else { continue };
        let name = var.name.as_deref().unwrap_or("?");
        if binding.group != 0 {
            return Err(format!("{name} is in group {}: kernels bind group 0 only", binding.group));
        }
        let ty = match var.space {
            naga::AddressSpace::Uniform => wgpu::BufferBindingType::Uniform,
            naga::AddressSpace::Storage { access } => {
                wgpu::BufferBindingType::Storage { read_only: !access.contains(naga::StorageAccess::STORE) }
            }
            other => return Err(format!("{name} is a {other:?} binding: kernels bind buffers only")),
        };
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: binding.binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        });
    }
    entries.sort_by_key(|e| e.binding);
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_are_read_from_the_source_in_binding_order() {
        let source = "@group(0) @binding(2) var<storage, read_write> out: array<f32>;
            @group(0) @binding(0) var<uniform> params: vec4<u32>;
            @group(0) @binding(1) var<storage, read> x: array<f32>;
            var<workgroup> tile: array<f32, 64>;
            @compute @workgroup_size(64) fn main() { out[0] = x[0] + f32(params.x) + tile[0]; }";
        let entries = bindings(source).unwrap();
        let types: Vec<(u32, wgpu::BufferBindingType)> = entries
            .iter()
            .map(|e| match e.ty {
                wgpu::BindingType::Buffer { ty, .. } => (e.binding, ty),
                other => panic!("binding {} is {other:?}", e.binding),
            })
            .collect();
        use wgpu::BufferBindingType::{Storage, Uniform};
        assert_eq!(types, [(0, Uniform), (1, Storage { read_only: true }), (2, Storage { read_only: false })]);
    }

    #[test]
    fn bindings_glimpse_cannot_bind_are_refused_by_name() {
        let group1 = "@group(1) @binding(0) var<storage, read> x: array<f32>;
            @compute @workgroup_size(1) fn main() { _ = x[0]; }";
        assert!(bindings(group1).unwrap_err().contains("x is in group 1"));
        let texture = "@group(0) @binding(0) var t: texture_2d<f32>;
            @compute @workgroup_size(1) fn main() { _ = textureDimensions(t); }";
        assert!(bindings(texture).unwrap_err().contains("buffers only"));
        assert!(bindings("@compute fn main( {").is_err());
    }

    #[test]
    fn no_more_compiles_run_at_once_than_there_are_slots() {
        let slots = CompileSlots::new(2);
        let (running, most) = (Mutex::new(0), Mutex::new(0));
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    slots.run(|| {
                        let now = {
                            let mut r = running.lock().unwrap();
                            *r += 1;
                            *r
                        };
                        let mut m = most.lock().unwrap();
                        *m = (*m).max(now);
                        drop(m);
                        // Long enough for the other threads to try to start meanwhile.
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        *running.lock().unwrap() -= 1;
                    })
                });
            }
        });
        // At most 2 (6 where the slots limited nothing); exactly 2 only if the threads overlapped.
        assert!((1..=2).contains(&*most.lock().unwrap()));
        assert_eq!(slots.counts().free, 2);
    }
}
