//! The command line's names for the value types of lower layers (`--compression gzip`,
//! `--mode cold`, `--profile jobdb`, `stop --mode fast`): the archive format, the cluster and
//! the profiles know nothing of clap. Each variant's help line is what `--help` shows.

use clap::builder::PossibleValue;
use clap::ValueEnum;

use crate::archive::{Codec, Mode};
use crate::cluster::StopMode;
use crate::db::profile::ProfileChoice;

macro_rules! value_enum {
    ($ty:ty { $($variant:path => $name:literal $(: $help:literal)?),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                &[$($variant),+]
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                Some(match self {
                    $($variant => PossibleValue::new($name)$(.help($help))?,)+
                })
            }
        }
    };
}

value_enum!(Codec {
    Codec::Gzip => "gzip": "Independent gzip members, one per block (`.tar.gz`): any gzip reader reads it",
    Codec::Zstd => "zstd": "Independent zstd frames, one per block (`.tar.zst`): faster and smaller",
    Codec::None => "none": "Plain tar (`.tar`)",
});

value_enum!(Mode {
    Mode::Online => "online": "Consistent snapshot of the job schema through SQL while the server runs",
    Mode::Cold => "cold": "Tarball of the embedded cluster's data directory with the server stopped",
    Mode::Physical => "physical": "Base backup of the embedded cluster's data directory while it runs, for point-in-time recovery with the archived WAL (wal_archive)",
});

value_enum!(StopMode {
    StopMode::Smart => "smart": "Wait for clients to disconnect",
    StopMode::Fast => "fast": "Roll back open transactions and shut down cleanly",
    StopMode::Immediate => "immediate": "Abort without a clean shutdown; crash recovery runs on next start",
});

value_enum!(ProfileChoice {
    ProfileChoice::Jobdb => "jobdb",
    ProfileChoice::GraphileWorker => "graphile-worker",
});
