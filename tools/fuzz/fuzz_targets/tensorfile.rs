//! The .safetensors reader on arbitrary bytes: an error or a file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = glimpse::tensorfile::TensorFile::parse(data) {
        // Whatever loads is f32, finite and of a valid shape.
        for t in file.tensors.values() {
            assert!(t.data().iter().all(|v| v.is_finite()));
            assert_eq!(t.data().len(), t.shape().numel());
        }
    }
});
