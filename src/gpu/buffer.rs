//! GPU tensors, the one upload path and the one readback path.

use super::Gpu;
use crate::{Error, Result, Shape, Tensor};
use wgpu::util::DeviceExt;

/// A tensor resident on the GPU: one storage buffer holding `shape` as
/// contiguous row-major f32.
#[derive(Clone, Debug)]
pub struct GpuTensor {
    pub(super) buffer: wgpu::Buffer,
    shape: Shape,
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
        Ok(GpuTensor { buffer: self.buffer.clone(), shape })
    }
}

const STORAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl Gpu {
    /// Fails unless a tensor of `shape` fits in one binding of this device.
    pub fn check_fits(&self, op: &str, what: &str, shape: &Shape) -> Result<()> {
        let limit = self.max_binding_bytes();
        if shape.bytes() > limit {
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
        let buffer = self.scoped("upload", || {
            self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tensor"),
                contents: bytemuck::cast_slice(tensor.data()),
                usage: STORAGE,
            })
        })?;
        Ok(GpuTensor { buffer, shape: tensor.shape().clone() })
    }

    /// A new GPU tensor with unspecified contents (zeroed by wgpu).
    pub fn empty(&self, shape: &Shape) -> Result<GpuTensor> {
        self.check_fits("allocate", "tensor", shape)?;
        let buffer = self.scoped("allocate", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tensor"),
                size: shape.bytes(),
                usage: STORAGE,
                mapped_at_creation: false,
            })
        })?;
        Ok(GpuTensor { buffer, shape: shape.clone() })
    }

    /// Overwrites every element with `value` (tests poison outputs with NaN so
    /// an element a kernel forgot to write cannot pass).
    pub fn fill(&self, tensor: &GpuTensor, value: f32) -> Result<()> {
        let data = vec![value; tensor.shape().numel()];
        self.scoped("fill", || self.queue.write_buffer(&tensor.buffer, 0, bytemuck::cast_slice(&data)))?;
        Ok(())
    }

    /// Copies a GPU tensor back to the CPU, waiting for all submitted work.
    pub fn read(&self, tensor: &GpuTensor) -> Result<Tensor> {
        let bytes = self.read_bytes(&tensor.buffer, tensor.shape().bytes(), "readback")?;
        Tensor::new(tensor.shape().clone(), bytemuck::pod_collect_to_vec(&bytes))
    }

    /// The one readback path: copies `size` bytes (a multiple of 4) of `buffer`
    /// into a mappable staging buffer, waits, and returns them.
    pub(super) fn read_bytes(&self, buffer: &wgpu::Buffer, size: u64, context: &str) -> Result<Vec<u8>> {
        let staging = self.scoped(context, || {
            let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut encoder = self.device.create_command_encoder(&Default::default());
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
            self.queue.submit([encoder.finish()]);
            staging
        })?;
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
        let bytes = staging.slice(..).get_mapped_range().map_err(|e| gpu_error(e.to_string()))?.to_vec();
        staging.unmap();
        self.check_alive()?;
        Ok(bytes)
    }
}
