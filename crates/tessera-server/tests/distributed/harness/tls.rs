//! Certificates for the TLS tests, made by the `openssl` command for each test and valid for
//! two days, so nothing that expires is committed: a test CA, a server certificate it signs
//! for `127.0.0.1` and `localhost` (the only names a server on loopback is reached by here), a
//! client certificate it signs, and a second CA that signed none of them — what a deployment
//! with the wrong CA file trusts.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::run;

pub struct TestPki {
    dir: TempDir,
}

impl TestPki {
    pub async fn create() -> TestPki {
        let pki = TestPki { dir: tempfile::tempdir().expect("temp dir") };
        pki.self_signed_ca("ca", "tessera test CA").await;
        pki.self_signed_ca("other-ca", "some other CA").await;
        // Also for client authentication: cluster nodes present it to each other on the bus.
        let server = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n";
        pki.signed("server", "localhost", server).await;
        pki.signed("client", "tessera", "extendedKeyUsage=clientAuth\n").await;
        pki
    }

    /// The CA that signed the server and client certificates.
    pub fn ca(&self) -> PathBuf {
        self.file("ca.pem")
    }

    /// A CA that signed nothing here.
    pub fn other_ca(&self) -> PathBuf {
        self.file("other-ca.pem")
    }

    pub fn server_cert(&self) -> PathBuf {
        self.file("server.pem")
    }

    pub fn server_key(&self) -> PathBuf {
        self.file("server.key")
    }

    pub fn client_cert(&self) -> PathBuf {
        self.file("client.pem")
    }

    pub fn client_key(&self) -> PathBuf {
        self.file("client.key")
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn self_signed_ca(&self, name: &str, common_name: &str) {
        openssl(
            self.dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={common_name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        )
        .await;
    }

    /// A key and a certificate for it signed by `ca`, with `extensions` (an OpenSSL extension
    /// file's lines) besides the usual end-entity ones.
    async fn signed(&self, name: &str, common_name: &str, extensions: &str) {
        let dir = self.dir.path();
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={common_name}"),
            ],
        )
        .await;
        let ext = format!("{name}.ext");
        std::fs::write(
            dir.join(&ext),
            format!("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n{extensions}"),
        )
        .expect("write the extension file");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                &format!("{}", u32::from_be_bytes(tessera_core::secret::random_bytes::<4>()) >> 1),
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &format!("{name}.pem"),
            ],
        )
        .await;
    }
}

/// `openssl args…` in `dir`; fails the test, saying what to install, if it cannot run.
async fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        panic!("the openssl command is not on PATH: install it (Debian package `openssl`) for the TLS tests");
    }
    let output = run(cmd).await;
    assert!(
        output.status.success(),
        "openssl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}
