//! The load generator's parts, as a library so that its own tests drive them.

pub mod ceiling;
pub mod load;
pub mod process;
pub mod report;
pub mod seed;
pub mod setup;
