use serde_json::json;

use crate::cli::init::InitArgs;
use crate::context::Ctx;
use crate::db::schema::{self, InitOutcome};
use crate::error::{failure, Exit};
use crate::provision::{self, bring_up};

pub fn run(args: InitArgs, ctx: &Ctx) -> anyhow::Result<Exit> {
    if ctx
        .config
        .profile
        .as_ref()
        .is_some_and(|p| p.value != "jobdb")
    {
        return Err(failure(
            Exit::Usage,
            "init creates the native jobdb schema only; other profiles are created by their own engine",
        ));
    }
    if let Some(cluster) = ctx.target.cluster() {
        bring_up(
            cluster,
            ctx,
            provision::Request {
                create: true,
                ..provision::Request::default()
            },
        )?;
    }
    let mut db = ctx.connect()?;
    let version = args.schema_version.unwrap_or_else(schema::latest_version);
    let schema_name = ctx.native_schema();
    let (created, version) = match schema::init(&mut db, schema_name, version)? {
        InitOutcome::Created { version } => (true, version),
        InitOutcome::AlreadyPresent { version } => (false, version),
    };
    if ctx.out.json {
        ctx.out.json(
            &json!({ "schema": schema_name, "created": created, "schema_version": version }),
        )?;
    } else if created {
        ctx.out.line(format!(
            "created job schema {schema_name:?} at version {version}"
        ))?;
    } else {
        ctx.out.line(format!(
            "job schema {schema_name:?} already exists at version {version}; nothing to do"
        ))?;
    }
    Ok(Exit::Ok)
}
