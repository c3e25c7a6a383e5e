//! The shared context every command gets: configuration, where the database is, how to
//! print. Built once in `main`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::cli::GlobalArgs;
use crate::cluster::{Cluster, ServerState};
use crate::config::{Config, FlagValues};
use crate::db::pooler::{self, Pooling, SecondSession};
use crate::db::profile::{self, ProfileChoice};
use crate::db::{schema, status, Db, Profile};
use crate::error::{failure, Exit};
use crate::output::Output;
use crate::target::Target;

/// The longest pause while a connection slot the pooler check's second connection held comes
/// free (pauses double from 25 ms: five tries in 0.8 s).
const MAX_SLOT_PAUSE: Duration = Duration::from_millis(400);

pub struct Ctx {
    pub config: Config,
    pub target: Target,
    pub out: Output,
    pub verbose: bool,
    profile_choice: Option<ProfileChoice>,
    /// Set once a connection showed the target keeps sessions apart (see `connect`).
    sessions_checked: AtomicBool,
    /// The pooler probe's second connection, closing while the run goes on.
    probe_session: Mutex<Option<SecondSession>>,
}

impl Ctx {
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Ctx> {
        let config = Config::load(FlagValues {
            configdir: global.configdir.clone(),
            database_url: global.database_url.clone(),
            data_dir: global.data_dir.clone(),
            profile: global.profile.map(|p| match p {
                ProfileChoice::Jobdb => "jobdb".to_string(),
                ProfileChoice::GraphileWorker => "graphile-worker".to_string(),
            }),
            schema: global.schema.clone(),
            stale_after: global.stale_after,
        })?;
        let profile_choice = match &config.profile {
            Some(p) => Some(ProfileChoice::parse(&p.value)?),
            None => None,
        };
        let target = Target::resolve(&config)?;
        Ok(Ctx {
            config,
            target,
            out: Output {
                json: global.json,
                quiet: global.quiet,
            },
            verbose: global.verbose > 0,
            profile_choice,
            sessions_checked: AtomicBool::new(false),
            probe_session: Mutex::new(None),
        })
    }

    pub fn connect(&self) -> anyhow::Result<Db> {
        if let Some(cluster) = self.target.cluster() {
            // Retrying a stopped embedded server only delays the answer.
            let state = cluster.state()?;
            if state == ServerState::NotInitialized {
                return Err(cluster.no_cluster());
            }
            if !matches!(state, ServerState::Running(_)) {
                return Err(failure(
                    Exit::Connect,
                    format!(
                        "server not running ({}); start it with `jobdbctl start`",
                        cluster.describe()
                    ),
                ));
            }
        }
        if let Some(second) = self.probe_session.lock().ok().and_then(|mut s| s.take()) {
            second.finish();
        }
        let out = self.out;
        let timeout = self.config.connect_timeout.value;
        // The embedded cluster is reached on its own socket, with no pooler in between.
        // Elsewhere one check per run is enough: every connection goes the same way. The
        // check's second connection opens alongside this one, so its start adds nothing to
        // the run's; it never keeps this one out (`pooler::Second`).
        let check =
            self.target.cluster().is_none() && !self.sessions_checked.load(Ordering::Relaxed);
        let mut second = check.then(|| pooler::Second::early(&self.target, timeout, self.verbose));
        let connect = || Db::connect(&self.target, timeout, self.verbose, &|m| out.warn(m));
        let watch = second.as_ref().map(pooler::Second::watch);
        let connected = connect();
        drop(watch);
        let mut db = match connected {
            Ok(db) => db,
            // No slot left (of the server, the role, the database or a pooler): the second
            // connection may hold it. It goes, and this one tries again while the slot
            // comes free.
            Err(e) if crate::db::no_connection_slot(&e) && second.is_some() => {
                // Even a second connection that did not get in counts: two logins at once can
                // both be refused by a limit that would have let one in.
                if let Some(second) = second.take() {
                    second.stop(timeout);
                }
                let mut pause = Duration::from_millis(25);
                loop {
                    match connect() {
                        Ok(db) => break db,
                        Err(e) if crate::db::no_connection_slot(&e) && pause <= MAX_SLOT_PAUSE => {
                            std::thread::sleep(pause);
                            pause *= 2;
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Err(e) => return Err(e),
        };
        db.on_warning(move |message| out.warn(message));
        if check {
            // Opened again, now that this one is in, if it made way.
            let second = second
                .unwrap_or_else(|| pooler::Second::start(&self.target, timeout, self.verbose));
            self.refuse_shared_sessions(&mut db, timeout, second)?;
            self.sessions_checked.store(true, Ordering::Relaxed);
        }
        Ok(db)
    }

    /// One more connection for a backup's COPY stream, after [`Ctx::connect`] has reached the
    /// server (and checked for a pooler) in this run.
    pub fn connect_stream(&self) -> anyhow::Result<crate::db::snapshot::Stream> {
        crate::db::snapshot::Stream::connect(
            &self.target,
            self.config.connect_timeout.value,
            self.verbose,
        )
    }

    /// Refuses (exit 3) a pooler in transaction or statement mode before anything changes:
    /// the run's locks and settings live in its session, which such a pooler shares.
    fn refuse_shared_sessions(
        &self,
        db: &mut Db,
        timeout: std::time::Duration,
        second: pooler::Second,
    ) -> anyhow::Result<()> {
        let (pooling, second) = pooler::probe(db, &self.target, timeout, second)?;
        if let Ok(mut slot) = self.probe_session.lock() {
            *slot = Some(second);
        }
        let (mode, evidence) = match pooling {
            Pooling::Session => return Ok(()),
            Pooling::Transaction(evidence) => ("transaction", evidence),
            Pooling::Statement(evidence) => ("statement", evidence),
        };
        Err(failure(
            Exit::Refused,
            format!(
                "{} is behind a connection pooler in {mode} pooling mode ({evidence}): jobdbctl's locks \
                 and settings live in its session, which such a pool shares with other clients; \
                 connect directly to PostgreSQL, or through a pool in session mode",
                self.target.describe()
            ),
        ))
    }

    /// The embedded cluster, or a clear refusal when this run targets another server.
    pub fn cluster(&self, command: &str) -> anyhow::Result<&Cluster> {
        self.target.cluster().ok_or_else(|| {
            failure(
                Exit::Usage,
                format!(
                    "{command} manages the embedded cluster only; this run targets {}. Manage that server with its own tools",
                    self.target.describe()
                ),
            )
        })
    }

    pub fn schema_override(&self) -> Option<&str> {
        self.config.schema.as_ref().map(|s| s.value.as_str())
    }

    /// The schema name `init` creates: `--schema`, else the native default.
    pub fn native_schema(&self) -> &str {
        self.schema_override().unwrap_or(schema::DEFAULT_SCHEMA)
    }

    pub fn detect_profile(&self, db: &mut Db) -> anyhow::Result<Option<Profile>> {
        profile::detect(db, self.profile_choice, self.schema_override())
    }

    /// The job schema, or an error telling the operator to run `init`.
    pub fn profile(&self, db: &mut Db) -> anyhow::Result<Profile> {
        self.detect_profile(db)?.ok_or_else(|| {
            let looked = match self.profile_choice {
                Some(c) => format!(
                    "schema {:?}",
                    self.schema_override().unwrap_or(c.default_schema())
                ),
                None => format!(
                    "schema {:?} (jobdb) or {:?} (graphile-worker)",
                    self.schema_override().unwrap_or(schema::DEFAULT_SCHEMA),
                    self.schema_override()
                        .unwrap_or(profile::GRAPHILE_DEFAULT_SCHEMA)
                ),
            };
            failure(
                Exit::Runtime,
                format!(
                    "no job schema found in {} ({looked}); run `jobdbctl init` to create one",
                    self.target.describe()
                ),
            )
        })
    }

    /// The profile for a command that writes: refuses (exit 3) a native schema newer than
    /// this binary knows, since its rules about the data may have changed.
    pub fn writable_profile(&self, db: &mut Db) -> anyhow::Result<Profile> {
        if db.is_in_recovery()? {
            return Err(failure(
                Exit::Refused,
                format!(
                    "{} is a standby (read-only); run this against the primary \
                     (list every host and add target_session_attrs=read-write to the URL)",
                    self.target.describe()
                ),
            ));
        }
        let profile = self.profile(db)?;
        if profile.is_native() {
            let version = status::schema_version(db, &profile)?.unwrap_or(0);
            let latest = schema::latest_version();
            if version > latest {
                return Err(failure(
                    Exit::Refused,
                    format!(
                        "the job schema is at version {version} but this jobdbctl ({}) knows versions up to {latest}; \
                         use a jobdbctl that supports schema version {version}",
                        env!("CARGO_PKG_VERSION")
                    ),
                ));
            }
        }
        Ok(profile)
    }
}
