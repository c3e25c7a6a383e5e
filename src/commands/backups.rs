use std::path::{Path, PathBuf};

use serde_json::json;

use crate::backup::catalog::{Depth, State};
use crate::backup::report;
use crate::backup::{self, Policy};
use crate::cli::backups::{
    Action, BackupsArgs, CheckArgs, DirArg, ListArgs, PruneArgs, VerifyArgs,
};
use crate::context::Ctx;
use crate::error::{failure, Exit};
use crate::output::{confirm, printable, table};
use crate::wal::points;

pub fn run(args: BackupsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    match args.action {
        None => list(args.list, ctx),
        Some(Action::List(list_args)) => list(list_args, ctx),
        Some(Action::Verify(VerifyArgs { dir, wide })) => list(
            ListArgs {
                dir,
                verify: true,
                wide,
            },
            ctx,
        ),
        Some(Action::Prune(prune_args)) => prune(prune_args, ctx),
        Some(Action::Check(check_args)) => check(check_args, ctx),
        Some(Action::Points) => restore_points(ctx),
    }
}

fn restore_points(ctx: &Ctx) -> anyhow::Result<Exit> {
    let archive = points::open_archive(&ctx.target, &ctx.places)?;
    let points = points::list(&archive)?;
    if ctx.out.json {
        return ctx.out.json_array(points.iter()).map(|()| Exit::Ok);
    }
    if points.is_empty() {
        ctx.out.line(format!(
            "no restore points recorded in {}",
            archive.describe()
        ))?;
        return Ok(Exit::Ok);
    }
    let mut t = table(&["name", "made", "lsn", "WAL segment", "by"]);
    for p in &points {
        t.add_row(vec![
            p.name.clone(),
            p.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            p.lsn.clone(),
            p.segment.clone(),
            printable(&p.reason, 80),
        ]);
    }
    ctx.out.line(t.to_string())?;
    Ok(Exit::Ok)
}

/// The directory to read; a missing one is an error only when it was named explicitly.
fn directory(ctx: &Ctx, dir: &DirArg) -> anyhow::Result<Option<PathBuf>> {
    let path = backup::directory(ctx, dir.dir.as_deref());
    if crate::storage::is_url(&path) {
        // A bucket's listing says itself whether it is there.
        return Ok(Some(path));
    }
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.is_dir() => Ok(Some(path)),
        Ok(_) => Err(failure(
            Exit::Usage,
            format!("{} is not a directory; pass --dir DIR", path.display()),
        )),
        Err(_) if dir.dir.is_none() => Ok(None),
        Err(e) => Err(failure(
            Exit::Usage,
            format!("cannot read backup directory {}: {e}", path.display()),
        )),
    }
}

fn list(args: ListArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let depth = if args.verify {
        Depth::Full
    } else {
        Depth::Ends
    };
    let keys = args.dir.keys.keys(&ctx.config)?;
    let found = directory(ctx, &args.dir)?;
    let items = match &found {
        Some(dir) => backup::list(ctx, dir, &keys, &|_| depth)?,
        None => {
            ctx.out.info(format!(
                "no backup directory {} yet: no backups",
                backup::directory(ctx, None).display()
            ));
            Vec::new()
        }
    };
    if ctx.out.json {
        ctx.out.json_array(items.iter().map(report::json))?;
    } else {
        ctx.out
            .line(report::listing(&items, args.verify, args.wide))?;
        if let Some(window) = backup::wal_window(ctx, &items)? {
            ctx.out.line(window_line(&window))?;
        }
    }
    // Each with why: the plain listing reads only the ends, so it cannot show what a full
    // read found in the middle.
    let damaged: Vec<String> = items
        .iter()
        .filter(|i| i.state == State::Damaged)
        .map(|i| {
            format!(
                "{} ({})",
                i.path().display(),
                i.problem.as_deref().unwrap_or("unreadable")
            )
        })
        .collect();
    let unread: Vec<String> = items
        .iter()
        .filter(|i| i.encrypted && i.state == State::Unverified)
        .map(|i| i.path().display().to_string())
        .collect();
    if args.verify && damaged.is_empty() && !unread.is_empty() {
        return Err(failure(
            Exit::BadArchive,
            format!(
                "{} encrypted archive(s) not checked, no key given: {}; give --identity FILE or --passphrase-file FILE",
                unread.len(),
                unread.join("; ")
            ),
        ));
    }
    if args.verify && !damaged.is_empty() {
        // An error line, so `--quiet` from cron still reports it (and --log-file logs it).
        return Err(failure(
            Exit::BadArchive,
            format!(
                "{} of {} archive(s) damaged: {}; `jobdbctl verify FILE` checks one again; take a new backup",
                damaged.len(),
                items.len(),
                damaged.join("; ")
            ),
        ));
    }
    Ok(Exit::Ok)
}

/// The recoverable window, for people: where point-in-time restore can go.
fn window_line(w: &crate::wal::bases::Window) -> String {
    let start = w
        .oldest
        .stopped_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let end = match &w.newest {
        Some((segment, at)) => format!(
            "{} (newest archived segment {segment})",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => "the end of the archived WAL".to_string(),
    };
    match &w.gap {
        None => format!("point-in-time restore: from {start} (end of the oldest base backup) to {end}"),
        Some(gap) => format!(
            "point-in-time restore: from {start}, but WAL segment {gap} is missing: recovery cannot pass it (`jobdbctl backups check` fails until a base backup is taken after it)"
        ),
    }
}

/// Whether this database's newest archive is there, whole and young enough: one line, exit 4
/// when it is not (for cron's mail and for monitoring).
fn check(args: CheckArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let keys = args.dir.keys.keys(&ctx.config)?;
    let dir = backup::directory(ctx, args.dir.dir.as_deref());
    let found = directory(ctx, &args.dir)?;
    let newest = match &found {
        Some(dir) => {
            let depth = if args.verify {
                Depth::Full
            } else {
                Depth::Ends
            };
            backup::newest(ctx, dir, &keys, depth)?
        }
        None => None,
    };
    let max = humantime::format_duration(args.max_age);
    let now = chrono::Utc::now();
    let age = newest
        .as_ref()
        .and_then(|i| i.taken_at())
        .map(|t| (now - t).to_std().unwrap_or_default());
    let problem = match &newest {
        None => Some(format!(
            "no archive of this database in {}; take one with `jobdbctl backup`",
            shown(&dir)
        )),
        Some(i) if i.state == State::Damaged => Some(format!(
            "the newest archive, {}, is damaged: {}; take a new backup",
            shown(&i.path()),
            i.problem.as_deref().unwrap_or("unreadable")
        )),
        Some(i) => match age {
            Some(age) if age > args.max_age => Some(format!(
                "the newest archive, {}, is {} old, older than {max}; check that the scheduled backup runs",
                shown(&i.path()),
                rounded(age)
            )),
            Some(_) => None,
            None => Some(format!(
                "the newest archive, {}, says nothing of when it was taken",
                shown(&i.path())
            )),
        },
    };
    // A gap in the archived WAL breaks point-in-time restore past it.
    let window = match &found {
        // Without a WAL archive there is no window: the directory is not read again.
        Some(dir) if backup::wal_archive(ctx)?.is_some() => {
            let items = backup::list(ctx, dir, &keys, &|_| Depth::Header)?;
            backup::wal_window(ctx, &items)?
        }
        _ => None,
    };
    let gap = window.as_ref().and_then(|w| w.gap.clone());
    let problem = problem.or_else(|| {
        gap.as_ref().map(|g| {
            format!(
                "WAL segment {g} is missing from the WAL archive: point-in-time restore cannot pass it; put it back from a copy, or take a base backup (`jobdbctl backup --mode physical`) so the window starts after it"
            )
        })
    });
    if ctx.out.json {
        ctx.out.json(&json!({
            "wal_gap": gap,
            "fresh": problem.is_none(),
            "archive": newest.as_ref().map(|i| i.path().display().to_string()),
            "taken_at": newest.as_ref().and_then(|i| i.taken_at()),
            "age_seconds": age.map(|a| a.as_secs()),
            "max_age_seconds": args.max_age.as_secs(),
            "state": newest.as_ref().map(|i| i.state.name()),
            "encrypted": newest.as_ref().map(|i| i.encrypted),
            "problem": problem,
        }))?;
        return Ok(if problem.is_some() {
            Exit::NotReady
        } else {
            Exit::Ok
        });
    }
    if let Some(problem) = problem {
        return Err(failure(Exit::NotReady, problem));
    }
    if let (Some(i), Some(age)) = (&newest, age) {
        ctx.out.line(format!(
            "the newest archive, {}, is {} old (within {max})",
            shown(&i.path()),
            rounded(age)
        ))?;
    }
    Ok(Exit::Ok)
}

/// A path from the file system, control characters escaped.
fn shown(path: &Path) -> String {
    crate::output::printable(&path.display().to_string(), 400)
}

/// An age to the second, as people read it.
fn rounded(age: std::time::Duration) -> humantime::FormattedDuration {
    humantime::format_duration(std::time::Duration::from_secs(age.as_secs()))
}

fn prune(args: PruneArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let policy = Policy {
        keep: args.keep.map(|n| n as usize),
        within: args.keep_within,
    };
    if !policy.prunes() {
        return Err(failure(
            Exit::Usage,
            "backups prune needs --keep N and/or --keep-within DURATION (what to keep)",
        ));
    }
    let Some(dir) = directory(ctx, &args.dir)? else {
        ctx.out.info("no backup directory yet: nothing to prune");
        return report_pruned(ctx, &backup::Pruned::default(), None, args.dry_run);
    };
    let yes = args.confirmation.yes;
    let ask = |doomed: &[PathBuf]| {
        for p in doomed {
            ctx.out.info(format!("would remove {}", p.display()));
        }
        confirm(
            &format!(
                "delete {} archive(s) in {}",
                doomed.len(),
                Path::new(&dir).display()
            ),
            yes,
        )
    };
    let keys = args.dir.keys.keys(&ctx.config)?;
    let pruned = backup::prune(ctx, &dir, &keys, &policy, args.dry_run, &ask)?;
    for (p, why) in &pruned.damaged {
        ctx.out.warn(format!(
            "kept {} without counting it: {why}; check it with `jobdbctl verify` and delete it by hand",
            p.display()
        ));
    }
    let wal = backup::prune_wal(ctx, &dir, args.dry_run)?;
    report_pruned(ctx, &pruned, wal.as_ref(), args.dry_run)
}

fn report_pruned(
    ctx: &Ctx,
    pruned: &backup::Pruned,
    wal: Option<&crate::wal::bases::Pruned>,
    dry_run: bool,
) -> anyhow::Result<Exit> {
    let paths = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    if ctx.out.json {
        ctx.out.json(&json!({
            "dry_run": dry_run,
            "removed": paths(&pruned.removed),
            "kept": paths(&pruned.kept),
            "damaged": pruned.damaged.iter().map(|(p, _)| p.display().to_string()).collect::<Vec<_>>(),
            "unmarked": pruned.unmarked,
            "abandoned_uploads": paths(&pruned.abandoned),
            "wal_removed": wal.map(|w| json!({
                "kept_from": w.from,
                "files": w.files,
                "records": w.records,
            })),
        }))?;
        return Ok(Exit::Ok);
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for p in pruned.removed.iter().chain(&pruned.abandoned) {
        ctx.out.line(format!("{verb} {}", p.display()))?;
    }
    if let Some(w) = wal.filter(|w| !w.files.is_empty() || !w.records.is_empty()) {
        ctx.out.line(format!(
            "{verb} {} archived WAL file(s) and {} record(s) from before {}, which no kept base backup needs",
            w.files.len(),
            w.records.len(),
            w.from
        ))?;
    }
    ctx.out.line(format!(
        "{} {} archive(s), kept {}{}",
        verb,
        pruned.removed.len(),
        pruned.kept.len(),
        if pruned.unmarked > 0 {
            format!(
                "; {} archive(s) predate retention marks and are never pruned",
                pruned.unmarked
            )
        } else {
            String::new()
        }
    ))?;
    Ok(Exit::Ok)
}
