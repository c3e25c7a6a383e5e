//! Bringing the embedded cluster up for use, for `start` and `init`: created if absent,
//! started if stopped, its job database present. Each step is skipped when already done, so
//! running it again is harmless.

use crate::cluster::Cluster;
use crate::context::Ctx;
use crate::db;

/// Creates the cluster if absent, starts it if stopped, and makes sure the job database
/// exists. Returns whether the cluster was created now.
pub fn bring_up(cluster: &Cluster, ctx: &Ctx) -> anyhow::Result<bool> {
    let created = !cluster.is_initialized();
    if created {
        ctx.out.info(format!(
            "creating embedded cluster in {}",
            cluster.pgdata.display()
        ));
        cluster.initdb()?;
    }
    if cluster.start()? {
        ctx.out
            .info(format!("server started ({})", cluster.describe()));
    }
    db::ensure_database(cluster, ctx.config.connect_timeout.value, ctx.verbose)?;
    Ok(created)
}
