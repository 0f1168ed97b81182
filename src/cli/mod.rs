//! The subcommands of the `glimpse` binary, one file each.

pub mod bench;
pub mod check;
pub mod classify;
pub mod info;
pub mod map;
pub mod run;

use anyhow::{bail, Context, Result};

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
