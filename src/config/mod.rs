//! Effective configuration: flags > environment > `jobdbctl.toml` > defaults, each value
//! remembering where it came from so `show-params` can say.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::archive::Codec;
use crate::error::{failure, Exit};

pub mod s3;

pub const CONFIG_FILE: &str = "jobdbctl.toml";
/// Where the server runs when jobdbctl runs as root, as `pg_ctlcluster` keeps its clusters.
const ROOT_DATA_DIR: &str = "/var/lib/jobdbctl";
const ROOT_CONFIG_DIR: &str = "/etc/jobdbctl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env(&'static str),
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("flag"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// The file's keys. Unknown keys are an error naming the key (serde's message does).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    data_dir: Option<PathBuf>,
    server_user: Option<String>,
    server_bindir: Option<PathBuf>,
    port: Option<u16>,
    listen_addresses: Option<String>,
    backup_dir: Option<PathBuf>,
    profile: Option<String>,
    schema: Option<String>,
    stale_after: Option<String>,
    max_migration_wait: Option<String>,
    connect_timeout: Option<String>,
    job_logs_dir: Option<PathBuf>,
    job_logs_pattern: Option<String>,
    compression: Option<Codec>,
    encrypt_recipients: Option<Vec<String>>,
    encrypt_recipients_file: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    identity_file: Option<PathBuf>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_addressing: Option<s3::Addressing>,
    s3_ca_file: Option<PathBuf>,
    s3_profile: Option<String>,
    s3_retry_for: Option<String>,
    wal_archive: Option<PathBuf>,
}

/// What the command line said; `None` where the flag was not given.
#[derive(Debug, Default, Clone)]
pub struct FlagValues {
    pub configdir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub profile: Option<String>,
    pub schema: Option<String>,
    pub stale_after: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub configdir: Setting<PathBuf>,
    pub database_url: Option<Setting<String>>,
    pub data_dir: Setting<PathBuf>,
    pub server_user: Option<Setting<String>>,
    pub server_bindir: Option<Setting<PathBuf>>,
    pub port: Setting<u16>,
    pub listen_addresses: Setting<String>,
    pub backup_dir: Setting<PathBuf>,
    pub profile: Option<Setting<String>>,
    pub schema: Option<Setting<String>>,
    pub stale_after: Setting<Duration>,
    pub max_migration_wait: Setting<Duration>,
    pub connect_timeout: Setting<Duration>,
    /// The engine's per-job log directory, for `job-logs` (flag `--dir`).
    pub job_logs_dir: Option<Setting<PathBuf>>,
    /// Where a job's logs sit under `job_logs_dir` (flag `--pattern`).
    pub job_logs_pattern: Setting<String>,
    /// How `backup` compresses (flag `--compression`).
    pub compression: Setting<Codec>,
    /// Who every archive is encrypted to (flags `--encrypt-to`, `--encrypt-to-file`).
    pub encrypt_recipients: Option<Setting<Vec<String>>>,
    pub encrypt_recipients_file: Option<Setting<PathBuf>>,
    /// Encrypts with (backup) and decrypts with (restore, verify) a passphrase, its first line.
    pub passphrase_file: Option<Setting<PathBuf>>,
    /// Decrypts archives (flag `--identity`, env `JOBDBCTL_IDENTITY_FILE`).
    pub identity_file: Option<Setting<PathBuf>>,
    /// Where `s3://` URLs go and with which credentials.
    pub s3: s3::S3Config,
    /// The embedded cluster's WAL archive directory: set, `start` turns on archiving.
    pub wal_archive: Option<Setting<PathBuf>>,
}

/// Tractor's layout: `<user>/J<jid>/…`.
pub const DEFAULT_JOB_LOGS_PATTERN: &str = "{user}/J{jid}";

pub fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "jobdbctl")
}

fn default_config_dir() -> PathBuf {
    if running_as_root() {
        return PathBuf::from(ROOT_CONFIG_DIR);
    }
    project_dirs()
        .map(|d| d.config_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(ROOT_CONFIG_DIR))
}

fn default_data_dir() -> PathBuf {
    if running_as_root() {
        return PathBuf::from(ROOT_DATA_DIR);
    }
    project_dirs()
        .map(|d| d.data_dir().to_path_buf())
        .unwrap_or_else(|| PathBuf::from(ROOT_DATA_DIR))
}

/// The longest duration any option or setting takes: a hundred years. Every duration is an
/// age or a wait measured back or forward from now; past this, date arithmetic here or in SQL
/// overflows (`timestamp out of range`, a window that silently stops applying), and no age of
/// a job, log or backup means anything.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86_400 + 25 * 86_400);

/// A duration such as `30s`, `90m`, `4h`, `30d`, range-checked against [`MAX_DURATION`].
pub fn duration_in_range(text: &str) -> Result<Duration, String> {
    let value = humantime::parse_duration(text.trim())
        .map_err(|e| format!("invalid duration {text:?} ({e}); use forms like 30s, 90m, 4h"))?;
    if value > MAX_DURATION {
        return Err(format!(
            "duration {text:?} is too long: at most {} (100 years)",
            humantime::format_duration(MAX_DURATION)
        ));
    }
    Ok(value)
}

pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    duration_in_range(text).map_err(|why| failure(Exit::Usage, why))
}

/// `path` made absolute against `base` (a relative path in jobdbctl.toml is relative to its
/// directory; one from a flag or the environment to the working directory), with `.` and
/// `..` resolved by name. Not canonicalized: a data directory reached through a link keeps
/// the name the operator gives it, as archives written before recorded it.
pub fn absolute(path: &Path, base: Option<&Path>) -> PathBuf {
    if is_url(path) {
        return path.to_path_buf();
    }
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match base {
            Some(base) => base.join(path),
            None => std::env::current_dir()
                .map(|cwd| cwd.join(path))
                .unwrap_or_else(|_| path.to_path_buf()),
        }
    };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether `path` is an object-storage URL (`s3://bucket/prefix/`) rather than a file path:
/// such a value is never made absolute or read as a local file.
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("s3://"))
}

/// A path setting made absolute (see [`absolute`]): file values against the config
/// directory, others against the working directory.
fn absolute_setting(setting: Setting<PathBuf>) -> Setting<PathBuf> {
    let base = match &setting.source {
        Source::File(file) => file.parent().map(Path::to_path_buf),
        _ => None,
    };
    Setting {
        value: absolute(&setting.value, base.as_deref()),
        source: setting.source,
    }
}

/// Picks the first of flag, environment, file; `None` if none set it.
fn layered<T>(
    flag: Option<T>,
    env: Option<(&'static str, T)>,
    file: Option<T>,
    file_path: &Path,
) -> Option<Setting<T>> {
    if let Some(value) = flag {
        return Some(Setting {
            value,
            source: Source::Flag,
        });
    }
    if let Some((name, value)) = env {
        return Some(Setting {
            value,
            source: Source::Env(name),
        });
    }
    file.map(|value| Setting {
        value,
        source: Source::File(file_path.to_path_buf()),
    })
}

fn env_var(name: &'static str) -> Option<(&'static str, String)> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| (name, v))
}

fn or_default<T>(setting: Option<Setting<T>>, default: T) -> Setting<T> {
    setting.unwrap_or(Setting {
        value: default,
        source: Source::Default,
    })
}

fn duration_setting(
    file_value: Option<String>,
    key: &str,
    file_path: &Path,
    default: Duration,
) -> anyhow::Result<Setting<Duration>> {
    Ok(match file_value {
        Some(text) => Setting {
            value: parse_duration(&text)
                .with_context(|| format!("{key} in {}", file_path.display()))?,
            source: Source::File(file_path.to_path_buf()),
        },
        None => Setting {
            value: default,
            source: Source::Default,
        },
    })
}

impl Config {
    pub fn load(flags: FlagValues) -> anyhow::Result<Config> {
        let configdir = match (flags.configdir, env_var("JOBDBCTL_CONFIGDIR")) {
            (Some(dir), _) => Setting {
                value: dir,
                source: Source::Flag,
            },
            (None, Some((name, dir))) => Setting {
                value: PathBuf::from(dir),
                source: Source::Env(name),
            },
            (None, None) => Setting {
                value: default_config_dir(),
                source: Source::Default,
            },
        };
        let configdir = absolute_setting(configdir);
        if configdir.source != Source::Default && !configdir.value.is_dir() {
            return Err(failure(
                Exit::Usage,
                format!(
                    "config directory {} ({}) does not exist; create it or fix --configdir",
                    configdir.value.display(),
                    configdir.source
                ),
            ));
        }
        let file_path = configdir.value.join(CONFIG_FILE);
        let mut file = read_file_config(&file_path)?;
        let s3 = s3::S3Config::load(
            s3::FileKeys {
                s3_endpoint: file.s3_endpoint.take(),
                s3_region: file.s3_region.take(),
                s3_addressing: file.s3_addressing.take(),
                s3_ca_file: file.s3_ca_file.take(),
                s3_profile: file.s3_profile.take(),
                s3_retry_for: file.s3_retry_for.take(),
            },
            &file_path,
        )?;

        let database_url = layered(
            flags.database_url,
            env_var("JOBDBCTL_DATABASE_URL"),
            file.database_url,
            &file_path,
        );
        let data_dir = or_default(
            layered(
                flags.data_dir,
                env_var("JOBDBCTL_DATA_DIR").map(|(n, v)| (n, PathBuf::from(v))),
                file.data_dir,
                &file_path,
            ),
            default_data_dir(),
        );
        // Absolute before anything uses or records them: a relative data directory would be
        // recorded in archives as given, and `restore latest` from another working directory
        // would not know them.
        let data_dir = absolute_setting(data_dir);
        let backup_dir = absolute_setting(or_default(
            layered(None, None, file.backup_dir, &file_path),
            data_dir.value.join("backups"),
        ));
        let stale_after = match flags.stale_after {
            Some(value) => Setting {
                value,
                source: Source::Flag,
            },
            None => duration_setting(
                file.stale_after,
                "stale_after",
                &file_path,
                Duration::from_secs(300),
            )?,
        };
        let schema = layered(flags.schema, None, file.schema, &file_path);
        if let Some(s) = &schema {
            check_schema_name(&s.value, &s.source)?;
        }
        Ok(Config {
            database_url,
            server_user: layered(None, None, file.server_user, &file_path),
            server_bindir: layered(None, None, file.server_bindir, &file_path)
                .map(absolute_setting),
            port: or_default(layered(None, None, file.port, &file_path), 5432),
            listen_addresses: or_default(
                layered(None, None, file.listen_addresses, &file_path),
                String::new(),
            ),
            backup_dir,
            profile: layered(flags.profile, None, file.profile, &file_path),
            schema,
            stale_after,
            max_migration_wait: duration_setting(
                file.max_migration_wait,
                "max_migration_wait",
                &file_path,
                Duration::from_secs(4 * 3600),
            )?,
            connect_timeout: duration_setting(
                file.connect_timeout,
                "connect_timeout",
                &file_path,
                Duration::from_secs(10),
            )?,
            job_logs_dir: layered(None, None, file.job_logs_dir, &file_path).map(absolute_setting),
            job_logs_pattern: or_default(
                layered(None, None, file.job_logs_pattern, &file_path),
                DEFAULT_JOB_LOGS_PATTERN.to_string(),
            ),
            compression: or_default(
                layered(None, None, file.compression, &file_path),
                Codec::Gzip,
            ),
            encrypt_recipients: layered(None, None, file.encrypt_recipients, &file_path),
            encrypt_recipients_file: layered(None, None, file.encrypt_recipients_file, &file_path)
                .map(absolute_setting),
            passphrase_file: layered(None, None, file.passphrase_file, &file_path)
                .map(absolute_setting),
            identity_file: layered(
                None,
                env_var("JOBDBCTL_IDENTITY_FILE").map(|(n, v)| (n, PathBuf::from(v))),
                file.identity_file,
                &file_path,
            )
            .map(absolute_setting),
            s3,
            wal_archive: layered(None, None, file.wal_archive, &file_path).map(absolute_setting),
            data_dir,
            configdir,
        })
    }
}

/// PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1), so a longer name would
/// silently address another schema; an empty one is no name at all.
fn check_schema_name(name: &str, source: &Source) -> anyhow::Result<()> {
    const MAX_IDENTIFIER_BYTES: usize = 63;
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if name.len() > MAX_IDENTIFIER_BYTES {
        format!(
            "is {} bytes long; PostgreSQL names are at most {MAX_IDENTIFIER_BYTES} bytes",
            name.len()
        )
    } else if name.contains('\0') {
        "contains a NUL byte".to_string()
    } else {
        return Ok(());
    };
    Err(failure(
        Exit::Usage,
        format!("schema name ({source}) {problem}; give the name of the job schema, e.g. --schema jobdb"),
    ))
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read config file {}", path.display()))
        }
    };
    toml::from_str(&text).map_err(|e| {
        // toml's message spans several lines with a source excerpt; one line is enough here.
        let message = e.message().replace('\n', " ");
        failure(
            Exit::Usage,
            format!("config file {}: {message}", path.display()),
        )
    })
}
