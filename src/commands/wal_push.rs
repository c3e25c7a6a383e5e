use crate::cli::wal_push::WalPushArgs;
use crate::error::Exit;
use crate::output::Output;
use crate::wal::{self, Pushed};

pub fn run(args: WalPushArgs, out: Output) -> anyhow::Result<Exit> {
    wal::deadline("wal-push", args.timeout);
    let archive = wal::Archive::from_environment(&args.to)?;
    match wal::push(&archive, &args.path)? {
        Pushed::Stored => {}
        Pushed::AlreadyThere => out.info(format!(
            "{} was archived before with the same contents",
            args.path.display()
        )),
    }
    Ok(Exit::Ok)
}
