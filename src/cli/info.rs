//! `glimpse info`: adapters, the chosen one, its limits.

use anyhow::{Context, Result};
use glimpse::gpu::{list_adapters, Gpu};

/// Prints every adapter, the chosen one and its key limits.
pub fn info() -> Result<()> {
    let adapters = list_adapters()?;
    println!("adapters found by wgpu ({}):", adapters.len());
    for a in &adapters {
        println!("  {a}");
    }
    let gpu = Gpu::new().context("opening the default adapter (WGPU_BACKEND / WGPU_ADAPTER_NAME choose another)")?;
    println!("chosen: {}", gpu.adapter());
    if gpu.adapter().is_cpu() {
        println!("  (a CPU adapter: correct results, but its timings say nothing about GPU speed)");
    }
    if let Some(advice) = gpu.adapter().advice() {
        println!("  note: {advice}");
    }
    for (name, value) in gpu.limit_rows() {
        println!("  {name:<40} {value}");
    }
    Ok(())
}
