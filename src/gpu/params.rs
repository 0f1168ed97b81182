//! How kernels receive their `Params`: a uniform buffer everywhere but on lavapipe, where the
//! same bytes are bound as a read-only storage buffer, because lavapipe compiles a shader anew
//! for the values of its uniforms.
//!
//! Every shader declares its parameters with one line, [`PARAMS_UNIFORM`], and has one entry
//! point, `fn main(` (tests/shaders.rs holds every kernel to both). That is what browsers and
//! GPU drivers compile: a uniform is the usual, cached path on GPUs, and it leaves WebGPU's
//! default of 8 storage buffers per stage to the kernels' tensors.
//!
//! lavapipe "inlines uniforms" (Mesa 22.3: `lvp_find_inlinable_uniforms` in
//! lvp_inline_uniforms.c, `update_inline_shader_state` in lvp_execute.c). In a shader of over
//! 100 SSA values, a loop whose bound is a uniform and whose counter starts and steps by
//! constants, or an `if` decided by uniforms alone, makes the pipeline inlinable: at a dispatch
//! it clones the shader, substitutes the uniforms' current values, optimises and compiles a new
//! llvmpipe shader. 22.3 keeps no variant cache: while inlining is on, every dispatch compiles
//! again, and each copy lives as long as the pipeline (glimpse's live for the process). It
//! gives up for good only when the first dispatch's copy shrank by less than half, so whether
//! a kernel leaks depends on the values its first dispatch saw. attention_rows (480 KB per demo
//! run) and the tiled matmul (1.1 MB per dispatch at full width) leaked this way until their
//! loops were reshaped, and matmul_subgroup still did whenever its first dispatch was
//! 512 x 512 x 512 (`glimpse bench`'s calibration GEMM); newer Mesa caches the variants, which
//! still costs a compile per new set of values. Only `load_ubo` loads (uniform buffers and push constants) are inlined, never
//! storage-buffer loads, and no environment variable turns it off.
//!
//! So on lavapipe [`ParamsBinding::apply`] rewrites the source before compiling: the
//! declaration becomes [`PARAMS_STORAGE`] (the buffer as `params_storage`, and `params` a
//! private copy) and `main` begins by copying it, on the same lines (compile errors keep their
//! line numbers). The copy matters for speed: reading a storage buffer where a kernel reads
//! `params` in inner loops cost about 5% of a network's CPU time on lavapipe against the
//! uniform, the private copy (loaded once per invocation) about 2% less than the uniform
//! (BENCHMARKS.md, "Soak"). tests/leak.rs keeps a kernel of exactly the hazardous shape flat
//! across submits, and matmul_subgroup at 512^3, which with a uniform still recompiled at
//! every dispatch (1.3 MB and, without Mesa's shader cache, 0.6 s each).
//!
//! The storage form is for naga alone (wgpu's front end on native Vulkan): WGSL's uniformity rules
//! count a private variable as non-uniform, and naga accepts a barrier in a loop bounded by
//! `params` where Tint (browsers) would refuse it (nonlocal_attention_wide has one). The values
//! are the same in every invocation, so control flow is uniform in fact; never hand this form to
//! a browser.

use std::borrow::Cow;

/// The one declaration of a kernel's parameters every shader carries, as shipped.
pub const PARAMS_UNIFORM: &str = "@group(0) @binding(0) var<uniform> params: Params;";

/// What [`PARAMS_UNIFORM`] becomes where parameters travel in a storage buffer: the buffer
/// under another name, and `params` a private copy that [`COPY_PARAMS`] fills.
pub const PARAMS_STORAGE: &str =
    "@group(0) @binding(0) var<storage, read> params_storage: Params; var<private> params: Params;";

/// The entry point every kernel has; its body begins with [`COPY_PARAMS`] where parameters
/// travel in a storage buffer.
pub const ENTRY_POINT: &str = "fn main(";

/// The statement put right after `main`'s opening brace.
pub const COPY_PARAMS: &str = " params = params_storage;";

/// The kind of buffer binding 0 (`params`) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamsBinding {
    /// A uniform buffer, as the shaders declare it (browsers, GPU drivers, OpenGL).
    Uniform,
    /// A read-only storage buffer: lavapipe never specialises a shader on storage contents.
    ReadOnlyStorage,
}

impl ParamsBinding {
    /// Storage on lavapipe (Vulkan on llvmpipe), uniform elsewhere. OpenGL on the same
    /// llvmpipe does not inline: tests/leak.rs' kernel of the leaking shape stays flat there
    /// with a uniform.
    pub fn for_adapter(backend: &str, driver: &str) -> ParamsBinding {
        if backend == "Vulkan" && driver.starts_with("llvmpipe") {
            ParamsBinding::ReadOnlyStorage
        } else {
            ParamsBinding::Uniform
        }
    }

    /// The buffer usage binding 0 needs.
    pub(super) fn usage(self) -> wgpu::BufferUsages {
        match self {
            ParamsBinding::Uniform => wgpu::BufferUsages::UNIFORM,
            ParamsBinding::ReadOnlyStorage => wgpu::BufferUsages::STORAGE,
        }
    }

    /// `source` with its parameters in this kind of binding: unchanged for a uniform; for
    /// storage, the [`PARAMS_UNIFORM`] line becomes [`PARAMS_STORAGE`] and [`COPY_PARAMS`]
    /// follows the opening brace of [`ENTRY_POINT`], line numbers unchanged. A source without
    /// both is returned unchanged: binding it then fails in wgpu, naming the kernel.
    pub fn apply(self, source: Cow<'static, str>) -> Cow<'static, str> {
        if self == ParamsBinding::Uniform {
            return source;
        }
        let (Some(declared), Some(entry)) = (source.find(PARAMS_UNIFORM), source.find(ENTRY_POINT)) else {
            return source;
        };
        let Some(brace) = source[entry..].find('{').map(|b| entry + b + 1) else {
            return source;
        };
        if declared > entry {
            return source;
        }
        let end = declared + PARAMS_UNIFORM.len();
        format!("{}{PARAMS_STORAGE}{}{COPY_PARAMS}{}", &source[..declared], &source[end..brace], &source[brace..])
            .into()
    }

    /// For `glimpse info`.
    pub fn describe(self) -> &'static str {
        match self {
            ParamsBinding::Uniform => "uniform buffer",
            ParamsBinding::ReadOnlyStorage => "read-only storage buffer (lavapipe would compile a shader per value)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lavapipe_alone_takes_storage() {
        let on = |backend, driver| ParamsBinding::for_adapter(backend, driver);
        assert_eq!(on("Vulkan", "llvmpipe Mesa 22.3.6 (LLVM 15.0.6)"), ParamsBinding::ReadOnlyStorage);
        assert_eq!(on("Gl", "4.5 (Core Profile) Mesa 22.3.6"), ParamsBinding::Uniform);
        assert_eq!(on("Vulkan", "NVIDIA 550.54"), ParamsBinding::Uniform);
        assert_eq!(on("Vulkan", "Google SwiftShader"), ParamsBinding::Uniform);
    }

    #[test]
    fn the_declaration_and_the_copy_go_on_the_same_lines() {
        let source = "struct Params { n: u32 }\n\
                      @group(0) @binding(0) var<uniform> params: Params;\n\
                      @compute @workgroup_size(64)\n\
                      fn main(@builtin(local_invocation_index) lid: u32) {\n    let n = params.n;\n}\n";
        let storage = ParamsBinding::ReadOnlyStorage.apply(source.into());
        let want = "struct Params { n: u32 }\n\
                    @group(0) @binding(0) var<storage, read> params_storage: Params; var<private> params: Params;\n\
                    @compute @workgroup_size(64)\n\
                    fn main(@builtin(local_invocation_index) lid: u32) { params = params_storage;\n    let n = params.n;\n}\n";
        assert_eq!(storage, want);
        assert_eq!(ParamsBinding::Uniform.apply(source.into()), source);
    }

    #[test]
    fn a_source_without_the_declaration_or_entry_is_left_alone() {
        let no_entry = "@group(0) @binding(0) var<uniform> params: Params;\nfn other() {}\n";
        assert_eq!(ParamsBinding::ReadOnlyStorage.apply(no_entry.into()), no_entry);
        let other_declaration = "@group(0) @binding(0) var<uniform> p: Params;\nfn main() {}\n";
        assert_eq!(ParamsBinding::ReadOnlyStorage.apply(other_declaration.into()), other_declaration);
    }
}
