#[path = "../tests/common/mod.rs"]
mod common;
use common::generate::{self, Spec};
use common::TestCluster;
fn main() {
    let jobs: i64 = std::env::var("JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let c = TestCluster::started();
    let mut client = c.client();
    generate::populate(
        &mut client,
        "jobdb",
        &Spec {
            migrations: true,
            ..Spec::jobs(jobs)
        },
    );
    client.batch_execute("VACUUM ANALYZE").expect("vacuum");
    println!("PGDATA {}", c.pgdata().display());
    println!("DATADIR {}", c.data_dir().display());
    println!("CONFIGDIR {}", c.configdir.display());
    while !std::path::Path::new("/tmp/scratch-stop").exists() {
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}
