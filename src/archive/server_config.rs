//! A cold archive's server configuration is data, not configuration: restoring it must not
//! make the server run a command or load code that this host's configuration does not.
//!
//! The rule (docs/archive-format.md, "Server configuration in cold archives"): in the
//! archive's `postgresql.conf`, `postgresql.auto.conf` and `jobdbctl.conf`, every line that
//! sets a parameter in [`LEFT_OUT`] (commands, libraries, files outside the data directory,
//! WAL archiving)
//! and every `include`, `include_if_exists` or `include_dir` other than jobdbctl's own
//! `include_if_exists = 'jobdbctl.conf'` is commented out in the restored file, with a
//! marker, and reported by name; `verify` reports the same. The other settings (memory,
//! logging, planner) come back as they were. jobdbctl rewrites `jobdbctl.conf` from
//! jobdbctl.toml on every start, so what the current configuration says about WAL archiving
//! still applies.

use crate::error::{failure, Exit};

use super::CLUSTER_DIR;

/// Parameters that run a shell command, load a shared library, or point the server at
/// files outside its data directory (PostgreSQL 15's names; case does not matter).
pub const LEFT_OUT: [&str; 26] = [
    // Without its command, an archive mode kept on would hold every WAL segment for ever;
    // WAL archiving follows this host's configuration (jobdbctl.toml), not the archive's.
    "archive_mode",
    "archive_command",
    "archive_cleanup_command",
    "recovery_end_command",
    "restore_command",
    "ssl_passphrase_command",
    "archive_library",
    "shared_preload_libraries",
    "session_preload_libraries",
    "local_preload_libraries",
    "dynamic_library_path",
    "jit_provider",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    // Where a recovery stops and whom a standby follows are the restore's to say
    // (`restore --to-time` and the like), never the archive's.
    "recovery_target",
    "recovery_target_name",
    "recovery_target_time",
    "recovery_target_xid",
    "recovery_target_lsn",
    "recovery_target_action",
    "recovery_target_timeline",
    "primary_conninfo",
    "primary_slot_name",
];

const INCLUDES: [&str; 3] = ["include", "include_if_exists", "include_dir"];

/// jobdbctl's own include line, which `start` keeps in postgresql.conf.
pub const OWN_INCLUDE: &str = "include_if_exists = 'jobdbctl.conf'";

/// The files read as configuration by the server, relative to the data directory.
const FILES: [&str; 3] = ["postgresql.conf", "postgresql.auto.conf", "jobdbctl.conf"];

/// Far above a real configuration file; a larger one is not held in memory.
pub const MAX_BYTES: usize = 1 << 20;

/// A setting of the archive that a restore leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// The file, relative to the data directory.
    pub file: String,
    pub setting: String,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.setting)
    }
}

/// The file relative to the data directory when the archive entry `name` is one the server
/// reads as configuration.
pub fn config_file(name: &str) -> Option<&str> {
    let rel = name.strip_prefix(CLUSTER_DIR)?.trim_start_matches('/');
    FILES.contains(&rel).then_some(rel)
}

/// The parameter a configuration line sets, lowercased (`None` for blanks and comments).
fn parameter(line: &str) -> Option<String> {
    let line = line.trim_start();
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(line.len());
    let name = &line[..end];
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    starts_well.then(|| name.to_ascii_lowercase())
}

/// The file with every line that sets a [`LEFT_OUT`] parameter or includes another file
/// commented out (jobdbctl's own include excepted), and what was left out.
pub fn neutralize(file: &str, text: &[u8]) -> (Vec<u8>, Vec<LeftOut>) {
    let text = String::from_utf8_lossy(text);
    let mut out = String::with_capacity(text.len() + 256);
    let mut left_out = Vec::new();
    for line in text.split_inclusive('\n') {
        let setting = parameter(line).filter(|name| {
            (LEFT_OUT.contains(&name.as_str()) || INCLUDES.contains(&name.as_str()))
                && line.trim() != OWN_INCLUDE
        });
        match setting {
            Some(setting) => {
                out.push_str("# jobdbctl: left out of a restored cold archive (runs a command, loads code or reads another file): ");
                out.push_str(line);
                if !line.ends_with('\n') {
                    out.push('\n');
                }
                left_out.push(LeftOut {
                    file: file.to_string(),
                    setting,
                });
            }
            None => out.push_str(line),
        }
    }
    (out.into_bytes(), left_out)
}

/// Collects one configuration file's pieces as the reader hands them over.
#[derive(Default)]
pub struct Collected {
    bytes: Vec<u8>,
}

impl Collected {
    /// Adds a piece; a file larger than [`MAX_BYTES`] is refused (exit 5).
    pub fn push(&mut self, file: &str, piece: &[u8]) -> anyhow::Result<()> {
        if self.bytes.len() + piece.len() > MAX_BYTES {
            return Err(failure(
                Exit::BadArchive,
                format!(
                    "the archive's {file} is larger than {} KiB, far more than a server configuration holds; refusing the archive",
                    MAX_BYTES >> 10
                ),
            ));
        }
        self.bytes.extend_from_slice(piece);
        Ok(())
    }

    pub fn finish(self, file: &str) -> (Vec<u8>, Vec<LeftOut>) {
        neutralize(file, &self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_libraries_and_includes_are_commented_out() {
        let text = b"shared_buffers = 128MB\n\
            Archive_Command='cp %p /x'\n\
            \t shared_preload_libraries = 'evil'  # comment\n\
            # archive_command = 'already a comment'\n\
            include_dir 'conf.d'\n\
            include_if_exists = 'jobdbctl.conf'\n\
            restore_command = 'sh -c x'";
        let (out, left) = neutralize("postgresql.auto.conf", text);
        let out = String::from_utf8(out).expect("utf-8");
        let names: Vec<&str> = left.iter().map(|l| l.setting.as_str()).collect();
        assert_eq!(
            names,
            [
                "archive_command",
                "shared_preload_libraries",
                "include_dir",
                "restore_command"
            ]
        );
        assert!(out.starts_with("shared_buffers = 128MB\n"));
        assert!(out.contains("\ninclude_if_exists = 'jobdbctl.conf'\n"));
        assert!(!out
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.to_lowercase().contains("command")));
        assert!(!out
            .lines()
            .any(|l| l.trim_start().starts_with("shared_preload")));
    }

    #[test]
    fn only_the_servers_configuration_files_are_examined() {
        assert_eq!(
            config_file("psql/postgresql.auto.conf"),
            Some("postgresql.auto.conf")
        );
        assert_eq!(config_file("psql/postgresql.conf"), Some("postgresql.conf"));
        assert_eq!(config_file("psql/base/1/postgresql.conf"), None);
        assert_eq!(config_file("psql/pg_hba.conf"), None);
    }
}
