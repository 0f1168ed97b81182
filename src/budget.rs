//! The memory budget, in one place: every allocation whose size a user's input
//! decides (a photo's pixels, a model's input, a batch, a picture drawn, the
//! CPU reference's tensors) is checked against these limits before it is made,
//! so a bad file or argument ends in an error naming the bytes needed and the
//! budget, never in gigabytes allocated or an out-of-memory kill.

use crate::{Error, Result};

/// Largest width or height of a photo decoded, and of a model's input.
pub const MAX_SIDE: u32 = 8192;
/// Most bytes a decoder may allocate for one photo.
pub const DECODE_BYTES: u64 = 256 << 20;
/// Most bytes of one picture drawn (an overlay or a contact sheet, RGB8).
pub const PICTURE_BYTES: u64 = 64 << 20;
/// Most host bytes the tensors of one run may take: every tensor the CPU
/// reference keeps while it runs a graph, or one batch of photos as inputs.
pub const HOST_BYTES: u64 = 4 << 30;

/// Most GPU bytes one compiled plan may take: its weights, inputs, intermediates (after
/// reuse) and outputs, all allocated when the plan is compiled. wgpu reports no device memory
/// size (only per-buffer limits), so this is a fixed default that fits the GPUs of the last
/// decade and, on CPU adapters (lavapipe, llvmpipe), equals [`HOST_BYTES`]; the environment
/// variable [`GPU_BYTES_VAR`] sets another.
pub const GPU_BYTES: u64 = 4 << 30;
/// The environment variable that sets the GPU budget: bytes, or a number with K, M, G or T
/// (powers of 1024), e.g. `GLIMPSE_GPU_BYTES=12G` on a 16 GB card.
pub const GPU_BYTES_VAR: &str = "GLIMPSE_GPU_BYTES";

/// The GPU budget: [`GPU_BYTES_VAR`] when set, else [`GPU_BYTES`]. A value that is not a
/// positive size is an error naming the variable.
pub fn gpu_bytes() -> Result<u64> {
    let Ok(value) = std::env::var(GPU_BYTES_VAR) else {
        return Ok(GPU_BYTES);
    };
    parse_bytes(&value).filter(|&b| b > 0).ok_or_else(|| {
        Error::invalid(
            "memory budget",
            format!("{GPU_BYTES_VAR}={value:?} is not a size: give bytes or a number with K, M, G or T, e.g. 12G"),
        )
    })
}

/// "4096", "512M", "1.5G", "2 GiB" as bytes (K, M, G, T are powers of 1024); None otherwise.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let shift = match unit.trim().to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Fails when `what` needs more than `budget` bytes, naming both.
pub fn check(what: &str, bytes: u64, budget: u64) -> Result<()> {
    if bytes <= budget {
        return Ok(());
    }
    Err(Error::invalid("memory budget", over_budget(what, bytes, budget)))
}

/// [`check`] for a GPU plan of `weight_bytes`, `activation_bytes` (inputs, intermediates,
/// outputs) and `scratch_bytes` (the device's scratch its kernels bind) against the GPU budget,
/// saying how to raise it.
pub fn check_gpu_plan(weight_bytes: u64, activation_bytes: u64, scratch_bytes: u64, budget: u64) -> Result<()> {
    let bytes = weight_bytes.saturating_add(activation_bytes).saturating_add(scratch_bytes);
    if bytes <= budget {
        return Ok(());
    }
    let mut what = format!(
        "the GPU plan ({} of weights, {} of inputs, intermediates and outputs",
        size(weight_bytes),
        size(activation_bytes)
    );
    if scratch_bytes > 0 {
        what += &format!(", {} of kernel scratch", size(scratch_bytes));
    }
    what += ")";
    Err(Error::invalid(
        "memory budget",
        format!(
            "{}; wgpu does not report the device's memory: set {GPU_BYTES_VAR}=SIZE (e.g. 12G) to allow \
             more, or use a smaller batch or input",
            over_budget(&what, bytes, budget)
        ),
    ))
}

fn over_budget(what: &str, bytes: u64, budget: u64) -> String {
    format!("{what} needs {}, more than the {} glimpse allows for it", size(bytes), size(budget))
}

/// Bytes of `elements` f32 values, saturating (a product of user sizes can overflow).
pub fn f32_bytes(elements: &[usize]) -> u64 {
    elements.iter().fold(4u64, |acc, &d| acc.saturating_mul(d as u64))
}

/// A byte count for people: "9.1 GiB", "300 MiB", "512 bytes".
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_budget_names_both_sizes_and_products_saturate() {
        check("x", HOST_BYTES, HOST_BYTES).unwrap();
        let e = check("the CPU reference for 3 x 8192 x 8192", 9 << 30, HOST_BYTES).unwrap_err().to_string();
        assert!(e.contains("needs 9.0 GiB, more than the 4.0 GiB"), "{e}");
        assert_eq!(f32_bytes(&[3, 8192, 8192]), 805_306_368);
        assert_eq!(f32_bytes(&[usize::MAX, 4]), u64::MAX);
        assert_eq!(size(300 << 20), "300 MiB");
        check_gpu_plan(1 << 30, 2 << 30, 1 << 30, GPU_BYTES).unwrap();
        let e = check_gpu_plan(1 << 30, 4 << 30, 0, GPU_BYTES).unwrap_err().to_string();
        assert!(e.contains("(1.0 GiB of weights, 4.0 GiB of inputs, intermediates and outputs) needs 5.0 GiB"), "{e}");
        let e = check_gpu_plan(1 << 30, 3 << 30, 1 << 30, GPU_BYTES).unwrap_err().to_string();
        assert!(e.contains("outputs, 1.0 GiB of kernel scratch) needs 5.0 GiB"), "{e}");
        assert!(e.contains("set GLIMPSE_GPU_BYTES=SIZE"), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_bytes("4096"), Some(4096));
        assert_eq!(parse_bytes("512M"), Some(512 << 20));
        assert_eq!(parse_bytes("1.5G"), Some(3 << 29));
        assert_eq!(parse_bytes("2 GiB"), Some(2 << 30));
        assert_eq!(parse_bytes("12gb"), Some(12 << 30));
        for bad in ["", "lots", "G", "-1G", "1X", "1e400"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }
}
