//! GPU tensors, the one upload path and the one readback path.

use super::{Dispatch, Gpu};
use crate::{Error, Result, Shape, Tensor};
use wgpu::util::DeviceExt;

/// A tensor resident on the GPU: one storage buffer holding `shape` as
/// contiguous row-major f32.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub(super) buffer: wgpu::Buffer,
    shape: Shape,
    /// Uploaded by [`Gpu::upload_constant`]: nothing writes it again, so what is computed from it
    /// alone may be computed once ([`Gpu::derived`]).
    constant: bool,
}

impl GpuTensor {
    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The same buffer viewed under another shape with as many elements
    /// (e.g. N x C x H x W as N x C x HW for a GEMM). No copy.
    pub fn reshape(&self, dims: &[usize]) -> Result<GpuTensor> {
        let shape = Shape::new(dims)?;
        if shape.numel() != self.shape.numel() {
            return Err(Error::invalid("reshape", format!("cannot view {} as {shape}", self.shape)));
        }
        Ok(GpuTensor { buffer: self.buffer.clone(), shape, constant: self.constant })
    }

    /// Whether nothing writes this tensor after its upload ([`Gpu::upload_constant`]).
    pub fn is_constant(&self) -> bool {
        self.constant
    }

    /// Whether both are views of one buffer.
    pub fn shares_buffer(&self, other: &GpuTensor) -> bool {
        self.buffer == other.buffer
    }

    /// Bytes the underlying buffer holds (at least the shape's size).
    pub fn capacity(&self) -> u64 {
        self.buffer.size()
    }

    /// The same buffer holding a tensor of another shape that fits in it: how a
    /// plan reuses a dead intermediate's memory.
    pub fn reuse_as(&self, shape: &Shape) -> Result<GpuTensor> {
        if shape.bytes() > self.capacity() {
            return Err(Error::invalid("reuse", format!("{shape} does not fit in a {} byte buffer", self.capacity())));
        }
        Ok(GpuTensor { buffer: self.buffer.clone(), shape: shape.clone(), constant: self.constant })
    }
}

/// Every tensor buffer holds a whole number of 16-byte vec4s (at least one): a kernel may view any
/// tensor as `array<vec4<f32>>` (conv2d_gemm binds the weights both ways) without a binding
/// smaller than one element. The padding is never read as data.
const BUFFER_ALIGN: u64 = 16;

fn buffer_size(shape: &Shape) -> u64 {
    shape.bytes().next_multiple_of(BUFFER_ALIGN).max(BUFFER_ALIGN)
}

impl GpuTensor {
    /// Bytes of the buffer [`Gpu::empty`] or [`Gpu::upload`] allocates for `shape` (what a
    /// plan adds up before it allocates anything).
    pub fn buffer_bytes(shape: &Shape) -> u64 {
        buffer_size(shape)
    }
}

/// Fails for a constant tensor ([`Gpu::upload_constant`]): what was computed once from it would
/// go stale.
fn writable(context: &str, tensor: &GpuTensor) -> Result<()> {
    if tensor.constant {
        return Err(Error::invalid(context, format!("the GPU tensor {} is a constant", tensor.shape())));
    }
    Ok(())
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    /// Fails unless a tensor of `shape` fits in one binding of this device.
    pub fn check_fits(&self, op: &str, what: &str, shape: &Shape) -> Result<()> {
        let limit = self.max_binding_bytes();
        if buffer_size(shape) > limit {
            return Err(Error::TooLarge {
                op: op.into(),
                what: format!("{what} {shape}"),
                bytes: shape.bytes(),
                limit,
            });
        }
        Ok(())
    }

    /// Copies a CPU tensor to a new GPU tensor.
    pub fn upload(&self, tensor: &Tensor) -> Result<GpuTensor> {
        self.check_fits("upload", "tensor", tensor.shape())?;
        let data: &[u8] = bytemuck::cast_slice(tensor.data());
        let contents: std::borrow::Cow<[u8]> = if data.len() as u64 == buffer_size(tensor.shape()) {
            data.into()
        } else {
            let mut padded = data.to_vec();
            padded.resize(buffer_size(tensor.shape()) as usize, 0);
            padded.into()
        };
        let buffer = self.scoped("upload", || {
            self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tensor"),
                contents: &contents,
                usage: STORAGE,
            })
        })?;
        Ok(GpuTensor { buffer, shape: tensor.shape().clone(), constant: false })
    }

    /// Copies a CPU tensor that nothing will write again (a plan's weights) to a new GPU tensor
    /// marked constant: launches computing from constants alone may then run once
    /// ([`Gpu::derived`]). Writing it later ([`Gpu::write`]) is refused.
    pub fn upload_constant(&self, tensor: &Tensor) -> Result<GpuTensor> {
        Ok(GpuTensor { constant: true, ..self.upload(tensor)? })
    }

    /// A new GPU tensor with unspecified contents (zeroed by wgpu).
    pub fn empty(&self, shape: &Shape) -> Result<GpuTensor> {
        self.check_fits("allocate", "tensor", shape)?;
        let buffer = self.scoped("allocate", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size: buffer_size(shape),
                usage: STORAGE,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuTensor { buffer, shape: shape.clone(), constant: false })
    }

    /// Overwrites every element with `value` (tests poison outputs with NaN so
    /// an element a kernel forgot to write cannot pass).
    pub fn fill(&self, tensor: &GpuTensor, value: f32) -> Result<()> {
        writable("fill", tensor)?;
        let data = vec![value; tensor.shape().numel()];
        self.scoped("fill", || self.queue.write_buffer(&tensor.buffer, 0, bytemuck::cast_slice(&data)))?;
        Ok(())
    }

    /// Copies new contents into an existing GPU tensor of the same shape.
    pub fn write(&self, tensor: &GpuTensor, data: &Tensor) -> Result<()> {
        writable("write", tensor)?;
        if tensor.shape() != data.shape() {
            return Err(Error::invalid(
                "write",
                format!("cannot write {} into a GPU tensor of {}", data.shape(), tensor.shape()),
            ));
        }
        self.scoped("write", || self.queue.write_buffer(&tensor.buffer, 0, bytemuck::cast_slice(data.data())))
    }

    /// Copies a GPU tensor back to the CPU, waiting for all submitted work.
    pub fn read(&self, tensor: &GpuTensor) -> Result<Tensor> {
        Ok(self.run(&[], &[tensor])?.remove(0))
    }

    /// Runs `dispatches` and reads `outputs` back with one command buffer, one
    /// submit and one mapping: what a plan does once per run.
    pub fn run(&self, dispatches: &[Dispatch], outputs: &[&GpuTensor]) -> Result<Vec<Tensor>> {
        let reads: Vec<_> = outputs.iter().map(|t| (&t.buffer, t.shape().bytes())).collect();
        let bytes = self.execute(dispatches, None, &reads, "run")?;
        outputs
            .iter()
            .zip(bytes)
            .map(|(t, b)| Tensor::new(t.shape().clone(), bytemuck::pod_collect_to_vec(&b)))
            .collect()
    }

    /// The one path to the GPU and back: records `dispatches` (with timestamps
    /// when `timing` is given), copies each of `reads` (buffer, byte count, a
    /// multiple of 4) into one staging buffer, submits once, waits, maps once.
    pub(super) fn execute(
        &self,
        dispatches: &[Dispatch],
        timing: Option<(&wgpu::QuerySet, &wgpu::Buffer)>,
        reads: &[(&wgpu::Buffer, u64)],
        context: &str,
    ) -> Result<Vec<Vec<u8>>> {
        if self.subgroups_recorded_only {
            if let Some(d) = dispatches.iter().find(|d| d.recipe().kernel.needs_subgroups()) {
                return Err(Error::invalid(
                    d.label(),
                    format!(
                        "encoded for {}-lane subgroups on an adapter whose subgroups differ ({}): recorded, not run",
                        self.profile().subgroup_width.unwrap_or(0),
                        self.adapter()
                    ),
                ));
            }
        }
        // One run at a time per device, first-use submits included: an op's launches share the
        // device's scratch slots (gpu/scratch.rs), so another thread's run must not come between them.
        // The lock guards no data: a panic elsewhere while holding it leaves nothing to repair.
        let _one_run = self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // A pipeline's first dispatch runs alone, timed (timed submits keep their
        // queries in one pass: the benchmark runs a plan untimed first).
        let dispatches = if timing.is_none() { self.run_first_uses(dispatches, context)? } else { dispatches };
        // Each read starts on an 8-byte boundary inside the staging buffer.
        let offsets: Vec<u64> = reads
            .iter()
            .scan(0u64, |at, (_, size)| {
                let start = *at;
                *at += size.next_multiple_of(8);
                Some(start)
            })
            .collect();
        let total = reads.iter().map(|(_, s)| s.next_multiple_of(8)).sum::<u64>();
        let pipelines = super::pipelines::ready(dispatches)?;
        let staging = self.scoped(context, || {
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("glimpse") });
            self.record(&mut encoder, dispatches, &pipelines, timing);
            let staging = (total > 0).then(|| {
                let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size: total,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                for ((buffer, size), offset) in reads.iter().zip(&offsets) {
                    encoder.copy_buffer_to_buffer(buffer, 0, &staging, *offset, *size);
                }
                staging
            });
            self.queue.submit([encoder.finish()]);
            staging
        })?;
        let Some(staging) = staging else {
            self.wait(context)?;
            return Ok(Vec::new());
        };
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
            // The receiver outlives this callback: it is awaited below.
            let _ = sender.send(result);
        });
        self.wait(context)?;
        let gpu_error = |msg: String| Error::Gpu { context: context.to_string(), msg };
        match pollster::block_on(receiver.receive()) {
            Some(Ok(())) => {}
            Some(Err(e)) => return Err(gpu_error(e.to_string())),
            None => return Err(gpu_error("the mapping never completed".into())),
        }
        let all = staging.slice(..).get_mapped_range().map_err(|e| gpu_error(e.to_string()))?.to_vec();
        staging.unmap();
        self.check_alive()?;
        Ok(reads.iter().zip(&offsets).map(|((_, size), &o)| all[o as usize..(o + size) as usize].to_vec()).collect())
    }
}
