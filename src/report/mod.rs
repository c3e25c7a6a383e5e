//! Human renderings of the reports that outgrew a command file: tables and lines built from
//! what an engine returned. Generic tables, JSON and progress stay in `output.rs`; the JSON of
//! a report is its own `Serialize`.

pub mod background_migrations;
pub mod backups;
pub mod status;
