//! What compiling each pipeline cost, for `glimpse bench` and `glimpse map -v`.
//!
//! A pipeline costs twice: creating it (wgpu translates the WGSL, the driver
//! parses it) and, on drivers that compile to machine code lazily (Mesa's
//! llvmpipe behind both lavapipe and OpenGL), its first dispatch. So the first
//! dispatch of every pipeline is submitted alone and timed; later submits of
//! the same pipeline are batched as usual. That split costs nothing measurable:
//! lavapipe's truly cold `glimpse demo`, five alternated pairs with and without
//! it (2026-12-06, load 4.4-4.9), took 7.05-7.84 s against 7.04-8.20 s wall and
//! 4.82-5.12 s against 4.86-5.17 s of CPU time.

use super::pipelines::ready;
use super::{Dispatch, Gpu};
use crate::Result;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One pipeline this device compiled: a kernel with one set of override constants.
#[derive(Clone, Debug)]
pub struct PipelineCompile {
    /// The kernel's name.
    pub kernel: &'static str,
    /// Its override constants, by name.
    pub constants: Vec<(String, f64)>,
    /// Creating the shader module and the pipeline, ms.
    pub create_ms: f64,
    /// Its first dispatch, submitted alone and waited for, ms: where lazy drivers
    /// generate the machine code (it includes that one dispatch's own run time).
    /// `None` until a dispatch of it has run.
    pub first_run_ms: Option<f64>,
}

impl PipelineCompile {
    /// Creation and first dispatch, ms.
    pub fn total_ms(&self) -> f64 {
        self.create_ms + self.first_run_ms.unwrap_or(0.0)
    }

    /// `kernel` or `kernel[NAME=VALUE,...]`.
    pub fn label(&self) -> String {
        if self.constants.is_empty() {
            return self.kernel.to_string();
        }
        let constants: Vec<String> = self.constants.iter().map(|(n, v)| format!("{n}={v}")).collect();
        format!("{}[{}]", self.kernel, constants.join(","))
    }
}

/// A pipeline's entry in the compile log, shared by the cache and its dispatches.
pub(super) type CompileEntry = Arc<Mutex<PipelineCompile>>;

impl Gpu {
    /// Every pipeline this device compiled so far, in order of creation.
    pub fn pipeline_compiles(&self) -> Vec<PipelineCompile> {
        let log = self.compiles.lock().expect("compile log should not be poisoned");
        log.iter().map(|c| c.lock().expect("compile entry should not be poisoned").clone()).collect()
    }

    /// Adds a created pipeline to the log; its dispatches share the entry.
    pub(super) fn log_compile(&self, compile: PipelineCompile) -> CompileEntry {
        let entry = Arc::new(Mutex::new(compile));
        self.compiles.lock().expect("compile log should not be poisoned").push(entry.clone());
        entry
    }

    /// Runs, one submit each, every dispatch of `dispatches` whose pipeline has
    /// never run (and the ones before it, batched), timing each first run;
    /// returns the dispatches after the last such one, still to be run.
    pub(super) fn run_first_uses<'a>(&self, dispatches: &'a [Dispatch], context: &str) -> Result<&'a [Dispatch]> {
        let never_ran = |d: &Dispatch| {
            d.compile_entry().lock().expect("compile entry should not be poisoned").first_run_ms.is_none()
        };
        let mut start = 0;
        for i in 0..dispatches.len() {
            if !never_ran(&dispatches[i]) {
                continue;
            }
            if start < i {
                self.submit_now(&dispatches[start..i], context)?;
            }
            // Its compile finished first, so the time is the first run's alone.
            dispatches[i].pipeline()?;
            let t = Instant::now();
            self.submit_now(&dispatches[i..=i], context)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            dispatches[i].compile_entry().lock().expect("compile entry should not be poisoned").first_run_ms = Some(ms);
            start = i + 1;
        }
        Ok(&dispatches[start..])
    }

    /// Records `dispatches` into one command buffer, submits and waits.
    fn submit_now(&self, dispatches: &[Dispatch], context: &str) -> Result<()> {
        let pipelines = ready(dispatches)?;
        self.scoped(context, || {
            let mut encoder =
                self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("glimpse") });
            self.record(&mut encoder, dispatches, &pipelines, None);
            self.queue.submit([encoder.finish()]);
        })?;
        self.wait(context)
    }
}
