//! The subcommands of the `glimpse` binary, one file each.

pub mod bench;
pub mod check;
pub mod classify;
pub mod info;
pub mod map;
pub mod run;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};
use std::fmt::Display;

/// The progress bar of a command over pictures: count, rate, time left, the last picture.
pub const IMAGES_BAR: &str = "{bar:40} {pos}/{len} images, {per_sec}, eta {eta} {msg}";

/// How much a command says besides its results, from the global `-q` / `-v` flags. Results
/// go to stdout and errors to stderr either way; this governs the rest of stderr.
#[derive(Clone, Copy, Debug, Default)]
pub struct Output {
    /// No progress bars and no informational lines (adapter and plan summaries, timings).
    pub quiet: bool,
    /// The extra detail a command has (e.g. where `map`'s time went).
    pub verbose: bool,
}

impl Output {
    /// Prints an informational line on stderr, unless quiet.
    pub fn note(&self, line: impl Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// Where progress bars draw: stderr, which indicatif leaves blank when it is not a
    /// terminal (so pipes and logs get no bar), and nowhere when quiet.
    pub fn draw_target(&self) -> ProgressDrawTarget {
        if self.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        }
    }

    /// A progress bar of `len` steps drawn with `template` (indicatif's syntax), wiped when
    /// dropped so that an error returned mid-way is not printed beside a stale bar.
    pub fn bar(&self, len: u64, template: &str) -> ProgressBar {
        let style = ProgressStyle::with_template(template).expect("the template is valid");
        ProgressBar::with_draw_target(Some(len), self.draw_target())
            .with_style(style)
            .with_finish(ProgressFinish::AndClear)
    }
}

/// A `--query X,Y` pixel (column first), as `glimpse run` and `glimpse map` take it.
pub fn parse_query(q: &str) -> Result<[usize; 2]> {
    let parts: Vec<&str> = q.split(',').map(str::trim).collect();
    match parts[..] {
        [x, y] => Ok([
            x.parse().with_context(|| format!("--query {q}: X is not a pixel index"))?,
            y.parse().with_context(|| format!("--query {q}: Y is not a pixel index"))?,
        ]),
        _ => bail!("--query {q}: expected X,Y"),
    }
}
