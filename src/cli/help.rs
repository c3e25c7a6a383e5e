//! How `--help` and the man pages show each command's examples and exit statuses. The entries
//! themselves live beside each command's arguments (`cli/<command>.rs`, `HELP`); a command
//! without one fails `tests/docs.rs`, so a new command gets its examples when it is
//! added.

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

/// Exit 6 from object storage, for every command that takes an `s3://` URL.
pub const S3: (Exit, &str) = (
    Exit::Connect,
    "object storage: credentials refused or access denied, or the store did not answer within s3_retry_for",
);

pub const CONNECT: (Exit, &str) = (
    Exit::Connect,
    "cannot connect: the server is not running or refused the connection",
);

pub const ENTRIES: &[&Entry] = &[
    &super::init::HELP,
    &super::start::HELP,
    &super::stop::HELP,
    &super::restart::HELP,
    &super::status::HELP,
    &super::show_params::HELP,
    &super::conninfo::HELP,
    &super::destroy::HELP,
    &super::purge_jobs::HELP,
    &super::purge_archive::HELP,
    &super::vacuum::HELP,
    &super::logs::HELP,
    &super::backups::HELP,
    &super::job_logs::HELP,
    &super::set_job_counter::HELP,
    &super::unlock_stale_jobs::HELP,
    &super::finalize_migration::HELP,
    &super::background_migrations::HELP,
    &super::migrate::HELP,
    &super::backup::HELP,
    &super::restore::HELP,
    &super::verify::HELP,
    &super::wal_push::HELP,
    &super::wal_fetch::HELP,
    &super::completions::HELP,
    &super::man::HELP,
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
    ENTRIES.iter().copied().find(|e| e.command == command)
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
