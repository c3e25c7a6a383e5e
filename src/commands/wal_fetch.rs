use crate::cli::wal_fetch::WalFetchArgs;
use crate::error::Exit;
use crate::output::Output;
use crate::wal;

pub fn run(args: WalFetchArgs, _out: Output) -> anyhow::Result<Exit> {
    wal::deadline("wal-fetch", args.timeout);
    // Not archived: exit 1 and nothing printed, as recovery expects at the archive's end.
    Ok(if wal::fetch(&args.from, &args.name, &args.dest)? {
        Exit::Ok
    } else {
        Exit::Runtime
    })
}
