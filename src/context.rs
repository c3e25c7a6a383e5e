//! The shared context every command gets: configuration, where the database is, how to
//! print, how to connect. Built once per run by `commands::run`.

use crate::cluster::{Cluster, ServerState};
use crate::config::{Config, FlagValues};
use crate::db::connect::Connector;
use crate::db::profile::{self, ProfileChoice};
use crate::db::{schema, status, Db, Profile};
use crate::error::{failure, Exit};
use crate::output::Output;
use crate::storage::Places;
use crate::target::Target;

pub struct Ctx {
    pub config: Config,
    pub target: Target,
    pub out: Output,
    pub verbose: bool,
    /// Where archives are: directories and `s3://` URLs.
    pub places: Places,
    profile_choice: Option<ProfileChoice>,
    connector: Connector,
}

impl Ctx {
    /// The context of a run with these command-line values, printing through `out`.
    pub fn new(flags: FlagValues, out: Output, verbose: bool) -> anyhow::Result<Ctx> {
        let config = Config::load(flags)?;
        let profile_choice = match &config.profile {
            Some(p) => Some(ProfileChoice::parse(&p.value)?),
            None => None,
        };
        let target = Target::resolve(&config)?;
        Ok(Ctx {
            places: Places::new(&config.s3, verbose),
            config,
            target,
            out,
            verbose,
            profile_choice,
            connector: Connector::default(),
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
        self.connector.connect(
            &self.target,
            self.config.connect_timeout.value,
            self.verbose,
            self.out,
        )
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
