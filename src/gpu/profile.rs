//! The device profile: what choosing kernels needs to know about a device, read once from the
//! adapter, and describable without one (so kernel choice is testable on any machine).

/// A device as kernel choice sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    /// A short description for tables and errors ("lavapipe", the adapter's name).
    pub name: String,
    /// A software device running on the CPU (lavapipe, llvmpipe, SwiftShader, WARP): one wide SIMD
    /// thread per subgroup, where every storage load is a loop over the lanes and barriers switch
    /// coroutines, so its best kernels differ from a GPU's.
    pub cpu: bool,
    /// Lanes per subgroup where the device has subgroup operations with one fixed power-of-two
    /// width from 4 to 64 (the `*_subgroup` kernels' layouts derive from it); `None` where it has
    /// none, or a width that varies between dispatches (the kernels would not know their layout).
    pub subgroup_width: Option<u32>,
    /// Bytes of workgroup memory one workgroup may use.
    pub max_workgroup_storage: u32,
    /// Invocations one workgroup may hold.
    pub max_invocations_per_workgroup: u32,
    /// Storage buffers one shader stage may bind.
    pub max_storage_buffers: u32,
    /// Whether compute passes can carry GPU timestamps.
    pub timestamps: bool,
    /// Threads a CPU device runs workgroups on (lavapipe: `LP_NUM_THREADS` where set, else one per
    /// host core; taken as the same for the other CPU devices); 1 on GPUs, where nothing reads it.
    /// choose::matmul_tile keeps at least this many workgroups where it can.
    pub cpu_threads: usize,
}

/// The threads a CPU device on this host runs workgroups on: `LP_NUM_THREADS` where it holds a
/// number (lavapipe and llvmpipe read it), else the host's available parallelism.
pub fn host_cpu_threads() -> usize {
    let from_env = std::env::var("LP_NUM_THREADS").ok().and_then(|v| v.trim().parse::<usize>().ok());
    from_env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1)
}

/// The subgroup widths the `*_subgroup` kernels are written for.
pub const SUBGROUP_WIDTHS: std::ops::RangeInclusive<u32> = 4..=64;

/// The fixed width a device with subgroup operations and subgroup sizes `min ..= max` gives the
/// subgroup kernels, if any.
pub fn fixed_subgroup_width(has_subgroups: bool, (min, max): (u32, u32)) -> Option<u32> {
    (has_subgroups && min == max && min.is_power_of_two() && SUBGROUP_WIDTHS.contains(&min)).then_some(min)
}

impl DeviceProfile {
    /// The profile of a device with `limits` (the ones the device was opened with).
    pub(super) fn from_device(
        name: &str,
        cpu: bool,
        subgroup_width: Option<u32>,
        limits: &wgpu::Limits,
        timestamps: bool,
    ) -> DeviceProfile {
        DeviceProfile {
            name: name.to_string(),
            cpu,
            subgroup_width,
            max_workgroup_storage: limits.max_compute_workgroup_storage_size,
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_storage_buffers: limits.max_storage_buffers_per_shader_stage,
            timestamps,
            cpu_threads: if cpu { host_cpu_threads() } else { 1 },
        }
    }

    /// A described device with WebGPU's default limits (16 KiB workgroup memory, 256 invocations,
    /// 8 storage buffers) and, if a CPU device, 2 threads (this repository's CI host): what the
    /// kernel-choice table test lists.
    pub fn described(name: &str, cpu: bool, subgroup_width: Option<u32>) -> DeviceProfile {
        DeviceProfile {
            name: name.to_string(),
            cpu,
            subgroup_width,
            max_workgroup_storage: 16384,
            max_invocations_per_workgroup: 256,
            max_storage_buffers: 8,
            timestamps: false,
            cpu_threads: if cpu { 2 } else { 1 },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixed_subgroup_width;

    #[test]
    fn only_fixed_power_of_two_widths_from_4_to_64_count() {
        assert_eq!(fixed_subgroup_width(true, (8, 8)), Some(8)); // lavapipe on AVX2
        assert_eq!(fixed_subgroup_width(true, (4, 4)), Some(4)); // SwiftShader
        assert_eq!(fixed_subgroup_width(true, (32, 32)), Some(32)); // NVIDIA
        assert_eq!(fixed_subgroup_width(true, (64, 64)), Some(64));
        assert_eq!(fixed_subgroup_width(true, (32, 64)), None); // AMD RDNA: wave32 or wave64
        assert_eq!(fixed_subgroup_width(true, (8, 32)), None); // Intel: chosen per pipeline
        assert_eq!(fixed_subgroup_width(true, (128, 128)), None);
        assert_eq!(fixed_subgroup_width(true, (2, 2)), None);
        assert_eq!(fixed_subgroup_width(true, (12, 12)), None);
        assert_eq!(fixed_subgroup_width(false, (8, 8)), None);
    }
}
