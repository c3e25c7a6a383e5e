//! Human tables on stdout, JSON on stdout with `--json`, status and progress on stderr.
//! `--quiet` leaves stdout and stderr silent except for errors, so cron mails only failures.

use std::io::{IsTerminal, Write};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use comfy_table::{presets::UTF8_FULL_CONDENSED, ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::error::{failure, Exit};

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    /// A status line on stderr (suppressed by `--quiet`).
    pub fn info(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", terminal_safe(message.as_ref()));
        }
    }

    pub fn warn(&self, message: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("warning: {}", terminal_safe(message.as_ref()));
        }
    }

    /// Human output on stdout (suppressed by `--quiet`). A closed pipe surfaces as an
    /// io::Error that `main` turns into a quiet exit 0.
    pub fn line(&self, text: impl AsRef<str>) -> anyhow::Result<()> {
        if self.quiet {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", terminal_safe(text.as_ref())).context("cannot write to stdout")?;
        Ok(())
    }

    pub fn json(&self, value: &impl Serialize) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        // As an io::Error, so a closed pipe is recognised as one.
        serde_json::to_writer_pretty(&mut stdout, value)
            .map_err(std::io::Error::from)
            .context("cannot write JSON to stdout")?;
        writeln!(stdout).context("cannot write to stdout")?;
        Ok(())
    }

    /// A JSON array on stdout, written an element at a time, so a long listing is never held
    /// whole in memory as JSON values.
    pub fn json_array<T: Serialize>(
        &self,
        elements: impl IntoIterator<Item = T>,
    ) -> anyhow::Result<()> {
        let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
        let mut first = true;
        stdout.write_all(b"[").context("cannot write to stdout")?;
        for element in elements {
            stdout
                .write_all(if first { b"\n" } else { b",\n" })
                .context("cannot write to stdout")?;
            first = false;
            serde_json::to_writer_pretty(&mut stdout, &element)
                .map_err(std::io::Error::from)
                .context("cannot write JSON to stdout")?;
        }
        stdout
            .write_all(if first { b"]\n" } else { b"\n]\n" })
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        Ok(())
    }

    /// A progress bar on stderr when it is a terminal and not `--quiet`; hidden otherwise.
    pub fn progress(&self, len: u64, template: &str) -> ProgressBar {
        if self.quiet || !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar
    }
}

pub fn table(header: &[&str]) -> Table {
    let mut t = kv_table();
    t.set_header(header.to_vec());
    t
}

/// A two-column key/value table without a header row.
pub fn kv_table() -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    // On a terminal the table fits its width; piped, it fits $COLUMNS when that is set (as
    // `ps` does), and is as wide as its cells otherwise.
    if !std::io::stdout().is_terminal() {
        if let Some(columns) = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<u16>().ok())
            .filter(|c| *c >= 20)
        {
            t.set_width(columns);
        }
    }
    t
}

/// Asks before a destructive step. `--yes` answers for the operator; without a terminal to
/// ask on, the answer is no (exit 3), so an unattended script never destroys by accident.
pub fn confirm(question: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Err(failure(
            Exit::Refused,
            format!("refusing to {question} without --yes (no terminal to ask on)"),
        ));
    }
    eprint!("{question}? [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    stdin
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(failure(
            Exit::Refused,
            format!("not confirmed; did not {question}"),
        ))
    }
}

pub fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `n` with the noun that fits it: `1 job`, `2 jobs`, `0 jobs`.
pub fn plural(n: impl Into<i64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A time for people: `2024-05-01 14:03:09 UTC`, the one format of all human output (JSON
/// carries RFC 3339).
pub fn human_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A list of numbers for people: `2, 3 and 5`.
pub fn human_list<T: std::fmt::Display>(items: &[T]) -> String {
    let words: Vec<String> = items.iter().map(|i| i.to_string()).collect();
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// An inclusive range of IDs for people: `501-1000`, or `501` when it holds one.
pub fn human_range(first: i64, last: i64) -> String {
    if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    }
}

/// Job IDs for people: `IDs 501 to 1000`, or `ID 501` when there is one.
pub fn id_range(first: i64, last: i64) -> String {
    if first == last {
        format!("ID {first}")
    } else {
        format!("IDs {first} to {last}")
    }
}

/// Text that came from the database (worker ids, hostnames, error messages), made safe for a
/// terminal: control characters are shown escaped so they cannot move the cursor, clear the
/// screen or retitle the window, and very long values are cut to `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Everything jobdbctl prints for people passes through here: a control character that a
/// value carried past [`printable`] (a file name in an error, a server's message) is shown
/// escaped rather than sent to the terminal. Line breaks and tabs jobdbctl wrote itself stay.
pub fn terminal_safe(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How long an identifier from the database may be in human output and messages.
pub const MAX_SHOWN_ID: usize = 80;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_get_plurals_times_and_lists_they_read_without_translating() {
        assert_eq!(plural(1, "job", "jobs"), "1 job");
        assert_eq!(plural(0, "job", "jobs"), "0 jobs");
        assert_eq!(plural(2i32, "queue", "queues"), "2 queues");
        let at = DateTime::parse_from_rfc3339("2024-05-01T14:03:09.123+02:00")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(human_time(at), "2024-05-01 12:03:09 UTC");
        assert_eq!(human_list::<i32>(&[]), "");
        assert_eq!(human_list(&[3]), "3");
        assert_eq!(human_list(&[2, 3, 5]), "2, 3 and 5");
        assert_eq!(human_range(501, 1000), "501-1000");
        assert_eq!(human_range(7, 7), "7");
        assert_eq!(id_range(501, 1000), "IDs 501 to 1000");
        assert_eq!(id_range(10, 10), "ID 10");
    }

    #[test]
    fn terminal_safe_keeps_lines_and_escapes_the_rest() {
        assert_eq!(terminal_safe("a\n\tb"), "a\n\tb");
        assert_eq!(
            terminal_safe("\u{1b}]0;pwned\u{7}x\r"),
            "\\u{1b}]0;pwned\\u{7}x\\r"
        );
    }

    #[test]
    fn printable_escapes_control_characters_and_caps_length() {
        assert_eq!(printable("w-1", 80), "w-1");
        assert_eq!(printable("\u{1b}[2Jx\u{7}", 80), "\\u{1b}[2Jx\\u{7}");
        assert_eq!(printable("a\nb", 80), "a\\nb");
        assert_eq!(printable(&"x".repeat(100), 5), "xxxxx…");
    }
}
