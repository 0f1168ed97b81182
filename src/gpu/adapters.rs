//! Describing adapters for `glimpse info` and the benchmark reports.

use crate::{Error, Result};
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

    /// What a user should know before a first run on this adapter, if anything: OpenGL on
    /// the CPU (llvmpipe) compiles every shader in its driver, minutes for the first run,
    /// where Mesa's Vulkan driver on the CPU (lavapipe) takes seconds.
    pub fn advice(&self) -> Option<String> {
        (self.backend == "Gl" && self.is_cpu()).then(|| {
            format!(
                "{} is OpenGL on the CPU. Mesa's Vulkan driver, lavapipe, is the CPU driver glimpse is \
                 tested on (Debian/Ubuntu: apt-get install mesa-vulkan-drivers; it is used when \
                 present), and --device cpu needs no driver at all.",
                self.name
            )
        })
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}, {}, driver: {})", self.name, self.backend, self.device_type, self.driver)
    }
}

/// WGPU_BACKEND's names, as wgpu spells them (`wgpu::Backends::from_comma_list`).
const BACKEND_NAMES: &[(&str, wgpu::Backends)] = &[
    ("vulkan", wgpu::Backends::VULKAN),
    ("vk", wgpu::Backends::VULKAN),
    ("gl", wgpu::Backends::GL),
    ("gles", wgpu::Backends::GL),
    ("opengl", wgpu::Backends::GL),
    ("metal", wgpu::Backends::METAL),
    ("mtl", wgpu::Backends::METAL),
    ("dx12", wgpu::Backends::DX12),
    ("d3d12", wgpu::Backends::DX12),
    ("webgpu", wgpu::Backends::BROWSER_WEBGPU),
    ("noop", wgpu::Backends::NOOP),
];

/// The backends a comma-separated WGPU_BACKEND value names. wgpu itself only logs an
/// unknown name and drops it (`vulkn` would silently mean "no backend"), so a name it
/// does not know is an error here listing the valid ones.
pub fn parse_backends(value: &str) -> Result<wgpu::Backends> {
    let mut backends = wgpu::Backends::empty();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match BACKEND_NAMES.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)) {
            Some((_, b)) => backends |= *b,
            None => {
                let valid: Vec<&str> = BACKEND_NAMES.iter().map(|(n, _)| *n).collect();
                return Err(Error::Environment {
                    var: "WGPU_BACKEND".into(),
                    msg: format!("unknown backend '{name}'; valid names (comma-separated): {}", valid.join(", ")),
                });
            }
        }
    }
    Ok(backends)
}

/// The backends WGPU_BACKEND allows: all when it is unset or blank, an error when it names
/// an unknown backend.
fn backends_from_env() -> Result<wgpu::Backends> {
    match std::env::var_os("WGPU_BACKEND") {
        Some(v) if !v.to_string_lossy().trim().is_empty() => parse_backends(&v.to_string_lossy()),
        _ => Ok(wgpu::Backends::all()),
    }
}

/// A wgpu instance for the backends WGPU_BACKEND allows, and those backends.
fn instance() -> Result<(wgpu::Instance, wgpu::Backends)> {
    let backends = backends_from_env()?;
    let mut descriptor = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    descriptor.backends = backends;
    Ok((wgpu::Instance::new(descriptor), backends))
}

/// Every adapter wgpu finds with the backends allowed by WGPU_BACKEND (all when unset).
pub fn list_adapters() -> Result<Vec<AdapterSummary>> {
    let (instance, backends) = instance()?;
    Ok(pollster::block_on(instance.enumerate_adapters(backends))
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info()))
        .collect())
}

/// The adapter glimpse runs on: the first whose name contains WGPU_ADAPTER_NAME
/// (case-insensitive) when that is set, else wgpu's choice for WGPU_POWER_PREF.
///
/// wgpu's `initialize_adapter_from_env_or_default` panics when the name matches
/// nothing and ignores WGPU_BACKEND while matching, so the choice is made here.
pub(crate) fn choose_adapter() -> Result<wgpu::Adapter> {
    let (instance, backends) = instance()?;
    let wanted = std::env::var_os("WGPU_ADAPTER_NAME").map(|v| v.to_string_lossy().trim().to_string());
    match wanted.filter(|w| !w.is_empty()) {
        Some(wanted) => {
            let lower = wanted.to_lowercase();
            let adapters = pollster::block_on(instance.enumerate_adapters(backends));
            let names: Vec<String> =
                adapters.iter().map(|a| AdapterSummary::from_info(&a.get_info()).to_string()).collect();
            adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&lower)).ok_or_else(|| {
                let found = if names.is_empty() { "none".to_string() } else { names.join("; ") };
                Error::NoAdapter(format!(
                    "WGPU_ADAPTER_NAME='{wanted}' is not part of any adapter's name; the adapters found are: {found} \
                     (unset WGPU_ADAPTER_NAME, or give part of one of these names)"
                ))
            })
        }
        None => {
            let options = wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
                ..Default::default()
            };
            pollster::block_on(instance.request_adapter(&options)).map_err(|e| {
                Error::NoAdapter(format!(
                    "{e}. Without a GPU, `glimpse run`, `map`, `classify` and `demo` work with --device cpu; \
                     on Linux, Mesa's lavapipe (apt-get install mesa-vulkan-drivers) is a Vulkan adapter on the \
                     CPU; WGPU_BACKEND and WGPU_ADAPTER_NAME select an adapter"
                ))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_parse_like_wgpu_and_unknown_ones_are_errors() {
        assert_eq!(parse_backends("vulkan").unwrap(), wgpu::Backends::VULKAN);
        assert_eq!(parse_backends(" GL, vk ").unwrap(), wgpu::Backends::GL | wgpu::Backends::VULKAN);
        for name in ["vulkan", "gl", "metal", "dx12", "webgpu"] {
            assert_eq!(parse_backends(name).unwrap(), wgpu::Backends::from_comma_list(name), "{name}");
        }
        let err = parse_backends("vulkan,vulkn").unwrap_err().to_string();
        assert!(err.contains("WGPU_BACKEND") && err.contains("'vulkn'"), "{err}");
        for valid in ["vulkan", "gl", "metal", "dx12"] {
            assert!(err.contains(valid), "{err}");
        }
    }

    #[test]
    fn opengl_on_the_cpu_names_the_faster_driver_and_others_get_no_advice() {
        let adapter = |backend: &str, device_type: &str| AdapterSummary {
            name: "llvmpipe".into(),
            backend: backend.into(),
            driver: String::new(),
            device_type: device_type.into(),
            subgroup_sizes: (0, 0),
        };
        let advice = adapter("Gl", "Cpu").advice().expect("GL on the CPU gets advice");
        assert!(advice.contains("mesa-vulkan-drivers") && advice.contains("--device cpu"), "{advice}");
        assert!(!advice.contains("  "), "{advice}");
        assert!(adapter("Vulkan", "Cpu").advice().is_none() && adapter("Gl", "DiscreteGpu").advice().is_none());
    }
}
