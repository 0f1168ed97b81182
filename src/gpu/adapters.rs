//! Describing adapters for `glimpse info` and the benchmark reports.

use std::fmt;

/// What a user needs to know about one adapter.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// Adapter name as the driver reports it (e.g. "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// Backend: Vulkan, Gl, Metal, Dx12.
    pub backend: String,
    /// Driver name and version.
    pub driver: String,
    /// Discrete, integrated, virtual or CPU.
    pub device_type: String,
    /// Smallest and largest subgroup size the adapter reports.
    pub subgroup_sizes: (u32, u32),
}

impl AdapterSummary {
    pub(crate) fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let driver = match (info.driver.is_empty(), info.driver_info.is_empty()) {
            (false, false) => format!("{} {}", info.driver, info.driver_info),
            (false, true) => info.driver.clone(),
            (true, false) => info.driver_info.clone(),
            (true, true) => "unknown".to_string(),
        };
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            driver,
            device_type: format!("{:?}", info.device_type),
            subgroup_sizes: (info.subgroup_min_size, info.subgroup_max_size),
        }
    }

    /// True for software adapters (lavapipe, llvmpipe, WARP): a correctness
    /// device, whose timings say nothing about GPU speed.
    pub fn is_cpu(&self) -> bool {
        self.device_type == "Cpu"
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}, driver: {})", self.name, self.backend, self.device_type, self.driver)
    }
}

/// Every adapter wgpu finds with the backends allowed by WGPU_BACKEND (all when unset).
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::all());
    pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info()))
        .collect()
}
