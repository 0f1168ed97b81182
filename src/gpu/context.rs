//! The GPU context: adapter, device, queue, error capture and device-loss tracking.

use super::adapters::AdapterSummary;
use super::compile::CompileEntry;
use super::params::ParamsBinding;
use super::pipelines::{CompileSlots, KernelLayout, PendingPipeline};
use super::profile::{fixed_subgroup_width, DeviceProfile, SUBGROUP_WIDTHS};
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How to open the device.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Limits to request. `None` requests everything the adapter offers, so
    /// large tensors fit where the hardware allows (the WebGPU defaults cap a
    /// binding at 128 MiB).
    pub limits: Option<wgpu::Limits>,
    /// How long one wait for the GPU may take before it becomes [`Error::Timeout`].
    pub timeout: Duration,
    /// Ask for subgroup operations where the adapter has them. Off, the ops pick their
    /// portable kernels, as on a device without subgroups (how `glimpse check --export`
    /// records the launches for runtimes whose subgroups differ from this adapter's).
    pub subgroups: bool,
    /// Encode for subgroups of this width instead of the adapter's: kernel choice and the
    /// subgroup kernels' layouts follow it (the adapter must have subgroups, so the pipelines
    /// compile). Where it differs from the adapter's own width the launches are only recorded
    /// (`glimpse check --export` writes them for runtimes with that width): running a subgroup
    /// kernel is refused, its layout would not match the lanes it runs on.
    pub encode_for_subgroup_width: Option<u32>,
    /// Most bytes one compiled plan may allocate ([`crate::budget::GPU_BYTES`]). `None` takes
    /// it from the environment ([`crate::budget::gpu_bytes`]).
    pub plan_bytes: Option<u64>,
    /// How kernels receive their `Params` ([`ParamsBinding`]). `None`: a read-only storage
    /// buffer on lavapipe, which would otherwise compile a shader per set of uniform values,
    /// and the shaders' uniform elsewhere.
    pub params: Option<ParamsBinding>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            limits: None,
            timeout: Duration::from_secs(120),
            subgroups: true,
            encode_for_subgroup_width: None,
            plan_bytes: None,
            params: None,
        }
    }
}

impl GpuOptions {
    /// The WebGPU defaults every browser guarantees (8 storage buffers per
    /// stage, 16 KiB workgroup memory, 256 invocations): glimpse's portability bar.
    /// Parameters in uniforms, as browsers compile the shaders.
    pub fn webgpu_defaults() -> Self {
        GpuOptions { limits: Some(wgpu::Limits::default()), params: Some(ParamsBinding::Uniform), ..Default::default() }
    }

    /// wgpu's downlevel baseline (only 4 storage buffers per stage): the most
    /// limited devices, which most kernels also fit. Parameters in uniforms.
    pub fn downlevel() -> Self {
        GpuOptions {
            limits: Some(wgpu::Limits::downlevel_defaults()),
            params: Some(ParamsBinding::Uniform),
            ..Default::default()
        }
    }
}

/// A device ready to run glimpse kernels. Build it once and reuse it: it caches
/// every compiled pipeline.
pub struct Gpu {
    pub(super) device: wgpu::Device,
    pub(super) queue: wgpu::Queue,
    pub(super) limits: wgpu::Limits,
    pub(super) features: wgpu::Features,
    /// Shared with the views [`Gpu::with_grid_limit`] makes (and the compile threads').
    pub(super) pipelines: Arc<Mutex<HashMap<String, Arc<PendingPipeline>>>>,
    /// Each kernel's source as compiled here and its layouts; shared with the views too.
    pub(super) layouts: Arc<Mutex<HashMap<String, Arc<KernelLayout>>>>,
    /// How many pipelines may compile at once; shared with the views too.
    pub(super) compile_slots: Arc<CompileSlots>,
    /// Every pipeline created, with what it cost (see [`Gpu::pipeline_compiles`]); shared
    /// with the views too, so a pipeline is logged once whichever view compiled it.
    pub(super) compiles: Arc<Mutex<Vec<CompileEntry>>>,
    /// The scratch slots ([`Gpu::scratch`]); shared with the views too.
    pub(super) scratch: Arc<Mutex<HashMap<&'static str, super::GpuTensor>>>,
    /// Held through each run (`execute`: its first-use submits, the main submit and the read), so
    /// runs on one device are one at a time even from several threads, as the scratch slots need;
    /// shared with the views too.
    pub(super) runs: Arc<Mutex<()>>,
    adapter: AdapterSummary,
    profile: DeviceProfile,
    /// The adapter's own subgroup width differs from the profile's
    /// ([`GpuOptions::encode_for_subgroup_width`]): subgroup kernels are encoded, never run.
    pub(super) subgroups_recorded_only: bool,
    timeout: Duration,
    plan_bytes: u64,
    /// How binding 0 of every kernel is declared and bound here.
    pub(super) params: ParamsBinding,
    /// Set by the device-lost callback; after loss every wgpu call is a silent no-op.
    lost: Arc<Mutex<Option<String>>>,
    /// Errors raised outside any error scope (wgpu's default handler would panic).
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// Opens the adapter chosen by WGPU_BACKEND / WGPU_ADAPTER_NAME, or the best available.
    pub fn new() -> Result<Gpu> {
        Gpu::with_options(GpuOptions::default())
    }

    /// Opens the adapter chosen from the environment with explicit options.
    pub fn with_options(options: GpuOptions) -> Result<Gpu> {
        let plan_bytes = match options.plan_bytes {
            Some(bytes) => bytes,
            None => crate::budget::gpu_bytes()?,
        };
        let adapter = super::adapters::choose_adapter()?;
        let summary = AdapterSummary::from_info(&adapter.get_info());
        let limits = options.limits.unwrap_or_else(|| adapter.limits());
        // Timestamps feed the benchmark harness; subgroups let kernels share loads across
        // SIMD lanes (the ops' *_subgroup kernels). Ask only for what the adapter has.
        let mut wanted = wgpu::Features::TIMESTAMP_QUERY;
        if options.subgroups {
            wanted |= wgpu::Features::SUBGROUP;
        }
        let features = adapter.features() & wanted;
        let descriptor = wgpu::DeviceDescriptor {
            label: Some("glimpse"),
            required_features: features,
            required_limits: limits.clone(),
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&descriptor))
            .map_err(|e| Error::Device { adapter: summary.name.clone(), reason: e.to_string() })?;

        let lost = Arc::new(Mutex::new(None));
        let lost_flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lost_flag.lock().expect("device-lost flag should not be poisoned") =
                Some(format!("{reason:?}: {message}"));
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().expect("error sink should not be poisoned").get_or_insert(e.to_string());
        }));

        let has_subgroups = features.contains(wgpu::Features::SUBGROUP);
        let own_width = fixed_subgroup_width(has_subgroups, summary.subgroup_sizes);
        let width = match options.encode_for_subgroup_width {
            None => own_width,
            Some(w) if has_subgroups && fixed_subgroup_width(true, (w, w)) == Some(w) => Some(w),
            Some(w) => {
                return Err(Error::Device {
                    adapter: summary.name.clone(),
                    reason: format!(
                        "cannot encode for {w}-lane subgroups: the subgroup kernels take one power-of-two width \
                         from {} to {} on a device with subgroup operations (this one: {})",
                        SUBGROUP_WIDTHS.start(),
                        SUBGROUP_WIDTHS.end(),
                        if has_subgroups { "has them" } else { "has none" }
                    ),
                })
            }
        };
        let profile = DeviceProfile::from_device(
            &summary.name,
            summary.is_cpu(),
            width,
            &limits,
            features.contains(wgpu::Features::TIMESTAMP_QUERY),
        );
        let params = options.params.unwrap_or_else(|| ParamsBinding::for_adapter(&summary.backend, &summary.driver));
        Ok(Gpu {
            device,
            queue,
            limits: limits.clone(),
            features,
            pipelines: Arc::default(),
            layouts: Arc::default(),
            compile_slots: Arc::default(),
            compiles: Arc::default(),
            scratch: Arc::default(),
            runs: Arc::default(),
            adapter: summary,
            subgroups_recorded_only: width != own_width,
            profile,
            timeout: options.timeout,
            plan_bytes,
            params,
            lost,
            uncaptured,
        })
    }

    /// The adapter this context runs on.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }

    /// What kernel choice needs to know about this device (`ops::choose` reads it).
    pub fn profile(&self) -> &DeviceProfile {
        &self.profile
    }

    /// How kernels receive their `Params` on this device.
    pub fn params_binding(&self) -> ParamsBinding {
        self.params
    }

    /// Most bytes one compiled plan may allocate on this device (checked before it allocates).
    pub fn plan_bytes(&self) -> u64 {
        self.plan_bytes
    }

    /// Largest buffer binding this device accepts, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size)
    }

    /// Most workgroups along one dispatch dimension.
    pub fn max_workgroups_per_dim(&self) -> u32 {
        self.limits.max_compute_workgroups_per_dimension
    }

    /// This device encoding as if it allowed only `limit` workgroups per dimension (at most its
    /// own): grids fold into y and z past `limit` ([`Gpu::grid_1d`]), so a correctness case
    /// reaches the shaders' folded path (`wid.x + wid.y * nwg.x`, the guarded tail) with small
    /// inputs. It shares the device, queue, compiled pipelines and error tracking, so tensors
    /// and dispatches pass freely between the two; a folded launch also runs on any WebGPU
    /// device. [`Gpu::destroy`] on either releases both.
    pub fn with_grid_limit(&self, limit: u32) -> Result<Gpu> {
        if limit == 0 {
            return Err(Error::invalid("grid limit", "must be at least 1 workgroup per dimension"));
        }
        let mut view = self.view();
        view.limits.max_compute_workgroups_per_dimension = limit.min(self.limits.max_compute_workgroups_per_dimension);
        Ok(view)
    }

    /// Another handle on this device sharing everything: the device, queue, caches, scratch, run
    /// lock and error tracking (what [`Gpu::with_grid_limit`] starts from, and what a compile
    /// thread holds).
    pub(super) fn view(&self) -> Gpu {
        Gpu {
            device: self.device.clone(),
            queue: self.queue.clone(),
            limits: self.limits.clone(),
            features: self.features,
            pipelines: self.pipelines.clone(),
            layouts: self.layouts.clone(),
            compile_slots: self.compile_slots.clone(),
            compiles: self.compiles.clone(),
            scratch: self.scratch.clone(),
            runs: self.runs.clone(),
            adapter: self.adapter.clone(),
            profile: self.profile.clone(),
            subgroups_recorded_only: self.subgroups_recorded_only,
            timeout: self.timeout,
            plan_bytes: self.plan_bytes,
            params: self.params,
            lost: self.lost.clone(),
            uncaptured: self.uncaptured.clone(),
        }
    }

    /// Key limits and features, as (name, value) rows for `glimpse info`.
    pub fn limit_rows(&self) -> Vec<(&'static str, String)> {
        let l = &self.limits;
        vec![
            ("max_storage_buffer_binding_size", l.max_storage_buffer_binding_size.to_string()),
            ("max_buffer_size", l.max_buffer_size.to_string()),
            ("max_storage_buffers_per_shader_stage", l.max_storage_buffers_per_shader_stage.to_string()),
            ("max_compute_workgroup_storage_size", l.max_compute_workgroup_storage_size.to_string()),
            ("max_compute_invocations_per_workgroup", l.max_compute_invocations_per_workgroup.to_string()),
            ("max_compute_workgroups_per_dimension", l.max_compute_workgroups_per_dimension.to_string()),
            ("plan memory budget (GLIMPSE_GPU_BYTES)", crate::budget::size(self.plan_bytes)),
            ("kernel parameters in", self.params.describe().to_string()),
            ("timestamp queries", self.has_timestamps().to_string()),
            (
                "subgroups",
                match (self.features.contains(wgpu::Features::SUBGROUP), self.adapter.subgroup_sizes) {
                    (true, (min, max)) if min == max => format!("{min} lanes"),
                    (true, (min, max)) => format!("{min} to {max} lanes"),
                    (false, _) => "no".to_string(),
                },
            ),
        ]
    }

    /// The subgroup width the `*_subgroup` kernels run with here (see [`DeviceProfile::subgroup_width`]).
    pub fn subgroup_size(&self) -> Option<u32> {
        self.profile.subgroup_width
    }

    /// Whether the device was opened with subgroup operations.
    pub fn has_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP)
    }

    /// Whether compute passes can carry GPU timestamps.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(wgpu::Features::TIMESTAMP_QUERY)
    }

    /// Releases the device now. Every later call fails with [`Error::DeviceLost`]
    /// instead of silently doing nothing.
    pub fn destroy(&self) {
        self.device.destroy();
        let _ = self.device.poll(wgpu::PollType::Poll);
        self.lost.lock().expect("device-lost flag should not be poisoned").get_or_insert("destroyed".into());
    }

    /// Fails if the device was lost: reads after loss would return garbage.
    pub(super) fn check_alive(&self) -> Result<()> {
        match self.lost.lock().expect("device-lost flag should not be poisoned").as_ref() {
            Some(reason) => Err(Error::DeviceLost(reason.clone())),
            None => Ok(()),
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what
    /// they caught (or what escaped to the uncaptured handler) into an error.
    pub(super) fn scoped<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        self.check_alive()?;
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let validation = pollster::block_on(validation.pop());
        let oom = pollster::block_on(oom.pop());
        if oom.is_some() {
            return Err(Error::OutOfMemory { context: context.to_string() });
        }
        if let Some(e) = validation {
            return Err(Error::Gpu { context: context.to_string(), msg: e.to_string() });
        }
        if let Some(msg) = self.uncaptured.lock().expect("error sink should not be poisoned").take() {
            return Err(Error::Gpu { context: context.to_string(), msg });
        }
        self.check_alive()?;
        Ok(value)
    }

    /// Blocks until the queue is idle, or fails after the configured timeout.
    pub(super) fn wait(&self, context: &str) -> Result<()> {
        let start = std::time::Instant::now();
        match self.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(self.timeout) }) {
            Ok(_) => self.check_alive(),
            // The time measured, not the limit: a driver may return well after it.
            Err(wgpu::PollError::Timeout) => Err(Error::Timeout {
                context: context.to_string(),
                waited: start.elapsed().as_secs_f64(),
                limit: self.timeout.as_secs_f64(),
            }),
            Err(e) => Err(Error::Gpu { context: context.to_string(), msg: e.to_string() }),
        }
    }
}
