use crate::cli::show_params::ShowParamsArgs;
use crate::context::Ctx;
use crate::db::exit_code_of;
use crate::error::{failure, Exit};
use crate::output::table;
use crate::params::{self, Param, NAMES};

pub fn run(args: ShowParamsArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    let (params, error) = params::gather(ctx);
    let exit = error.as_ref().map_or(Exit::Ok, exit_code_of);
    let error = error.map(|e| format!("{e:#}"));
    if !args.names.is_empty() {
        return print_values(ctx, &args.names, &params, error);
    }
    if ctx.out.json {
        ctx.out
            .json(&serde_json::json!({ "params": params, "error": error }))?;
    } else {
        let mut t = table(&["parameter", "value", "source"]);
        for p in &params {
            t.add_row(vec![p.name, &p.shown, &p.source]);
        }
        ctx.out.line(t.to_string())?;
    }
    if let Some(error) = error {
        eprintln!("jobdbctl: error: {error}");
    }
    Ok(exit)
}

/// `show-params NAME…`: bare values, one per line, for scripts.
fn print_values(
    ctx: &Ctx,
    names: &[String],
    params: &[Param],
    error: Option<String>,
) -> anyhow::Result<Exit> {
    if let Some(unknown) = names.iter().find(|n| !NAMES.contains(&n.as_str())) {
        return Err(failure(
            Exit::Usage,
            format!("unknown parameter {unknown:?}; known: {}", NAMES.join(", ")),
        ));
    }
    let mut chosen = Vec::new();
    for name in names {
        let found: Vec<&Param> = params.iter().filter(|p| p.name == name).collect();
        if found.is_empty() {
            let why = error
                .clone()
                .unwrap_or_else(|| "not known here".to_string());
            return Err(failure(
                if error.is_some() {
                    Exit::Connect
                } else {
                    Exit::Runtime
                },
                format!("{name}: {why}"),
            ));
        }
        chosen.extend(found);
    }
    if ctx.out.json {
        ctx.out.json(&serde_json::json!({ "params": chosen }))?;
    } else {
        for p in chosen {
            ctx.out.line(p.bare())?;
        }
    }
    Ok(Exit::Ok)
}
