//! Test support shared by the store's contract tests, the end-to-end tests and the
//! benchmarks: Debian's PostgreSQL server, started for real in a temporary directory.
//!
//! `initdb` into a fresh directory, `pg_ctl start` on a free loopback port with the
//! socket in that directory: no system service, no shared state with other runs. When
//! the process runs as root (CI containers), the server runs as the `postgres` user
//! (PostgreSQL refuses root). A missing PostgreSQL is an error that says how to
//! install it, never a skipped test.
#![deny(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// A PostgreSQL server owned by the test; stopped when dropped.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

/// The directory with `initdb`, `pg_ctl` and `postgres`: `$KEYGATE_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("KEYGATE_PG_BIN") {
        return PathBuf::from(p);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: \
             run scripts/test (it installs Debian's `postgresql`), or set KEYGATE_PG_BIN"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgServer {
    /// Start a new server. `durable`: keep PostgreSQL's fsync on (benchmarks compare
    /// like with like); tests turn it off for speed (a stopped server still keeps
    /// everything it acknowledged).
    pub fn start(durable: bool) -> PgServer {
        let bin = bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("keygate-pg-")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()));
        }
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = server.data();
        server.run_pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "keygate",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nmax_connections = 200\n",
            server.port,
            server.dir.path().display()
        );
        if !durable {
            conf.push_str("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
        }
        let conf_path = Path::new(&data).join("postgresql.auto.conf");
        let mut existing = std::fs::read_to_string(&conf_path).unwrap_or_default();
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).expect("write postgresql.auto.conf");
        server.start_again();
        server
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run_pg(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args(args);
        run(&mut cmd);
    }

    /// Start the (stopped) server again, on the same port and data.
    pub fn start_again(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log").display().to_string();
        self.run_pg(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-w", "-t", "60", "start"],
        );
    }

    /// Turn TLS on with a fresh certificate for 127.0.0.1 issued by a fresh test CA
    /// (made with the `openssl` tool), accept TCP clients only over TLS (`hostssl`;
    /// the local socket stays open for `createdb`) and restart; returns the CA
    /// certificate's path, the one root a client must trust.
    pub fn enable_tls(&self) -> PathBuf {
        let dir = self.dir.path();
        let (ca, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (crt, key, csr) = (
            dir.join("server.crt"),
            dir.join("server.key"),
            dir.join("server.csr"),
        );
        let ext = dir.join("server.ext");
        run(Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=keygate test CA"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&ca));
        run(Command::new("openssl")
            .args([
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .expect("extensions");
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&crt));
        if self.as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(&crt)
                .arg(&key));
        }
        run(Command::new("chmod").arg("600").arg(&key));
        let conf_path = Path::new(&self.data()).join("postgresql.auto.conf");
        let mut conf = std::fs::read_to_string(&conf_path).unwrap_or_default();
        conf.push_str(&format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            crt.display(),
            key.display()
        ));
        std::fs::write(&conf_path, conf).expect("write postgresql.auto.conf");
        let hba = Path::new(&self.data()).join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        self.stop();
        self.start_again();
        ca
    }

    /// Stop the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        let data = self.data();
        self.run_pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for database `db` (see [`PgServer::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://keygate@127.0.0.1:{}/{db}", self.port)
    }

    /// Create a fresh database and return its URL.
    pub fn create_database(&self, name: &str) -> String {
        let port = self.port.to_string();
        let host = self.dir.path().display().to_string();
        let mut cmd = Command::new(self.bin.join("createdb"));
        cmd.args(["-h", &host, "-p", &port, "-U", "keygate", name]);
        run(&mut cmd);
        self.url(name)
    }

    /// A fresh database with a unique name on the process-wide shared server.
    pub fn fresh_database(prefix: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        shared().create_database(&format!("{prefix}_{}_{n}", std::process::id()))
    }
}

/// One server for the whole test process (databases keep tests apart). It is never
/// dropped, so a watchdog stops it when the process is gone.
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = PgServer::start(false);
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop}",
            pid = std::process::id(),
            stop = s.stop_command()
        );
        // Deliberately not waited for: it outlives this process to clean up after it.
        #[allow(clippy::zombie_processes)]
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("watchdog");
        s
    })
}

impl PgServer {
    fn stop_command(&self) -> String {
        let ctl = self.bin.join("pg_ctl").display().to_string();
        let cmd = format!("{ctl} -D {} -m immediate stop", self.data());
        let dir = self.dir.path().display();
        if self.as_postgres {
            format!("runuser -u postgres -- {cmd}; rm -rf {dir}")
        } else {
            format!("{cmd}; rm -rf {dir}")
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let _ = cmd
            .args(["-D", &data, "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn run(cmd: &mut Command) {
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed after {:?}: {}{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
