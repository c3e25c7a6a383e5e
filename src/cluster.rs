//! The embedded PostgreSQL cluster in `<data dir>/psql`, managed the way `pg_ctlcluster` does:
//! as root the server runs as an unprivileged user, it listens on a Unix socket inside its
//! own data directory, and a `postmaster.pid` left by a dead server is removed before start.

use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::config::{running_as_root, Config, Source};
use crate::error::{failure, Exit};
use crate::safe_fs;
use crate::shared::users::login_name;

/// The superuser initdb creates; the client connects as it over the socket (trust auth; the
/// socket's directory is mode 0700, so only the server user and root can reach it).
pub const SUPERUSER: &str = "postgres";
/// The database inside the embedded cluster that holds the job schema.
pub const DATABASE: &str = "jobdb";
/// How long `start` waits for the server to accept connections (crash recovery included).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `stop` waits for the server to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// The server's rotated logs, relative to the data directory; file names sort by time.
pub const LOG_DIR: &str = "log";
pub const LOG_FILENAME: &str = "postgresql-%Y-%m-%d_%H%M%S.log";
/// What `pg_ctl start -l` writes (before the logging collector takes over), in the data dir.
pub const START_LOG: &str = "jobdbctl-server.log";

#[derive(Debug, Clone)]
pub struct Cluster {
    pub data_dir: PathBuf,
    pub pgdata: PathBuf,
    /// The OS user the server runs as; `None` means "whoever runs jobdbctl" (non-root).
    pub server_user: Option<String>,
    pub port: u16,
    pub listen_addresses: String,
    /// Where the data directory was given (`--data-dir`, an environment variable, the config
    /// file); `None` for the default one, the only one `start` creates a cluster in unasked.
    pub data_dir_origin: Option<String>,
    bindir_setting: Option<PathBuf>,
    /// Where `wal-push` archives the server's WAL (wal_archive, a directory or an `s3://`
    /// URL); `None`: no archiving.
    pub wal_archive: Option<PathBuf>,
    /// The object-storage settings the server's WAL commands get in their environment when
    /// `wal_archive` is a bucket.
    wal_s3: Option<crate::config::s3::S3Config>,
    /// Recovery settings for a point-in-time restore's server (see `restore::recovery`),
    /// written with the rest of `jobdbctl.conf`; `None` for every other start.
    pub recovery_settings: Option<String>,
    /// The uid and gid files in the data directory belong to, looked up once per run (a cold
    /// backup reads a thousand files).
    file_owner: std::sync::OnceLock<(u32, u32)>,
}

/// A lock file in the data directory: cold backup and restore run with the server stopped,
/// so there is no server to hold an advisory lock.
pub struct DirLock {
    _file: File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    NotInitialized,
    Stopped,
    Running(i32),
}

#[derive(Debug, Clone, Copy)]
pub enum StopMode {
    /// Wait for clients to disconnect.
    Smart,
    /// Roll back open transactions and shut down cleanly.
    Fast,
    /// Abort without a clean shutdown; crash recovery runs on next start.
    Immediate,
}

impl StopMode {
    fn as_arg(self) -> &'static str {
        match self {
            StopMode::Smart => "smart",
            StopMode::Fast => "fast",
            StopMode::Immediate => "immediate",
        }
    }
}

impl Cluster {
    pub fn from_config(config: &Config) -> Cluster {
        let server_user = match &config.server_user {
            Some(s) => Some(s.value.clone()),
            None if running_as_root() => Some("postgres".to_string()),
            None => None,
        };
        Cluster {
            pgdata: config.data_dir.value.join("psql"),
            data_dir: config.data_dir.value.clone(),
            server_user,
            port: config.port.value,
            listen_addresses: config.listen_addresses.value.clone(),
            data_dir_origin: match &config.data_dir.source {
                Source::Default => None,
                Source::Flag => Some("--data-dir".to_string()),
                Source::Env(name) => Some(format!("${name}")),
                Source::File(path) => Some(format!("data_dir in {}", path.display())),
            },
            bindir_setting: config.server_bindir.as_ref().map(|s| s.value.clone()),
            wal_archive: config.wal_archive.as_ref().map(|s| s.value.clone()),
            wal_s3: config
                .wal_archive
                .as_ref()
                .filter(|s| crate::config::is_url(&s.value))
                .map(|_| config.s3.clone()),
            recovery_settings: None,
            file_owner: std::sync::OnceLock::new(),
        }
    }

    pub fn socket_dir(&self) -> &Path {
        &self.pgdata
    }

    /// Where the logging collector writes the server's logs once it runs (rotated files).
    pub fn log_dir(&self) -> PathBuf {
        self.pgdata.join(LOG_DIR)
    }

    pub fn log_file(&self) -> PathBuf {
        self.pgdata.join(START_LOG)
    }

    /// Connection settings for the embedded server: Unix socket, superuser, trust auth.
    pub fn pg_config(&self, connect_timeout: Duration) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(self.socket_dir())
            .port(self.port)
            .user(SUPERUSER)
            .dbname(DATABASE)
            .application_name("jobdbctl")
            .connect_timeout(connect_timeout);
        cfg
    }

    pub fn describe(&self) -> String {
        format!(
            "embedded cluster at {} (socket {}/.s.PGSQL.{})",
            self.pgdata.display(),
            self.socket_dir().display(),
            self.port
        )
    }

    /// Where the PostgreSQL server binaries are: config, `pg_config --bindir`, then the newest
    /// `/usr/lib/postgresql/*/bin`.
    pub fn bindir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.bindir_setting {
            if dir.join("initdb").is_file() {
                return Ok(dir.clone());
            }
            bail!(
                "server_bindir {} has no initdb; point it at the directory holding initdb and postgres",
                dir.display()
            );
        }
        if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if out.status.success() && dir.join("initdb").is_file() {
                return Ok(dir);
            }
        }
        let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let major = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").is_file().then_some((major, bin))
            })
            .collect();
        candidates.sort();
        match candidates.pop() {
            Some((_, dir)) => Ok(dir),
            None => bail!(
                "PostgreSQL server binaries not found (no initdb via pg_config or in /usr/lib/postgresql/*/bin); \
                 install them (Debian: apt-get install postgresql) or set server_bindir in jobdbctl.toml"
            ),
        }
    }

    pub fn is_initialized(&self) -> bool {
        self.pgdata.join("PG_VERSION").is_file()
    }

    /// What every command but `start`/`init` says when the data directory holds no cluster
    /// (exit 3): a mistyped `--data-dir` must not pass as a stopped server, whose advice
    /// ("start it") would then be refused too.
    pub fn no_cluster(&self) -> anyhow::Error {
        let (origin, hint) = match &self.data_dir_origin {
            Some(origin) => (
                format!("data directory from {origin}"),
                "check the path; `jobdbctl init` creates a cluster there if it is the right one",
            ),
            None => (
                "the default data directory".to_string(),
                "`jobdbctl start` creates it",
            ),
        };
        failure(
            Exit::Refused,
            format!("no cluster in {} ({origin}); {hint}", self.pgdata.display()),
        )
    }

    pub fn state(&self) -> anyhow::Result<ServerState> {
        self.check_owner()?;
        if !self.is_initialized() {
            return Ok(ServerState::NotInitialized);
        }
        Ok(match self.live_postmaster_pid()? {
            Some(pid) => ServerState::Running(pid),
            None => ServerState::Stopped,
        })
    }

    /// Refuses (exit 2) a cluster this run cannot manage because another OS user owns it: a
    /// normal user pointed at root's cluster, or root whose `server_user` is not the cluster's
    /// owner. Without this, permission errors would look like a stopped server or a missing
    /// cluster, and `start` would try to create one.
    pub fn check_owner(&self) -> anyhow::Result<()> {
        let dir_owner = |dir: &Path| -> anyhow::Result<Option<u32>> {
            match fs::metadata(dir) {
                Ok(meta) => Ok(Some(meta.uid())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(None),
                Err(e) => Err(e).with_context(|| format!("cannot stat {}", dir.display())),
            }
        };
        let pgdata_blocked = matches!(
            fs::metadata(&self.pgdata),
            Err(ref e) if e.kind() == std::io::ErrorKind::PermissionDenied
        );
        // The cluster's owner, or when its directory is closed to us, the data dir's.
        let (dir, owner) = match dir_owner(&self.pgdata)? {
            Some(uid) => (&self.pgdata, uid),
            None if pgdata_blocked => match dir_owner(&self.data_dir)? {
                Some(uid) => (&self.data_dir, uid),
                None => return Ok(()),
            },
            None => return Ok(()),
        };
        let owner_name = user_name(owner);
        if running_as_root() {
            let Some(user) = &self.server_user else {
                return Ok(());
            };
            let (server_uid, _) = lookup_user(user)?;
            if owner == server_uid {
                return Ok(());
            }
            return Err(failure(
                Exit::Usage,
                format!(
                    "the cluster at {} belongs to {owner_name}, but the server would run as {user}; \
                     run jobdbctl as {owner_name}, or set server_user = \"{owner_name}\" in jobdbctl.toml",
                    self.pgdata.display()
                ),
            ));
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        let me = unsafe { libc::geteuid() };
        if owner == me {
            return Ok(());
        }
        let run_as = if owner == 0 {
            "run jobdbctl as root".to_string()
        } else {
            format!("run jobdbctl as root (or as {owner_name})")
        };
        let what = if dir == &self.pgdata {
            format!("the cluster at {}", self.pgdata.display())
        } else {
            format!(
                "the data directory {} (cluster {})",
                self.data_dir.display(),
                self.pgdata.display()
            )
        };
        Err(failure(
            Exit::Usage,
            format!(
                "{what} belongs to {owner_name}, not to you ({}); {run_as}, or give your own --data-dir",
                user_name(me)
            ),
        ))
    }

    /// Who may own the files jobdbctl reads or replaces in the data directory: the server
    /// user when root runs it for them, else this user. A file of anyone else there (a link
    /// or hard link to a root-only file, planted by the server user) is refused, never read,
    /// written or chowned (see `safe_fs`).
    fn file_owner(&self) -> anyhow::Result<(u32, u32)> {
        if let Some(owner) = self.file_owner.get() {
            return Ok(*owner);
        }
        let owner = match (&self.server_user, running_as_root()) {
            (Some(user), true) => lookup_user(user)?,
            // SAFETY: getegid cannot fail.
            _ => (safe_fs::euid(), unsafe { libc::getegid() }),
        };
        Ok(*self.file_owner.get_or_init(|| owner))
    }

    /// The data directory, opened without following a link; `None` when there is none.
    fn open_pgdata(&self) -> anyhow::Result<Option<File>> {
        match safe_fs::open_dir(&self.pgdata) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot open {}", self.pgdata.display())),
        }
    }

    /// Opens `rel` (`name` or `dir/name`) below the data directory for reading, following no
    /// link and accepting only a plain file of the cluster's owner; `None` when absent.
    pub fn open_file(&self, rel: &Path) -> anyhow::Result<Option<File>> {
        let Some(pgdata) = self.open_pgdata()? else {
            return Ok(None);
        };
        let (dir, dir_path) = match rel.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(sub) => match safe_fs::open_dir_beneath(&pgdata, sub) {
                Ok(dir) => (dir, self.pgdata.join(sub)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot open {} without following a link",
                            self.pgdata.join(sub).display()
                        )
                    })
                }
            },
            None => (pgdata, self.pgdata.clone()),
        };
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("bad file name {}", rel.display()))?;
        // The server user's files, and root's own (a root-owned file with a single link
        // can only have been put there by root: a hard link to one is refused by its count).
        let (uid, _) = self.file_owner()?;
        safe_fs::open_read_at(
            &dir,
            &dir_path,
            name,
            safe_fs::Owners(&[uid, safe_fs::euid()]),
        )
    }

    fn read_file(&self, rel: &str) -> anyhow::Result<Option<String>> {
        let Some(mut file) = self.open_file(Path::new(rel))? else {
            return Ok(None);
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text)
            .with_context(|| format!("cannot read {}", self.pgdata.join(rel).display()))?;
        Ok(Some(text))
    }

    /// The postmaster's pid if `postmaster.pid` names a live postgres process.
    fn live_postmaster_pid(&self) -> anyhow::Result<Option<i32>> {
        Ok(self.postmaster()?.map(|(pid, _)| pid))
    }

    /// Whether the postmaster says in its pid file that it accepts connections (`ready`, or
    /// `standby` for a server in recovery), as `pg_ctl start -w` looks.
    fn accepts_connections(&self) -> anyhow::Result<bool> {
        Ok(self
            .postmaster()?
            .is_some_and(|(_, status)| matches!(status.as_str(), "ready" | "standby")))
    }

    /// The pid in `postmaster.pid` when a postgres process has it, and the status the file
    /// gives on its eighth line (`starting`, `ready`, `standby`, `stopping`; empty before
    /// the postmaster wrote it).
    fn postmaster(&self) -> anyhow::Result<Option<(i32, String)>> {
        let Some(text) = self.read_file("postmaster.pid")? else {
            return Ok(None);
        };
        let mut lines = text.lines();
        let pid = lines
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok())
            .filter(|p| *p > 0 && is_postgres_process(*p));
        Ok(pid.map(|pid| {
            let status = lines.nth(6).map_or("", str::trim);
            (pid, status.to_string())
        }))
    }

    /// Removes a `postmaster.pid` whose process is gone (or is not postgres: the pid was
    /// reused after a crash), as pg_ctlcluster does; returns whether one was removed.
    fn remove_stale_pid_file(&self) -> anyhow::Result<bool> {
        let pid_file = self.pgdata.join("postmaster.pid");
        if !pid_file.exists() || self.live_postmaster_pid()?.is_some() {
            return Ok(false);
        }
        fs::remove_file(&pid_file)
            .with_context(|| format!("cannot remove stale {}", pid_file.display()))?;
        Ok(true)
    }

    /// Creates the data directory and runs initdb. Refuses a non-empty directory that is not
    /// a cluster, rather than guess what it holds.
    pub fn initdb(&self) -> anyhow::Result<()> {
        self.check_owner()?;
        let bindir = self.bindir()?;
        create_private_dir(&self.data_dir, None)?;
        if running_as_root() {
            // The server user must traverse the data dir to reach psql/, nothing more.
            fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o711))
                .with_context(|| format!("cannot chmod {}", self.data_dir.display()))?;
        }
        if self.pgdata.exists()
            && fs::read_dir(&self.pgdata)
                .with_context(|| format!("cannot read {}", self.pgdata.display()))?
                .next()
                .is_some()
        {
            return Err(failure(
                Exit::Refused,
                format!(
                    "{} exists, is not empty and is not a PostgreSQL cluster; move it away or set data_dir elsewhere",
                    self.pgdata.display()
                ),
            ));
        }
        create_private_dir(&self.pgdata, self.server_user.as_deref())?;
        let out = self
            .server_command(&bindir.join("initdb"))
            .arg("-D")
            .arg(&self.pgdata)
            .args([
                "-U",
                SUPERUSER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ])
            .output()
            .context("cannot run initdb")?;
        check_output("initdb", &out)?;
        Ok(())
    }

    /// Settings the server must have for jobdbctl to find it; rewritten on every start so a
    /// moved data dir or changed port in config takes effect, with `archive_command` (from
    /// `prepare_wal_archive`) when WAL archiving is on.
    /// Both files are replaced through `safe_fs` (new file, owner set on its descriptor,
    /// rename), so a link the server user planted at either name is refused, never written
    /// through or chowned.
    fn write_server_conf(&self, archive_command: Option<&str>) -> anyhow::Result<()> {
        let include = "include_if_exists = 'jobdbctl.conf'";
        let pgdata = self
            .open_pgdata()?
            .with_context(|| format!("no cluster at {}", self.pgdata.display()))?;
        let owner = self.file_owner()?;
        let owners = [owner.0, safe_fs::euid()];
        let replace = |name: &str, body: &str| {
            safe_fs::replace_at(
                &pgdata,
                &self.pgdata,
                name,
                body.as_bytes(),
                0o600,
                running_as_root().then_some(owner),
                safe_fs::Owners(&owners),
            )
        };
        let text = self
            .read_file("postgresql.conf")?
            .with_context(|| format!("{} has no postgresql.conf", self.pgdata.display()))?;
        if !text.lines().any(|l| l.trim() == include) {
            replace("postgresql.conf", &format!("{text}\n{include}\n"))?;
        }
        let body = format!(
            "# Written by jobdbctl on every start; edit jobdbctl.toml instead.\n\
             listen_addresses = '{}'\n\
             port = {}\n\
             unix_socket_directories = '{}'\n\
             unix_socket_permissions = 0700\n\
             # Server logs rotate daily or at 100 MB into {LOG_DIR}/; `jobdbctl logs` reads and purges them.\n\
             logging_collector = on\n\
             log_directory = '{LOG_DIR}'\n\
             log_filename = '{LOG_FILENAME}'\n\
             log_rotation_age = '1d'\n\
             log_rotation_size = '100MB'\n\
             log_truncate_on_rotation = off\n",
            self.listen_addresses.replace('\'', "''"),
            self.port,
            self.socket_dir().display().to_string().replace('\'', "''"),
        );
        let archiving = match archive_command {
            Some(command) => format!(
                "# WAL archiving (wal_archive in jobdbctl.toml): every segment, once full, goes to the archive.\n\
                 archive_mode = on\n\
                 archive_command = '{}'\n",
                command.replace('\'', "''")
            ),
            None => String::new(),
        };
        let recovery = self.recovery_settings.as_deref().unwrap_or_default();
        replace("jobdbctl.conf", &format!("{body}{archiving}{recovery}"))
    }

    /// When wal_archive is set: checks that archive_command can carry both paths (the
    /// server runs it through the shell: letters, digits and `/._+-:` only) and that the
    /// server user can run this binary (and read a bucket's CA file), then creates an archive
    /// directory (mode 0700, the server user's), in that order, so a refusal leaves nothing
    /// behind. Returns the command, `jobdbctl wal-push --to DIR %p`.
    fn prepare_wal_archive(&self) -> anyhow::Result<Option<String>> {
        let Some(dir) = &self.wal_archive else {
            return Ok(None);
        };
        let exe = std::env::current_exe().context("cannot find jobdbctl's own path")?;
        let plain = |p: &Path| {
            p.to_str().is_some_and(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/._+-:".contains(&b))
            })
        };
        for (what, path) in [
            ("wal_archive", dir.as_path()),
            ("jobdbctl's path", exe.as_path()),
        ] {
            if !plain(path) {
                return Err(failure(
                    Exit::Usage,
                    format!(
                        "{what} {} has characters archive_command cannot carry; use a path of letters, digits and /._+-: only",
                        path.display()
                    ),
                ));
            }
        }
        let server_user_can = |test: &str, path: &Path, why: String| -> anyhow::Result<()> {
            let passed = self
                .server_command(Path::new("test"))
                .arg(test)
                .arg(path)
                .status()
                .context("cannot run test")?;
            if passed.success() {
                return Ok(());
            }
            Err(failure(Exit::Refused, why))
        };
        server_user_can(
            "-x",
            &exe,
            format!(
                "the server user cannot run {} (archive_command would fail on every segment); install jobdbctl where it can, e.g. /usr/local/bin",
                exe.display()
            ),
        )?;
        if let Some(ca) = self.wal_s3.as_ref().and_then(|s3| s3.ca_file.as_ref()) {
            server_user_can(
                "-r",
                &ca.value,
                format!(
                    "the server user cannot read the S3 CA file {} (wal-push would fail on every segment); make it readable to that user",
                    ca.value.display()
                ),
            )?;
        }
        if self.wal_s3.is_none() {
            create_private_dir(dir, self.server_user.as_deref())?;
        }
        Ok(Some(archive_command(&exe, dir)))
    }

    /// Gives `pg_ctl` (and so the server and its archive and restore commands) the bucket's
    /// settings and credentials when the WAL archive is a bucket: in the environment, which
    /// only the server user and root can read, never on a command line.
    fn pass_wal_settings(&self, pg_ctl: &mut Command) -> anyhow::Result<()> {
        let Some(s3) = &self.wal_s3 else {
            return Ok(());
        };
        for name in crate::config::s3::OVERRIDDEN_VARS {
            pg_ctl.env_remove(name);
        }
        for (name, value) in s3.environment()? {
            pg_ctl.env(name, value.expose());
        }
        Ok(())
    }

    /// Starts the server and waits up to [`START_TIMEOUT`] for it to accept connections;
    /// returns false if it was already running.
    pub fn start(&self) -> anyhow::Result<bool> {
        self.start_within(START_TIMEOUT)
    }

    /// Starts the server and waits up to `timeout` for it to accept connections; returns
    /// false if it was already running. When the wait runs out the server keeps starting
    /// (crash recovery is not interrupted), and the error says so (exit 6).
    pub fn start_within(&self, timeout: Duration) -> anyhow::Result<bool> {
        self.check_owner()?;
        if !self.is_initialized() {
            bail!(
                "no cluster at {}; run `jobdbctl init` first",
                self.pgdata.display()
            );
        }
        if self.live_postmaster_pid()?.is_some() {
            return Ok(false);
        }
        self.remove_stale_pid_file()?;
        let archive_command = self.prepare_wal_archive()?;
        self.write_server_conf(archive_command.as_deref())?;
        let bindir = self.bindir()?;
        let log = self.log_file();
        let log_len_before = self
            .open_file(Path::new(START_LOG))
            .ok()
            .flatten()
            .and_then(|f| f.metadata().ok())
            .map_or(0, |m| m.len());
        let mut pg_ctl = self.server_command(&bindir.join("pg_ctl"));
        self.pass_wal_settings(&mut pg_ctl)?;
        let child = pg_ctl
            .arg("-D")
            .arg(&self.pgdata)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-s", "-t"])
            .arg(pg_ctl_seconds(timeout))
            .arg("start")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("cannot run pg_ctl start")?;
        // pg_ctl tells a failed start (its postmaster gone) and gives up at the time limit;
        // readiness we see ourselves, as it looks only every 100 ms and a restore starts two
        // servers. A pg_ctl still waiting when we return ends by itself at its next look.
        let pg_ctl = std::thread::spawn(move || child.wait_with_output());
        while !pg_ctl.is_finished() {
            if self.accepts_connections()? {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let out = pg_ctl
            .join()
            .map_err(|_| anyhow::anyhow!("the pg_ctl waiter panicked"))?
            .context("cannot run pg_ctl start")?;
        if out.status.success() {
            return Ok(true);
        }
        if let Some(pid) = self.live_postmaster_pid()? {
            return Err(failure(
                Exit::Connect,
                format!(
                    "server (pid {pid}) did not accept connections within {}; it is still starting \
                     (recovering; see {}): check again with \
                     `jobdbctl status`, wait longer with `start --timeout`, or stop it with `jobdbctl stop`",
                    humantime::format_duration(timeout),
                    log.display()
                ),
            ));
        }
        let reason = log_errors_since(self, log_len_before).unwrap_or_else(|| {
            String::from_utf8_lossy(&out.stderr)
                .trim()
                .replace('\n', " ")
        });
        Err(failure(
            Exit::Connect,
            format!(
                "server did not start: {reason} (log: {}); if the port or socket is in use, stop the other server or set port in jobdbctl.toml",
                log.display()
            ),
        ))
    }

    /// Stops the server and waits up to [`STOP_TIMEOUT`] for it to exit; returns false if it
    /// was not running.
    pub fn stop(&self, mode: StopMode) -> anyhow::Result<bool> {
        self.stop_within(mode, STOP_TIMEOUT)
    }

    /// Stops the server and waits up to `timeout` for it to exit; returns false if it was not
    /// running. When the wait runs out the shutdown goes on in the server (a signal cannot be
    /// taken back), and the error says what to do (exit 1).
    pub fn stop_within(&self, mode: StopMode, timeout: Duration) -> anyhow::Result<bool> {
        self.check_owner()?;
        let started = std::time::Instant::now();
        let Some(postmaster) = self.live_postmaster_pid()? else {
            self.remove_stale_pid_file()?;
            return Ok(false);
        };
        let bindir = self.bindir()?;
        // pg_ctl only signals (-W); the wait is ours: pg_ctl looks every 100 ms, a restore
        // stops two servers and starts two, and each wait would round up to it.
        let out = self
            .server_command(&bindir.join("pg_ctl"))
            .arg("-D")
            .arg(&self.pgdata)
            .args(["-W", "-s", "-m", mode.as_arg(), "stop"])
            .output()
            .context("cannot run pg_ctl stop")?;
        if !out.status.success() && has_exited(postmaster) {
            // It went away between our look and pg_ctl's.
            return Ok(true);
        }
        check_output("pg_ctl stop", &out)?;
        while !has_exited(postmaster) {
            if started.elapsed() >= timeout {
                let waiting_for = match mode {
                    StopMode::Smart => "clients to disconnect",
                    StopMode::Fast | StopMode::Immediate => "its processes to exit",
                };
                return Err(failure(
                    Exit::Runtime,
                    format!(
                        "server (pid {postmaster}) still running after {}: a {} shutdown is waiting for {waiting_for} \
                         and goes on without us (new connections are refused); \
                         run `jobdbctl stop --mode fast` to roll back open transactions, or wait longer with --timeout",
                        humantime::format_duration(timeout),
                        mode.as_arg()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(true)
    }

    /// A command that runs as the server user: via `runuser` when we are root, else directly.
    pub fn server_command(&self, program: &Path) -> Command {
        let mut cmd = match (&self.server_user, running_as_root()) {
            (Some(user), true) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(program);
                c
            }
            _ => Command::new(program),
        };
        // The server user may not be able to enter our working directory (e.g. /root).
        cmd.current_dir("/");
        cmd.env_remove("PGDATA");
        cmd
    }

    /// The timeline of the cluster's latest checkpoint (`pg_controldata`), running or not;
    /// `None` when there is no cluster.
    pub fn timeline(&self) -> anyhow::Result<Option<u32>> {
        if !self.is_initialized() {
            return Ok(None);
        }
        let bindir = self.bindir()?;
        let out = self
            .server_command(&bindir.join("pg_controldata"))
            .arg("-D")
            .arg(&self.pgdata)
            .env("LC_ALL", "C")
            .output()
            .context("cannot run pg_controldata")?;
        check_output("pg_controldata", &out)?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("Latest checkpoint's TimeLineID:"))
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "pg_controldata printed no timeline for {}",
                    self.pgdata.display()
                )
            })
    }

    /// Removes the whole embedded data directory's cluster (`psql/`). The caller stops the
    /// server first.
    pub fn remove(&self) -> anyhow::Result<()> {
        if self.live_postmaster_pid()?.is_some() {
            bail!("server is still running; stop it first");
        }
        if self.pgdata.exists() {
            fs::remove_dir_all(&self.pgdata)
                .with_context(|| format!("cannot remove {}", self.pgdata.display()))?;
        }
        Ok(())
    }

    /// Takes the data-dir lock, or exits 7 when another backup or restore holds it.
    pub fn lock_data_dir(&self) -> anyhow::Result<DirLock> {
        fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create {}", self.data_dir.display()))?;
        let path = self.data_dir.join(".jobdbctl-backup.lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when the file closes (or we die).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(failure(
                Exit::Locked,
                format!(
                    "another jobdbctl backup or restore is running on {} (lock {}); wait for it to finish",
                    self.pgdata.display(),
                    path.display()
                ),
            ));
        }
        Ok(DirLock { _file: file })
    }
}

/// The archive_command that pushes the server's WAL into `dir`: `EXE wal-push --to DIR %p`.
fn archive_command(exe: &Path, dir: &Path) -> String {
    format!("{}{}", exe.display(), push_into(dir))
}

/// Whether `command`, a server's archive_command, is the one that pushes into `dir` (a
/// server started before wal_archive changed pushes elsewhere).
pub fn archives_into(command: &str, dir: &Path) -> bool {
    command.ends_with(&push_into(dir))
}

fn push_into(dir: &Path) -> String {
    format!(" wal-push --to {} %p", dir.display())
}

/// pg_ctl's `-t` in whole seconds, rounded up so a wait is never shorter than asked.
fn pg_ctl_seconds(timeout: Duration) -> String {
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    secs.max(1).to_string()
}

/// Whether process `pid` is gone or a zombie (exited, not yet reaped).
fn has_exited(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state == "Z" || state == "X")
        })
        .unwrap_or(true)
}

fn is_postgres_process(pid: i32) -> bool {
    // /proc/<pid>/comm is "postgres" for the postmaster (older builds: "postmaster").
    match fs::read_to_string(format!("/proc/{pid}/comm")) {
        Ok(comm) => {
            let comm = comm.trim();
            comm == "postgres" || comm == "postmaster"
        }
        Err(_) => false,
    }
}

/// Creates `dir` (and parents) with mode 0700, owned by `owner` when given and we are root.
fn create_private_dir(dir: &Path, owner: Option<&str>) -> anyhow::Result<()> {
    if !dir.exists() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot chmod {}", dir.display()))?;
    }
    if let (Some(user), true) = (owner, running_as_root()) {
        let (uid, gid) = lookup_user(user)?;
        // On the open directory: a link at its name is refused, never chowned through.
        let opened = safe_fs::open_dir(dir)
            .with_context(|| format!("cannot open {} without following a link", dir.display()))?;
        let meta = opened
            .metadata()
            .with_context(|| format!("cannot stat {}", dir.display()))?;
        if meta.uid() != uid {
            std::os::unix::fs::fchown(&opened, Some(uid), Some(gid))
                .with_context(|| format!("cannot chown {} to {user}", dir.display()))?;
        }
    }
    Ok(())
}

/// The login name of `uid`, or the number when the user database has none.
fn user_name(uid: u32) -> String {
    login_name(uid).unwrap_or_else(|| format!("uid {uid}"))
}

pub fn lookup_user(user: &str) -> anyhow::Result<(u32, u32)> {
    let out = Command::new("id")
        .args(["-u", user])
        .output()
        .context("cannot run id")?;
    let gid_out = Command::new("id")
        .args(["-g", user])
        .output()
        .context("cannot run id")?;
    let parse = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse::<u32>()
            .ok()
    };
    match (out.status.success(), parse(&out), parse(&gid_out)) {
        (true, Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => bail!(
            "server user {user:?} does not exist; create it (Debian's postgresql package does) or set server_user in jobdbctl.toml"
        ),
    }
}

fn check_output(what: &str, out: &Output) -> anyhow::Result<()> {
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let message = stderr
        .lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("no output");
    bail!("{what} failed ({}): {message}", out.status)
}

/// The FATAL/ERROR lines the server logged since `offset`, joined on one line.
fn log_errors_since(cluster: &Cluster, offset: u64) -> Option<String> {
    let mut file = cluster.open_file(Path::new(START_LOG)).ok()??;
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut text).ok()?;
    let new = String::from_utf8_lossy(text.get(offset as usize..)?).to_string();
    let errors: Vec<&str> = new
        .lines()
        .filter(|l| l.contains("FATAL") || l.contains("ERROR") || l.contains("HINT"))
        .collect();
    (!errors.is_empty()).then(|| errors.join(" | "))
}
