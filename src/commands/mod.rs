//! One module per subcommand, each `run(args, &ctx)` reading like the runbook step it
//! automates: its Args (defined in `crate::cli`), a call into an engine (`crate::backup`,
//! `crate::restore`, `crate::background_migrations`, ...) or into `crate::db` for a single
//! step, and the report (human table, JSON, exit code). Commands never import each other;
//! what two share is an engine.

pub mod background_migrations;
pub mod backup;
pub mod backups;
pub mod completions;
pub mod conninfo;
pub mod destroy;
pub mod finalize_migration;
pub mod init;
pub mod job_logs;
pub mod logs;
pub mod man;
pub mod migrate;
pub mod purge_archive;
pub mod purge_jobs;
pub mod restart;
pub mod restore;
pub mod set_job_counter;
pub mod show_params;
pub mod start;
pub mod status;
pub mod stop;
pub mod unlock_stale_jobs;
pub mod vacuum;
pub mod verify;
pub mod wal_fetch;
pub mod wal_push;

use crate::cli::{Cli, Command};
use crate::config::FlagValues;
use crate::context::Ctx;
use crate::error::Exit;
use crate::output::Output;

pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    // Generators need no configuration: they must work on a machine with none.
    let out = Output {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    match cli.command {
        Command::Completions(args) => return completions::run(args, out),
        Command::Man(args) => return man::run(args, out),
        // The server runs these as its own user, who may not read jobdbctl.toml.
        Command::WalPush(args) => return wal_push::run(args, out),
        Command::WalFetch(args) => return wal_fetch::run(args, out),
        _ => {}
    }
    let global = cli.global;
    let flags = FlagValues {
        configdir: global.configdir,
        database_url: global.database_url,
        data_dir: global.data_dir,
        profile: global.profile.map(|p| p.name().to_string()),
        schema: global.schema,
        stale_after: global.stale_after,
    };
    let ctx = Ctx::new(flags, out, global.verbose > 0)?;
    match cli.command {
        Command::Init(args) => init::run(args, &ctx),
        Command::Start(args) => start::run(args, &ctx),
        Command::Stop(args) => stop::run(args, &ctx),
        Command::Restart(args) => restart::run(args, &ctx),
        Command::Status(args) => status::run(args, &ctx),
        Command::ShowParams(args) => show_params::run(args, &ctx),
        Command::Conninfo(args) => conninfo::run(args, &ctx),
        Command::Destroy(args) => destroy::run(args, &ctx),
        Command::SetJobCounter(args) => set_job_counter::run(args, &ctx),
        Command::UnlockStaleJobs(args) => unlock_stale_jobs::run(args, &ctx),
        Command::FinalizeMigration(args) => finalize_migration::run(args, &ctx),
        Command::BackgroundMigrations(args) => background_migrations::run(args, &ctx),
        Command::Migrate(args) => migrate::run(args, &ctx),
        Command::Backup(args) => backup::run(args, &ctx),
        Command::Restore(args) => restore::run(args, &ctx),
        Command::Verify(args) => verify::run(args, &ctx),
        Command::JobLogs(args) => job_logs::run(args, &ctx),
        Command::PurgeJobs(args) => purge_jobs::run(args, &ctx),
        Command::PurgeArchive(args) => purge_archive::run(args, &ctx),
        Command::Vacuum(args) => vacuum::run(args, &ctx),
        Command::Logs(args) => logs::run(args, &ctx),
        Command::Backups(args) => backups::run(args, &ctx),
        Command::Completions(_) | Command::Man(_) | Command::WalPush(_) | Command::WalFetch(_) => {
            unreachable!("handled above")
        }
    }
}
