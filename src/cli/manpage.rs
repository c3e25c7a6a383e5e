//! The man pages, rendered from the clap definitions (options, value names, help text) and
//! from each command's `HELP` entry in `cli/` (examples and exit statuses), so `--help`, the pages and the
//! checked-in `man/` never disagree; `tests/docs.rs` fails when `man/` is stale.

use clap::{Arg, ArgAction, Command};
use roff::{bold, italic, roman, Inline, Roff};

use crate::cli::help;
use crate::error::Exit;

/// Every page, main page first: (file name, roff source).
pub fn render_all() -> Vec<(String, String)> {
    let root = crate::cli::command();
    let mut pages = vec![("jobdbctl.1".to_string(), main_page(&root).render())];
    for sub in root.get_subcommands() {
        let name = format!("jobdbctl-{}", sub.get_name());
        pages.push((format!("{name}.1"), command_page(&root, sub).render()));
    }
    pages
}

fn title(page: &mut Roff, name: &str) {
    let version = format!("jobdbctl {}", env!("CARGO_PKG_VERSION"));
    page.control(
        "TH",
        [
            name.to_uppercase().as_str(),
            "1",
            "",
            version.as_str(),
            "jobdbctl manual",
        ],
    );
    // No hyphenation and a ragged right edge: command names and flags stay whole and
    // unstretched, so they can be copied from the page.
    page.control("nh", []);
    page.control("ad", ["l"]);
}

/// The first sentence of a command's summary, for NAME and the command list.
fn first_sentence(cmd: &Command) -> String {
    let about = cmd.get_about().map(|a| a.to_string()).unwrap_or_default();
    let first = about.split(". ").next().unwrap_or_default();
    first.trim_end_matches('.').to_string()
}

fn section(page: &mut Roff, name: &str) {
    page.control("SH", [name]);
}

/// Text whose paragraphs are separated by blank lines, one `.PP` each.
fn paragraphs(page: &mut Roff, text: &str) {
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            page.control("PP", []);
        }
        page.text([roman(para.replace('\n', " ").trim().to_string())]);
    }
}

fn main_page(root: &Command) -> Roff {
    let mut page = Roff::new();
    title(&mut page, "jobdbctl");
    section(&mut page, "NAME");
    page.text([roman(format!(
        "jobdbctl - {}",
        root.get_about().map(|a| a.to_string()).unwrap_or_default()
    ))]);
    section(&mut page, "SYNOPSIS");
    page.text([
        bold("jobdbctl"),
        roman(" ["),
        italic("GLOBAL OPTIONS"),
        roman("] "),
        italic("COMMAND"),
        roman(" ["),
        italic("COMMAND OPTIONS"),
        roman("]"),
    ]);
    section(&mut page, "DESCRIPTION");
    paragraphs(
        &mut page,
        &root
            .get_long_about()
            .or(root.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default(),
    );
    section(&mut page, "COMMANDS");
    for sub in root.get_subcommands() {
        page.control("TP", []);
        page.text([bold(sub.get_name().to_string())]);
        page.text([
            roman(first_sentence(sub)),
            roman(". See "),
            bold(format!("jobdbctl-{}", sub.get_name())),
            roman("(1)."),
        ]);
    }
    section(&mut page, "GLOBAL OPTIONS");
    page.text([roman(
        "These options are accepted before or after the command name.",
    )]);
    for arg in root.get_arguments().filter(|a| shown(a)) {
        option(&mut page, arg);
    }
    section(&mut page, "ENVIRONMENT");
    for (name, meaning) in ENVIRONMENT {
        page.control("TP", []);
        page.text([bold(name.to_string())]);
        page.text([roman(meaning.to_string())]);
    }
    section(&mut page, "FILES");
    for (path, meaning) in FILES {
        page.control("TP", []);
        page.text([italic(path.to_string())]);
        page.text([roman(meaning.to_string())]);
    }
    examples(&mut page, help::MAIN_EXAMPLES);
    exit_status(&mut page, &Exit::TABLE);
    section(&mut page, "SEE ALSO");
    let mut refs: Vec<Inline> = Vec::new();
    for (i, sub) in root.get_subcommands().enumerate() {
        if i > 0 {
            refs.push(roman(", "));
        }
        refs.push(bold(format!("jobdbctl-{}", sub.get_name())));
        refs.push(roman("(1)"));
    }
    refs.push(roman(", "));
    refs.push(bold("pg_ctl"));
    refs.push(roman("(1)."));
    page.text(refs);
    page
}

const ENVIRONMENT: [(&str, &str); 6] = [
    (
        "JOBDBCTL_DATABASE_URL",
        "The job database's URL, as --database-url.",
    ),
    (
        "JOBDBCTL_CONFIGDIR",
        "Directory holding jobdbctl.toml, as --configdir.",
    ),
    (
        "JOBDBCTL_DATA_DIR",
        "Data directory of the embedded cluster, as --data-dir.",
    ),
    (
        "PGHOST, PGHOSTADDR, PGPORT",
        "When set (and no URL is given), the server to use instead of the embedded cluster.",
    ),
    (
        "PGUSER, PGDATABASE, PGPASSWORD, PGPASSFILE",
        "Fill in what the URL leaves out, as libpq does; keep passwords here or in ~/.pgpass, never on the command line.",
    ),
    (
        "PGSSLMODE, PGSSLROOTCERT, PGTARGETSESSIONATTRS",
        "TLS and primary selection, with libpq's meanings.",
    ),
];

const FILES: [(&str, &str); 3] = [
    (
        "/etc/jobdbctl/jobdbctl.toml, ~/.config/jobdbctl/jobdbctl.toml",
        "The configuration, as root and otherwise (see --configdir).",
    ),
    (
        "/var/lib/jobdbctl/psql, ~/.local/share/jobdbctl/psql",
        "The embedded cluster, as root (the server runs as postgres) and otherwise.",
    ),
    (
        "DATA_DIR/backups",
        "Where backup writes archives unless told otherwise.",
    ),
];

fn command_page(root: &Command, cmd: &Command) -> Roff {
    let name = format!("jobdbctl-{}", cmd.get_name());
    let mut page = Roff::new();
    title(&mut page, &name);
    section(&mut page, "NAME");
    page.text([roman(format!("{name} - {}", first_sentence(cmd)))]);
    section(&mut page, "SYNOPSIS");
    let actions: Vec<&Command> = cmd.get_subcommands().collect();
    if actions.is_empty() {
        page.text(synopsis(&[cmd]));
    } else {
        for (i, action) in actions.iter().enumerate() {
            if i > 0 {
                page.control("br", []);
            }
            page.text(synopsis(&[cmd, action]));
        }
    }
    section(&mut page, "DESCRIPTION");
    paragraphs(
        &mut page,
        &cmd.get_long_about()
            .or(cmd.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default(),
    );
    let own: Vec<&Arg> = cmd.get_arguments().filter(|a| shown(a)).collect();
    if !own.is_empty() {
        section(&mut page, "OPTIONS");
        for arg in own {
            option(&mut page, arg);
        }
    }
    if !actions.is_empty() {
        section(&mut page, "ACTIONS");
        for action in &actions {
            page.control("TP", []);
            page.text(usage_of(action));
            paragraphs(
                &mut page,
                &action
                    .get_long_about()
                    .or(action.get_about())
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
            );
            let args: Vec<&Arg> = action
                .get_arguments()
                .filter(|a| shown(a) && !a.is_positional())
                .collect();
            if !args.is_empty() {
                page.control("RS", []);
                for arg in args {
                    option(&mut page, arg);
                }
                page.control("RE", []);
            }
        }
    }
    section(&mut page, "GLOBAL OPTIONS");
    let globals: Vec<Inline> = root
        .get_arguments()
        .filter(|a| shown(a))
        .filter_map(|a| a.get_long().map(|l| bold(format!("--{l}"))))
        .collect();
    let mut line = vec![roman(
        "The options of jobdbctl(1) apply to every command, before or after its name: ",
    )];
    for (i, g) in globals.into_iter().enumerate() {
        if i > 0 {
            line.push(roman(", "));
        }
        line.push(g);
    }
    line.push(roman("."));
    page.text(line);
    if let Some(entry) = help::entry(cmd.get_name()) {
        examples(&mut page, entry.examples);
        exit_status(&mut page, &help::exits_of(entry));
    }
    section(&mut page, "SEE ALSO");
    page.text([bold("jobdbctl"), roman("(1)")]);
    page
}

/// Arguments a page lists: not hidden, not clap's own --help/--version. Pages are made from
/// the unbuilt command, so a subcommand's arguments are its own, without the globals.
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set()
        && !matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpLong | ArgAction::Version
        )
}

/// `jobdbctl [GLOBAL OPTIONS] destroy [-y|--yes] [--backup-first PATH]`, for the command
/// path `cmds` (a command, or a command and its action).
fn synopsis(cmds: &[&Command]) -> Vec<Inline> {
    let mut line = vec![
        bold("jobdbctl"),
        roman(" ["),
        italic("GLOBAL OPTIONS"),
        roman("]"),
    ];
    for (i, cmd) in cmds.iter().enumerate() {
        line.push(roman(" "));
        if i + 1 == cmds.len() {
            line.extend(usage_of(cmd));
        } else {
            line.push(bold(cmd.get_name().to_string()));
        }
    }
    line
}

/// A command's name with its options and arguments: options first, positionals last.
fn usage_of(cmd: &Command) -> Vec<Inline> {
    let mut line = vec![bold(cmd.get_name().to_string())];
    let args: Vec<&Arg> = cmd.get_arguments().filter(|a| shown(a)).collect();
    let (positionals, options): (Vec<&Arg>, Vec<&Arg>) =
        args.into_iter().partition(|a| a.is_positional());
    for arg in options.into_iter().chain(positionals) {
        line.push(roman(" "));
        let optional = !arg.is_required_set();
        if optional {
            line.push(roman("["));
        }
        line.extend(flag_and_value(arg, true));
        if optional {
            line.push(roman("]"));
        }
    }
    if cmd.has_subcommands() {
        line.push(roman(" "));
        line.push(italic("ACTION"));
    }
    line
}

/// `-y|--yes`, `--backup-first PATH`, `ARCHIVE`, `--worker ID...`: the flag in bold and its
/// value's name in italics. `compact` joins short and long with `|` (synopsis) instead of
/// `, ` (option list).
fn flag_and_value(arg: &Arg, compact: bool) -> Vec<Inline> {
    let mut out = Vec::new();
    let value = value_name(arg);
    if arg.is_positional() {
        out.push(italic(value));
        if repeats(arg) {
            out.push(roman("..."));
        }
        return out;
    }
    if let Some(short) = arg.get_short() {
        out.push(bold(format!("-{short}")));
        if arg.get_long().is_some() {
            out.push(roman(if compact { "|" } else { ", " }));
        }
    }
    if let Some(long) = arg.get_long() {
        out.push(bold(format!("--{long}")));
    }
    if takes_value(arg) {
        out.push(roman(" "));
        out.push(italic(value));
    }
    if repeats(arg) {
        out.push(roman("..."));
    }
    out
}

fn takes_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

fn repeats(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
        || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

fn value_name(arg: &Arg) -> String {
    match arg.get_value_names() {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" "),
        _ => arg.get_id().as_str().to_uppercase().replace('_', "-"),
    }
}

/// One entry of an option list: the flag, its help, default and possible values.
fn option(page: &mut Roff, arg: &Arg) {
    page.control("TP", []);
    page.text(flag_and_value(arg, false));
    let help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut text = help.trim_end_matches('.').to_string();
    if !text.is_empty() {
        text.push('.');
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| v.to_string_lossy().into_owned())
        .collect();
    let values: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .collect();
    let explained = values.iter().any(|v| v.get_help().is_some());
    // A switch (--pin) takes no value: clap's true/false are not the operator's to give.
    if !values.is_empty() && !explained && takes_value(arg) {
        let names: Vec<&str> = values.iter().map(|v| v.get_name()).collect();
        text.push_str(&format!(" Values: {}.", names.join(", ")));
    }
    if !defaults.is_empty() && takes_value(arg) {
        text.push_str(&format!(" Default: {}.", defaults.join(", ")));
    }
    paragraphs(page, &text);
    if explained && takes_value(arg) && !arg.is_positional() {
        page.control("RS", []);
        for v in values {
            page.control("TP", []);
            page.text([bold(v.get_name().to_string())]);
            if let Some(h) = v.get_help() {
                page.text([roman(h.to_string())]);
            }
        }
        page.control("RE", []);
    }
}

fn examples(page: &mut Roff, examples: &[(&str, &str)]) {
    section(page, "EXAMPLES");
    for (i, (line, what)) in examples.iter().enumerate() {
        if i > 0 {
            page.control("PP", []);
        }
        let mut what = what.to_string();
        if let Some(first) = what.get(..1) {
            what = format!("{}{}", first.to_uppercase(), &what[1..]);
        }
        page.text([roman(format!("{what}:"))]);
        page.control("RS", ["4"]);
        page.control("nf", []);
        page.text([bold(line.to_string())]);
        page.control("fi", []);
        page.control("RE", []);
    }
}

fn exit_status(page: &mut Roff, exits: &[(Exit, &str)]) {
    section(page, "EXIT STATUS");
    for (exit, meaning) in exits {
        page.control("TP", []);
        page.text([bold(exit.code().to_string())]);
        let mut meaning = meaning.to_string();
        if let Some(first) = meaning.get(..1) {
            meaning = format!("{}{}.", first.to_uppercase(), &meaning[1..]);
        }
        page.text([roman(meaning)]);
    }
}
