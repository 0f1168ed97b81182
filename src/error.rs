//! The library's one error type.

/// Everything that can go wrong in glimpse. Anything a user can cause (a bad
/// shape, argument or file) names the op, the tensor and the shapes.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// No adapter matched (or none exists on this machine).
    #[error("no GPU adapter found: {0}")]
    NoAdapter(String),
    /// An environment variable glimpse (or wgpu through it) reads holds a value it cannot use.
    #[error("{var}: {msg}")]
    Environment { var: String, msg: String },
    /// The adapter refused to open a device.
    #[error("could not open a device on adapter '{adapter}': {reason}")]
    Device { adapter: String, reason: String },
    /// An op was given inputs or arguments it cannot work with.
    #[error("{op}: {msg}")]
    Invalid { op: String, msg: String },
    /// A tensor needs more memory than one binding of this device may hold.
    #[error("{op}: {what} needs {bytes} bytes, over this device's limit of {limit} bytes per buffer binding")]
    TooLarge { op: String, what: String, bytes: u64, limit: u64 },
    /// A file could not be read, parsed or written.
    #[error("{path}: {msg}")]
    File { path: String, msg: String },
    /// wgpu reported a validation or internal error.
    #[error("GPU error during {context}: {msg}")]
    Gpu { context: String, msg: String },
    /// The device ran out of memory.
    #[error("GPU out of memory during {context}")]
    OutOfMemory { context: String },
    /// The device was lost; every later call would silently do nothing.
    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),
    /// The GPU did not finish in time: `waited` is the time measured, `limit` the configured one.
    #[error("the GPU did not finish {context}: gave up after {waited:.1} s (the limit is {limit:.1} s per wait)")]
    Timeout { context: String, waited: f64, limit: f64 },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An invalid-input error for `op`.
    pub fn invalid(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid { op: op.into(), msg: msg.into() }
    }
}

/// Returns early with [`Error::Invalid`] unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $op:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::Error::invalid($op, format!($($fmt)+)));
        }
    };
}
