//! A real S3-compatible server for the tests: `s3s-fs` (crates.io, the s3s project's file-system
//! backed S3 server), installed by `tools/services.sh`, which exports its path as
//! `BIANMIN_TEST_S3_BIN`. Each test gets a server of its own on a fresh directory.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub const ACCESS_KEY: &str = "bianmin-test";
pub const SECRET_KEY: &str = "bianmin-test-secret";
pub const BUCKET: &str = "bianmin";

pub struct S3Server {
    child: Child,
    pub endpoint: String,
    /// The server's root: bucket `b`'s object `k` is the file `root/b/k`.
    pub root: tempfile::TempDir,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    /// `Objects::from_url` options that reach this server.
    pub fn options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint.as_str()),
            ("aws_allow_http", "true"),
            ("aws_access_key_id", ACCESS_KEY),
            ("aws_secret_access_key", SECRET_KEY),
            ("aws_region", "us-east-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.path().join(BUCKET).join(key)
    }
}

fn binary() -> Option<PathBuf> {
    match std::env::var("BIANMIN_TEST_S3_BIN") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            assert!(
                std::env::var("BIANMIN_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "BIANMIN_REQUIRE_SERVICES=1 but BIANMIN_TEST_S3_BIN is not set: start the services (tools/services.sh)"
            );
            None
        }
    }
}

/// Starts a server on a free loopback port with bucket `BUCKET`; `None` when no server binary
/// is configured (and the services are not required).
pub fn start() -> Option<S3Server> {
    let bin = binary()?;
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join(BUCKET)).unwrap();
    // A port the kernel just handed out and released: nothing else on loopback is asking for it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(&bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    // Ready once it logs that it listens (its log goes to stdout).
    let out = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(l)) => {
                let ready = l.contains("server is running") || l.contains("listening");
                seen.push(l);
                if ready {
                    break;
                }
            }
            _ => panic!("s3s-fs ended before listening: {seen:?}"),
        }
    }
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Some(S3Server {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
        root,
    })
}
