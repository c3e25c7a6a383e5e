//! Writing a backup archive (see `crate::archive` for the format).
//!
//! What a backup guarantees:
//! - It only reads the database. An online backup is one `REPEATABLE READ, READ ONLY`
//!   snapshot shared by every COPY stream, so the archive is the job schema as of one
//!   instant while the engine keeps running; it holds off DDL on the schema (ACCESS SHARE),
//!   not job traffic. The `backup` operation lock makes a second backup or restore of the
//!   same database exit 7.
//! - An archive appears under its final name only complete: it is written as
//!   `PATH.partial`, fsynced, renamed, and the directory fsynced. On any error the
//!   `.partial` is removed; a kill -9 leaves at most a `.partial`, never a truncated archive
//!   under the final name. Everything it creates is mode 0600. Nothing already at either
//!   name is written through (see `destination`).
//! - A cold backup stops the embedded server (holding the data-dir lock, exit 7 for a
//!   second run) and starts it again if it was running, also when archiving fails. A kill -9
//!   during a cold backup leaves the data directory untouched but the server stopped.
//! - `--keep`/`--keep-within` prune only after the new archive is complete, and only
//!   complete archives jobdbctl named itself (see `retention`); a pruning failure fails the
//!   run but leaves the new archive in place.

pub mod catalog;
mod cold;
mod destination;
mod online;
mod physical;
pub mod report;
mod retention;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::archive::crypt::{Keys, Seal};
use crate::archive::{Codec, Manifest, Mode};
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::target::{redacted_url, Target};

pub use self::catalog::Source;
pub use self::retention::{Policy, Pruned};

/// What to back up and where; built by `backup` and `destroy --backup-first`.
pub struct Request<'a> {
    pub mode: Mode,
    /// A file, a directory for a timestamped name, `-` for standard output; `None` is a
    /// timestamped name in backup_dir.
    pub output: Option<PathBuf>,
    /// Prune to the newest N archives of this database afterwards.
    pub keep: Option<u32>,
    pub keep_within: Option<Duration>,
    /// Never to be pruned, even under a name jobdbctl chose (`destroy --backup-first`).
    pub pinned: bool,
    pub space_check: bool,
    pub codec: Codec,
    /// Encrypt the archive (see `archive::crypt`).
    pub seal: Option<&'a Seal>,
}

/// What a backup wrote.
pub struct Done {
    /// The archive's final name; `None` when it went to standard output.
    pub path: Option<PathBuf>,
    pub bytes: u64,
    pub manifest: Manifest,
    pub pruned: Vec<PathBuf>,
    /// Archives pruning found damaged: kept, not counted.
    pub damaged: Vec<PathBuf>,
    /// Why pruning failed after the archive was complete (the backup still succeeded).
    pub prune_error: Option<String>,
    pub seconds: f64,
}

/// Writes one archive as the request says; also the first step of `destroy --backup-first`.
pub fn backup(ctx: &Ctx, request: &Request) -> anyhow::Result<Done> {
    // The archive's name as printed, logged and pruned by is absolute.
    let absolute = request
        .output
        .as_deref()
        .filter(|o| *o != Path::new("-"))
        .map(|o| {
            let mut path = crate::config::absolute(o, None);
            // `--output DIR/` means a directory even when it does not exist yet.
            if o.as_os_str().to_string_lossy().ends_with('/') {
                path.push("");
            }
            path
        });
    let request = &Request {
        output: absolute.or_else(|| request.output.clone()),
        ..*request
    };
    // Archives hold every job's payload: nothing this run creates is readable by others.
    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(0o077) };
    let started = Instant::now();
    destination::preflight(ctx, request.output.as_deref())?;
    let mut done = match request.mode {
        Mode::Online => online::backup(ctx, request)?,
        Mode::Cold => cold::backup(ctx, request)?,
        Mode::Physical => physical::backup(ctx, request)?,
    };
    let policy = retention::Policy {
        keep: request.keep.map(|n| n as usize),
        within: request.keep_within,
    };
    if let (true, Some(path)) = (policy.prunes(), done.path.as_ref()) {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let source = Source::of(&done.manifest);
        let latest = Some((path.as_path(), &done.manifest));
        // The archive is complete: a prune that fails now is a warning (and `prune_error`
        // in JSON), never a failed backup that cron would retry; `backups prune` alone fails.
        let store = ctx.places.at(dir)?;
        // Encrypted archives count by their meta stanza: a cron backup holds no secret key.
        let no_keys = Keys::default();
        let pruned =
            match retention::prune(&*store, &no_keys, &source, latest, &policy, false, &|_| {
                Ok(())
            }) {
                Ok(pruned) => pruned,
                Err(e) => {
                    done.prune_error = Some(prune_failed(ctx, path, "archives", &e));
                    done.seconds = started.elapsed().as_secs_f64();
                    return Ok(done);
                }
            };
        for p in &pruned.future {
            ctx.out.warn(format!(
                "kept {} without counting it: it is dated in the future (a wrong clock when it was written, or planted); check it and delete it by hand",
                p.display()
            ));
        }
        for (p, why) in &pruned.damaged {
            ctx.out.warn(format!(
                "kept {} without counting it: {why}; check it with `jobdbctl verify` and delete it by hand",
                p.display()
            ));
        }
        if pruned.unmarked > 0 {
            ctx.out.info(format!(
                "{} archive(s) of this database in {} predate retention marks and are never pruned; delete them by hand when no longer needed",
                pruned.unmarked,
                path.parent().unwrap_or(path).display()
            ));
        }
        for p in &pruned.removed {
            ctx.out.info(format!("removed old archive {}", p.display()));
        }
        for p in &pruned.abandoned {
            ctx.out.info(format!(
                "removed {} (a run killed over a day ago)",
                p.display()
            ));
        }
        done.pruned = pruned.removed;
        done.damaged = pruned.damaged.into_iter().map(|(p, _)| p).collect();
        // WAL follows the base backups kept; a failure here is the same warning as above.
        match prune_wal(ctx, dir, false) {
            Ok(Some(wal)) => report_wal_pruned(ctx, &wal),
            Ok(None) => {}
            Err(e) => done.prune_error = Some(prune_failed(ctx, path, "WAL", &e)),
        }
    }
    done.seconds = started.elapsed().as_secs_f64();
    Ok(done)
}

/// The server and database this run targets, as archives taken from them record it; known
/// without connecting.
pub fn this_source(ctx: &Ctx) -> Source {
    let database = match &ctx.target {
        Target::Embedded(_) => crate::cluster::DATABASE.to_string(),
        Target::Remote(r) => r.pg.get_dbname().unwrap_or_default().to_string(),
    };
    Source {
        server: server_label(&ctx.target),
        database,
    }
}

/// The backup directory: `dir` when given, else backup_dir from the configuration.
pub fn directory(ctx: &Ctx, dir: Option<&Path>) -> PathBuf {
    dir.map(|d| crate::config::absolute(d, None))
        .unwrap_or_else(|| ctx.config.backup_dir.value.clone())
}

/// The archives in `dir`, each read as deeply as `depth` says (see `catalog::scan`).
pub fn list(
    ctx: &Ctx,
    dir: &Path,
    keys: &Keys,
    depth: &catalog::DepthFor,
) -> anyhow::Result<Vec<catalog::Item>> {
    catalog::scan(&*ctx.places.at(dir)?, keys, depth)
}

/// `backups prune`: prunes this database's archives in `dir` as `policy` says; `confirm`
/// sees what would be deleted first (see `retention::prune`).
pub fn prune(
    ctx: &Ctx,
    dir: &Path,
    keys: &Keys,
    policy: &Policy,
    dry_run: bool,
    confirm: &dyn Fn(&[PathBuf]) -> anyhow::Result<()>,
) -> anyhow::Result<Pruned> {
    retention::prune(
        &*ctx.places.at(dir)?,
        keys,
        &this_source(ctx),
        None,
        policy,
        dry_run,
        confirm,
    )
}

/// The warning for a prune that failed after the archive was complete; the reason, for
/// `prune_error`.
fn prune_failed(ctx: &Ctx, path: &Path, what: &str, e: &anyhow::Error) -> String {
    let why = format!("{e:#}");
    ctx.out.warn(format!(
        "backup written to {}, but old {what} could not be pruned: {why}; run `jobdbctl backups prune` to retry",
        path.display()
    ));
    why
}

/// With `wal_archive`: removes the archived WAL that no physical archive kept in `dir` needs
/// (see `wal::bases::prune`); `None` when there is no WAL archive or no base backup is kept.
pub fn prune_wal(
    ctx: &Ctx,
    dir: &Path,
    dry_run: bool,
) -> anyhow::Result<Option<crate::wal::bases::Pruned>> {
    let Some(archive) = wal_archive(ctx)? else {
        return Ok(None);
    };
    let items = catalog::scan(&*ctx.places.at(dir)?, &Keys::default(), &|_| {
        catalog::Depth::Header
    })?;
    crate::wal::bases::prune(&archive, &base_labels(ctx, &items), dry_run)
}

/// The embedded cluster's WAL archive, when wal_archive is set and it exists.
pub fn wal_archive(ctx: &Ctx) -> anyhow::Result<Option<crate::wal::Archive>> {
    let Some(location) = crate::wal::points::archive_of(&ctx.target) else {
        return Ok(None);
    };
    let archive = crate::wal::Archive::open(location, &ctx.places)?;
    Ok(archive.store.exists().then_some(archive))
}

/// The labels of this database's physical archives among `items`, damaged ones too: WAL is
/// never the reason a backup cannot be recovered.
fn base_labels(ctx: &Ctx, items: &[catalog::Item]) -> Vec<String> {
    let source = this_source(ctx);
    items
        .iter()
        .filter(|i| i.state != catalog::State::Partial && i.source().as_ref() == Some(&source))
        .filter_map(|i| i.header.as_ref()?.base_label.as_deref().map(str::to_string))
        .collect()
}

/// With `wal_archive`: the recoverable window of the physical archives among `items` (a
/// backup directory's listing; see `wal::bases::window`).
pub fn wal_window(
    ctx: &Ctx,
    items: &[catalog::Item],
) -> anyhow::Result<Option<crate::wal::bases::Window>> {
    let Some(archive) = wal_archive(ctx)? else {
        return Ok(None);
    };
    crate::wal::bases::window(&archive, &base_labels(ctx, items))
}

/// One line for what `prune_wal` removed.
pub fn report_wal_pruned(ctx: &Ctx, wal: &crate::wal::bases::Pruned) {
    if wal.files.is_empty() && wal.records.is_empty() {
        return;
    }
    ctx.out.info(format!(
        "removed {} archived WAL file(s) and {} record(s) from before {}, which no kept base backup needs",
        wal.files.len(),
        wal.records.len(),
        wal.from
    ));
}

/// `backups check` and `status`: this database's newest archive in `dir` (a `.partial` is
/// not one), read as deeply as `depth` says (`Full` reads only the newest in full); `None`
/// when there is none.
pub fn newest(
    ctx: &Ctx,
    dir: &Path,
    keys: &Keys,
    depth: catalog::Depth,
) -> anyhow::Result<Option<catalog::Item>> {
    let source = this_source(ctx);
    let verify = depth == catalog::Depth::Full;
    let depth = |m: &Manifest| match (Source::of(m) == source, depth) {
        (true, catalog::Depth::Ends) => catalog::Depth::Ends,
        // Only the newest is read in full, below.
        _ => catalog::Depth::Header,
    };
    let store = ctx.places.at(dir)?;
    let items = catalog::scan(&*store, keys, &depth)?;
    let Some(mut item) = items
        .into_iter()
        .find(|i| i.state != catalog::State::Partial && i.source().as_ref() == Some(&source))
    else {
        return Ok(None);
    };
    if verify {
        item.verify(&*store, keys);
    }
    Ok(Some(item))
}

/// `restore latest`: the newest online or cold archive of this database in `dir` that reads completely
/// (as `verify` reads it) and is a regular file of this user; newer damaged ones are skipped
/// with a warning. None is exit 2 (nothing to restore); only damaged ones is exit 5.
pub fn latest(ctx: &Ctx, dir: &Path, keys: &Keys) -> anyhow::Result<PathBuf> {
    // A base backup alone is a cluster as of hours ago; it is restored to a point on purpose
    // (`restore --to-*`), never in place of the newest logical or cold archive.
    newest_complete(ctx, dir, keys, true, "online or cold archive", &|h| {
        h.mode != Mode::Physical
    })
}

/// For a point-in-time restore: the newest complete physical archive of this database in
/// `dir` whose base backup ended early enough for the target (`fits`, given the label of its
/// header and `bases`, what the WAL archive recorded of its end).
pub fn base_for(
    ctx: &Ctx,
    dir: &Path,
    keys: &Keys,
    bases: &[crate::wal::bases::Base],
    fits: &dyn Fn(&crate::wal::bases::Base) -> bool,
) -> anyhow::Result<PathBuf> {
    let labels: Vec<&str> = bases
        .iter()
        .filter(|b| fits(b))
        .map(|b| b.label.as_str())
        .collect();
    newest_complete(
        ctx,
        dir,
        keys,
        false,
        "physical archive that ends before the target",
        &|h| {
            h.mode == Mode::Physical && h.base_label.as_deref().is_some_and(|l| labels.contains(&l))
        },
    )
}

/// The newest archive of this database in `dir` whose header `accept` takes, that is a
/// regular file of this user and, with `verify`, reads completely (see `latest`); `kind`
/// names what was looked for.
fn newest_complete(
    ctx: &Ctx,
    dir: &Path,
    keys: &Keys,
    verify: bool,
    kind: &str,
    accept: &dyn Fn(&catalog::Header) -> bool,
) -> anyhow::Result<PathBuf> {
    let source = this_source(ctx);
    let what = format!("database {:?} on {}", source.database, source.server);
    let store = ctx.places.at(dir)?;
    let items = match catalog::scan(&*store, keys, &|_| catalog::Depth::Header) {
        Err(e) if !store.exists() => {
            return Err(failure(
                Exit::Usage,
                format!(
                    "no backup directory {} ({e:#}); give an archive path or --dir DIR",
                    dir.display()
                ),
            ))
        }
        other => other?,
    };
    let mut skipped = 0;
    // A file another user put there is not ours to load, however new it claims to be.
    for mut item in items.into_iter().filter(|i| {
        i.owner == crate::safe_fs::euid()
            && i.state != catalog::State::Partial
            && i.source().as_ref() == Some(&source)
            && i.header.as_deref().is_some_and(accept)
    }) {
        if item.future_dated() {
            ctx.out.warn(format!(
                "skipping {}: it is dated {}, in the future (a wrong clock when it was written, or planted); restore it by path if it is the one you want",
                item.path().display(),
                item.taken_at().map(|t| t.to_rfc3339()).unwrap_or_default()
            ));
            continue;
        }
        if item.encrypted && keys.is_empty() {
            // Never an older archive in its place: the newest is the one asked for.
            return Err(failure(
                Exit::BadArchive,
                format!(
                    "the newest archive of {what}, {}, is encrypted; give its key with --identity FILE or --passphrase-file FILE",
                    item.path().display()
                ),
            ));
        }
        // A point-in-time restore checks the archive as it extracts it, beside the
        // running server: a damaged one fails there (exit 5) with nothing replaced, and a
        // first read of gigabytes here would only add time.
        if !verify {
            return Ok(item.path());
        }
        item.verify(&*store, keys);
        if item.state == catalog::State::Complete {
            return Ok(item.path());
        }
        skipped += 1;
        ctx.out.warn(format!(
            "skipping damaged archive {}: {}",
            item.path().display(),
            item.problem.unwrap_or_default()
        ));
    }
    Err(if skipped > 0 {
        failure(
            Exit::BadArchive,
            format!(
                "no complete {kind} of {what} in {}: all {skipped} found are damaged; restore an archive from elsewhere by path",
                dir.display()
            ),
        )
    } else {
        failure(
            Exit::Usage,
            format!(
                "no {kind} of {what} in {}; give an archive path, or --dir DIR where its backups are",
                dir.display()
            ),
        )
    })
}

/// Names the server without credentials, so `--keep` can tell archives of this database
/// from others in the same directory.
fn server_label(target: &Target) -> String {
    match target {
        Target::Embedded(c) => format!("embedded cluster {}", c.pgdata.display()),
        Target::Remote(r) => {
            let url = redacted_url(&r.pg);
            match url.split_once('@') {
                Some((_, rest)) => format!("postgresql://{rest}"),
                None => url,
            }
        }
    }
}

fn header(ctx: &Ctx, mode: Mode, database: String) -> Manifest {
    Manifest::new(mode, server_label(&ctx.target), database)
}

/// Compression threads.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
