use crate::cli::wal_fetch::WalFetchArgs;
use crate::error::Exit;
use crate::output::Output;
use crate::wal;

pub fn run(args: WalFetchArgs, _out: Output) -> anyhow::Result<Exit> {
    wal::deadline("wal-fetch", args.timeout);
    // Not archived: exit 1 and nothing printed, as recovery expects at the archive's end.
    let archive = wal::Archive::from_environment(&args.from)?;
    Ok(if wal::fetch(&archive, &args.name, &args.dest)? {
        Exit::Ok
    } else {
        Exit::Runtime
    })
}
