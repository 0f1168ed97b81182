//! The subcommands of the `glimpse` binary, one file each.

pub mod bench;
pub mod check;
pub mod info;
pub mod map;
pub mod run;
