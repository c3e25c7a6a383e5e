//! Job IDs beyond the database's own counter: the high-water mark that survives `destroy` and
//! `restore` (`high_water`), and the engine's per-job log directories that a reused ID would
//! append to (`log_dirs`). Each module's `//!` says what it guarantees.

pub mod high_water;
pub mod log_dirs;
