//! Certificates made with the openssl tool for TLS tests: a CA, a server certificate for
//! `localhost` signed by it, and an unrelated CA.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Certs {
    pub ca: PathBuf,
    pub other_ca: PathBuf,
    pub server_crt: PathBuf,
    pub server_key: PathBuf,
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().expect("run openssl");
    super::assert_success(&out, "openssl");
}

/// A CA, a server certificate for DNS name `localhost` only, and an unrelated CA.
pub fn make_certs(dir: &Path) -> Certs {
    std::fs::create_dir_all(dir).expect("cert dir");
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "jobdbctl test CA"), ("other", "unrelated CA")] {
        sh(Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args([
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
            ])
            .args(["-days", "2", "-subj", &format!("/CN={cn}")]));
    }
    sh(Command::new("openssl")
        .current_dir(dir)
        .args(["req"])
        .args(ec)
        .args([
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]));
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\n").expect("ext");
    sh(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]));
    Certs {
        ca: dir.join("ca.crt"),
        other_ca: dir.join("other.crt"),
        server_crt: dir.join("server.crt"),
        server_key: dir.join("server.key"),
    }
}
