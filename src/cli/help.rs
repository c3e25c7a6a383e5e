//! Examples and exit statuses per command, written once: `--help` ends with the examples
//! (`--help` long form also with the exit statuses), and each man page has EXAMPLES and EXIT
//! STATUS sections from the same entries. A command without an entry fails
//! `tests/first_hour.rs`, so a new command gets its examples when it is added.

use crate::error::Exit;

/// One command's examples and the exit statuses it uses.
pub struct Entry {
    pub command: &'static str,
    /// (command line, what it does).
    pub examples: &'static [(&'static str, &'static str)],
    /// The exit codes this command uses, with what each means here; 0, 1 and 2 are implied
    /// unless listed with a more specific meaning.
    pub exits: &'static [(Exit, &'static str)],
}

const CONNECT: (Exit, &str) = (
    Exit::Connect,
    "cannot connect: the server is not running or refused the connection",
);

pub const ENTRIES: &[Entry] = &[
    Entry {
        command: "init",
        examples: &[
            ("jobdbctl init", "create the embedded cluster if absent, start it, and create the job schema at the latest version"),
            ("jobdbctl --data-dir /srv/jobdb init", "the same in another data directory (start alone refuses one without a cluster)"),
            ("jobdbctl init --schema-version 2", "create an older schema version, to rehearse an upgrade with migrate"),
        ],
        exits: &[
            (Exit::Refused, "the schema holds objects jobdbctl did not create, or the data directory is not empty and not a cluster"),
            CONNECT,
        ],
    },
    Entry {
        command: "start",
        examples: &[
            ("jobdbctl start", "start the embedded server; on a fresh machine create the cluster in the default data directory"),
            ("jobdbctl --data-dir /srv/jobdb start --create", "create a cluster in a named data directory (a plain start refuses an empty one)"),
            ("jobdbctl start --timeout 30s || jobdbctl status", "give up waiting after 30 seconds"),
        ],
        exits: &[
            (Exit::Usage, "bad flag, a remote target, or a cluster that belongs to another user"),
            (Exit::Refused, "a data directory given with --data-dir, $JOBDBCTL_DATA_DIR or the config file holds no cluster (use init or --create)"),
            (Exit::Connect, "the server did not start, or was still starting when --timeout ran out"),
        ],
    },
    Entry {
        command: "stop",
        examples: &[
            ("jobdbctl stop", "roll back open transactions and shut down cleanly"),
            ("jobdbctl stop --mode smart --timeout 1m || jobdbctl stop", "let clients finish for a minute, then force it"),
        ],
        exits: &[
            (Exit::Runtime, "the server was still running when --timeout ran out (the shutdown goes on)"),
            (Exit::Usage, "bad flag, a remote target, or a cluster that belongs to another user"),
        ],
    },
    Entry {
        command: "restart",
        examples: &[
            ("jobdbctl restart", "after editing postgresql.conf in the cluster"),
            ("jobdbctl restart --mode smart --timeout 5m", "wait up to 5 minutes for clients to disconnect first"),
        ],
        exits: &[
            (Exit::Runtime, "the server was still running when --timeout ran out while stopping"),
            (Exit::Usage, "bad flag, a remote target, or a cluster that belongs to another user"),
            (Exit::Refused, "there is no cluster to restart"),
            (Exit::Connect, "the server did not start again, or was still starting when --timeout ran out"),
        ],
    },
    Entry {
        command: "status",
        examples: &[
            ("jobdbctl status", "server, schema, jobs, locks, workers and background migrations"),
            ("jobdbctl status --check && jobdbctl migrate", "upgrade only when nothing blocks it"),
            ("jobdbctl --json status | jq .jobs", "the job counts as JSON"),
        ],
        exits: &[
            (Exit::NotReady, "with --check: not ready to upgrade (the output says why), or the server is down"),
            (Exit::Connect, "without --check: the server is down"),
        ],
    },
    Entry {
        command: "show-params",
        examples: &[
            ("jobdbctl show-params", "the last used job ID, schema version, paths, the job-ID high-water mark and every setting with its source"),
            ("jobdbctl show-params last_used_job_id", "just the value, for scripts (step 7 of a downgrade)"),
        ],
        exits: &[CONNECT],
    },
    Entry {
        command: "conninfo",
        examples: &[
            ("jobdbctl conninfo", "the socket URL, a psql command that works as printed, and the TCP URL when enabled"),
            ("DATABASE_URL=\"$(jobdbctl conninfo --json | jq -r .socket_url)\" engine", "hand it to an engine"),
        ],
        exits: &[(Exit::Usage, "bad configuration")],
    },
    Entry {
        command: "destroy",
        examples: &[
            ("jobdbctl destroy --dry-run", "show what would be dropped"),
            ("jobdbctl destroy --yes --backup-first /srv/backups/before-destroy.tar.gz", "back up, then drop the job schema"),
            ("jobdbctl stop && jobdbctl destroy --cluster --yes", "remove the whole embedded cluster; `init` then starts again at job ID 1"),
        ],
        exits: &[
            (Exit::Refused, "not confirmed (no --yes and no terminal), or live workers without --force"),
            CONNECT,
            (Exit::Locked, "with --backup-first: another backup or restore is running"),
        ],
    },
    Entry {
        command: "purge-jobs",
        examples: &[
            ("jobdbctl purge-jobs --older-than 90d --dry-run", "count the finished jobs older than 90 days and change nothing"),
            ("jobdbctl purge-jobs --older-than 90d --archive", "move them into month tables jobs_archive_YYYY_MM of the job schema, batch by batch"),
            ("jobdbctl purge-jobs --before 2026-01-01T00:00:00Z --state failed,cancelled", "only failed and cancelled jobs finished before 2026"),
        ],
        exits: &[
            (Exit::Usage, "bad duration, timestamp or state"),
            (Exit::Refused, "a table outside the archive references jobs without ON DELETE CASCADE or SET NULL"),
            CONNECT,
            (Exit::Locked, "another purge-jobs is running on this database"),
        ],
    },
    Entry {
        command: "purge-archive",
        examples: &[
            ("jobdbctl purge-archive --to 2025-12 --dry-run", "list the archived months up to December 2025 and their sizes"),
            ("jobdbctl purge-archive --to 2025-12 --yes", "drop them"),
        ],
        exits: &[
            (Exit::Usage, "bad month"),
            (Exit::Refused, "not confirmed (no --yes and no terminal)"),
            CONNECT,
        ],
    },
    Entry {
        command: "vacuum",
        examples: &[
            ("jobdbctl vacuum --analyze", "VACUUM (ANALYZE) the job tables, with dead tuples and sizes before and after"),
            ("jobdbctl vacuum --full --table jobs --yes", "rewrite the jobs table under an exclusive lock (workers stopped)"),
        ],
        exits: &[
            (Exit::Usage, "a table that is not one of the job tables"),
            (Exit::Refused, "--full without --yes, or with live workers and no --force"),
            CONNECT,
        ],
    },
    Entry {
        command: "logs",
        examples: &[
            ("jobdbctl logs --tail 50", "the embedded server's last 50 log lines"),
            ("jobdbctl logs --since 1h --follow", "the last hour, then follow new lines"),
            ("jobdbctl logs --purge --older-than 30d", "remove log files older than 30 days"),
        ],
        exits: &[(Exit::Usage, "a remote target (its logs are the server's), or a bad duration")],
    },
    Entry {
        command: "backups",
        examples: &[
            ("jobdbctl backups", "the archives in the backup directory, newest first, with their state and whether pruning may remove them"),
            ("jobdbctl backups verify", "read every archive in full; exit 5 naming any damaged one"),
            ("jobdbctl backups prune --keep 14 --dry-run", "what `--keep 14` would delete, changing nothing"),
        ],
        exits: &[
            (Exit::Usage, "prune without --keep or --keep-within, or a directory that does not exist"),
            (Exit::Refused, "prune not confirmed (no --yes and no terminal)"),
            (Exit::BadArchive, "verify: an archive is damaged"),
        ],
    },
    Entry {
        command: "job-logs",
        examples: &[
            ("jobdbctl job-logs --dir /var/log/engine --above 1000", "list the log directories of jobs above ID 1000 (DIR/<user>/J<id>)"),
            ("jobdbctl job-logs --dir /var/log/engine --above 1000 --delete --yes", "remove them before IDs 1001 and up are handed out again"),
            ("jobdbctl job-logs --dir /logs --above 1000 --pattern 'J{jid}' --json", "another layout, as JSON"),
        ],
        exits: &[
            (Exit::Usage, "bad pattern, or the directory does not exist"),
            (Exit::Refused, "--delete not confirmed (no --yes and no terminal)"),
        ],
    },
    Entry {
        command: "set-job-counter",
        examples: &[
            ("jobdbctl set-job-counter 120000", "the next job gets ID 120001"),
            ("jobdbctl set-job-counter 5000 --dry-run", "show the old and new values and change nothing"),
        ],
        exits: &[
            (Exit::Refused, "N is below the highest job ID or the current counter (IDs would be reused) without --force, or the schema is newer than this jobdbctl"),
            CONNECT,
        ],
    },
    Entry {
        command: "unlock-stale-jobs",
        examples: &[
            ("jobdbctl unlock-stale-jobs --dry-run", "show which locks would be released"),
            ("jobdbctl unlock-stale-jobs --prune-workers", "release locks of workers that are not live and forget those workers"),
            ("jobdbctl unlock-stale-jobs --worker host1-4711 --force", "release one worker's locks even though it still heartbeats"),
        ],
        exits: &[
            (Exit::Usage, "bad duration, unknown worker, conflicting flags"),
            (Exit::Refused, "a live worker named without --force, or Graphile Worker without Pro and without --older-than/--worker"),
            CONNECT,
        ],
    },
    Entry {
        command: "finalize-migration",
        examples: &[
            ("jobdbctl finalize-migration --all", "finish every unfinished background migration, in id order"),
            ("jobdbctl finalize-migration --id 7 --pause-ms 0", "finish one, without pauses (maintenance window)"),
            ("jobdbctl finalize-migration CopyColumnUsingBackgroundMigrationJob events id '[[\"id\"],[\"id_convert_to_bigint\"]]'", "name it as GitLab does"),
        ],
        exits: &[
            (Exit::Runtime, "a batch failed three times, or the migration was paused"),
            (Exit::Usage, "unknown migration, bad arguments, or a profile without background migrations"),
            CONNECT,
            (Exit::Locked, "another run is finalizing this migration"),
        ],
    },
    Entry {
        command: "background-migrations",
        examples: &[
            ("jobdbctl background-migrations list", "status, progress and failed batch jobs of every migration"),
            ("jobdbctl background-migrations show 7", "one migration and its recent batch jobs"),
            ("jobdbctl background-migrations retry 7 && jobdbctl finalize-migration --id 7", "retry failed batch jobs, then finish"),
        ],
        exits: &[
            (Exit::Runtime, "the change does not apply to the migration's status"),
            (Exit::Usage, "unknown id, or a profile without background migrations"),
            (Exit::Refused, "not confirmed: mark-finished without --yes and no terminal to ask on"),
            CONNECT,
            (Exit::Locked, "a finalizer is running on this migration"),
        ],
    },
    Entry {
        command: "migrate",
        examples: &[
            ("jobdbctl migrate --dry-run", "show the pending versions and what gates them"),
            ("jobdbctl migrate --finalize", "apply them, finishing background migrations they need"),
            ("jobdbctl migrate --max-wait 30m --force-after-wait", "wait up to 30 minutes for old workers, then release their jobs"),
        ],
        exits: &[
            (Exit::Refused, "stale locks, an unfinished background migration, old workers still live, or a schema newer than this jobdbctl"),
            CONNECT,
            (Exit::Locked, "another migrate holds the lock past --lock-wait"),
        ],
    },
    Entry {
        command: "backup",
        examples: &[
            ("jobdbctl backup", "an online backup into the backup directory"),
            ("jobdbctl --quiet backup --output /srv/backups --keep 14", "nightly from cron: only failures print"),
            ("jobdbctl backup --output - | ssh vault 'cat > jobs.tar.gz'", "stream it elsewhere"),
            ("jobdbctl backup --compression zstd", "a .tar.zst: faster, and under half the size"),
        ],
        exits: &[
            (Exit::Refused, "refused by a safety check, before any archive is written: not enough free space (both figures printed; --no-space-check), rows hidden by row-level security, a link or another user's file at the output's name or its .partial, a schema newer than this jobdbctl, a data directory that holds no cluster"),
            CONNECT,
            (Exit::Locked, "another backup or restore is running"),
        ],
    },
    Entry {
        command: "restore",
        examples: &[
            ("jobdbctl restore /srv/backups/jobs.tar.gz --yes", "replace the job schema with the archive's"),
            ("jobdbctl restore jobs.tar.gz --yes --force --avoid-id-reuse", "replace one holding jobs, keeping the higher job counter"),
            ("ssh vault 'cat jobs.tar.gz' | jobdbctl restore - --yes", "from standard input"),
            ("jobdbctl restore latest --yes", "the newest complete archive of this database in the backup directory"),
            ("jobdbctl restore latest --dir /srv/backups --yes --force", "the same from another directory, over a database that has jobs"),
            ("jobdbctl restore latest --dry-run", "check everything and say what would be replaced, changing nothing"),
        ],
        exits: &[
            (Exit::Usage, "no archive at the path given (the message says where archives of this database are)"),
            (Exit::Refused, "live workers, jobs without --force, not confirmed, missing roles or dependent objects, an archive of a schema other than the job schema, a data directory that holds no cluster"),
            (Exit::BadArchive, "the archive is invalid, corrupt or hostile; nothing was changed"),
            CONNECT,
            (Exit::Locked, "another backup or restore is running"),
        ],
    },
    Entry {
        command: "verify",
        examples: &[
            ("jobdbctl verify /srv/backups/jobs.tar.gz", "check every entry's size and checksum; no database needed"),
            ("for f in /srv/backups/*.tar.gz; do jobdbctl --quiet verify \"$f\" || echo \"$f\"; done", "list the bad ones"),
        ],
        exits: &[(Exit::BadArchive, "the archive is invalid, corrupt or hostile")],
    },
    Entry {
        command: "completions",
        examples: &[
            ("jobdbctl completions --install", "bash, zsh and fish completions under the binary's prefix (e.g. /usr/local/share)"),
            ("jobdbctl completions --install --prefix ~/.local", "for your user only"),
            ("jobdbctl completions zsh > ~/.zfunc/_jobdbctl", "print one shell's script"),
        ],
        exits: &[(Exit::Runtime, "a file could not be written")],
    },
    Entry {
        command: "man",
        examples: &[
            ("jobdbctl man --install", "the man pages into PREFIX/share/man/man1 (PREFIX: the binary's, e.g. /usr/local)"),
            ("jobdbctl man --install --prefix ~/.local", "for your user only"),
            ("jobdbctl man | man -l -", "read the main page without installing"),
        ],
        exits: &[(Exit::Runtime, "a file could not be written")],
    },
];

/// Examples of the main page and `jobdbctl --help`.
pub const MAIN_EXAMPLES: &[(&str, &str)] = &[
    (
        "jobdbctl start && jobdbctl status",
        "bring up the embedded job database and look at it",
    ),
    (
        "jobdbctl status --check && jobdbctl backup",
        "before an upgrade",
    ),
    (
        "jobdbctl --configdir /etc/farm stop",
        "with the configuration of another site",
    ),
];

pub fn entry(command: &str) -> Option<&'static Entry> {
    ENTRIES.iter().find(|e| e.command == command)
}

/// Every exit code a command may end with, in order: 0, 1 and 2 always (with the general
/// meaning unless the entry gives one), then the entry's.
pub fn exits_of(entry: &Entry) -> Vec<(Exit, &'static str)> {
    let mut all: Vec<(Exit, &'static str)> = Vec::new();
    for (exit, general) in Exit::TABLE {
        let specific = entry.exits.iter().find(|(e, _)| *e == exit);
        match (exit, specific) {
            (_, Some((_, meaning))) => all.push((exit, meaning)),
            (Exit::Ok | Exit::Runtime | Exit::Usage, None) => all.push((exit, general)),
            _ => {}
        }
    }
    all
}

/// The examples as `--help` prints them.
pub fn examples_text(examples: &[(&str, &str)]) -> String {
    let mut text = String::from("Examples:\n");
    for (line, what) in examples {
        text.push_str(&wrap(what, "  # ", "  # "));
        text.push_str(&continued(line));
    }
    text
}

/// A command line for `--help`, broken where it would not fit into lines that continue with
/// ` \` (between words outside quotes), so neither clap nor a terminal breaks it mid-argument
/// and it still pastes into a shell as one command.
fn continued(line: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let (mut word, mut quote) = (String::new(), None);
    for c in line.chars() {
        match (c, quote) {
            (' ', None) => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            ('\'' | '"', None) => quote = Some(c),
            (q, Some(open)) if q == open => quote = None,
            _ => {}
        }
        word.push(c);
    }
    words.push(word);
    let mut out = String::new();
    let mut current = "  ".to_string();
    for (i, w) in words.iter().enumerate() {
        let fits = current.chars().count() + 1 + w.chars().count() + 2 <= HELP_WIDTH;
        if i > 0 && !fits {
            out.push_str(&current);
            out.push_str(" \\\n");
            current = "      ".to_string();
        } else if i > 0 {
            current.push(' ');
        }
        current.push_str(w);
    }
    out.push_str(&current);
    out.push('\n');
    out
}

/// The exit statuses as `--help` prints them.
pub fn exits_text(exits: &[(Exit, &str)]) -> String {
    let mut text = String::from("Exit status:\n");
    for (exit, meaning) in exits {
        text.push_str(&wrap(meaning, &format!("  {}  ", exit.code()), "     "));
    }
    text
}

/// Help text is wrapped here, with its hanging indent, narrower than clap wraps (80 columns),
/// so clap leaves the lines alone and a continuation lines up under its first line.
const HELP_WIDTH: usize = 78;

fn wrap(text: &str, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        if !empty && line.chars().count() + 1 + word.chars().count() > HELP_WIDTH {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_examples_continue_between_words_outside_quotes() {
        let line = "for f in /srv/backups/*.tar.gz; do jobdbctl --quiet verify \"$f\" || echo \"$f $f $f\"; done";
        let text = continued(line);
        assert!(
            text.lines().all(|l| l.chars().count() <= HELP_WIDTH),
            "{text}"
        );
        assert!(text.lines().count() > 1, "{text}");
        let joined: String = text
            .lines()
            .map(|l| l.trim().trim_end_matches('\\').trim())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(joined, line);
        let quoted = continued("jobdbctl backup --output - | ssh vault-with-a-long-name.example.org 'cat > /srv/backups/jobs.tar.gz'");
        assert!(
            quoted.contains("'cat > /srv/backups/jobs.tar.gz'"),
            "{quoted}"
        );
        assert_eq!(continued("jobdbctl status"), "  jobdbctl status\n");
    }

    #[test]
    fn wrap_keeps_a_hanging_indent_within_the_width() {
        let text = wrap(&"word ".repeat(40), "  3  ", "     ");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 1);
        assert!(lines[0].starts_with("  3  word"));
        assert!(lines[1..].iter().all(|l| l.starts_with("     word")));
        assert!(lines.iter().all(|l| l.chars().count() <= HELP_WIDTH));
    }
}
