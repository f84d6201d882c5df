//! Accept that backs off. When the process is out of file descriptors (EMFILE) or the
//! system is (ENFILE), `accept` fails at once, again and again: a loop that only
//! logs and retries spins a core and writes a line per attempt. Here each failure
//! doubles a pause (1 ms up to 1 s), reset by the next success; the log line is
//! written at most once a second (with how many failures it stands for).

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// The next connection of `listener`, waiting out failures. `what` names the
/// listener in the log.
pub async fn accept(listener: &TcpListener, what: &str) -> (TcpStream, SocketAddr) {
    let mut pause = Duration::from_millis(1);
    let mut failures = 0u64;
    let mut logged: Option<Instant> = None;
    loop {
        match listener.accept().await {
            Ok(c) => return c,
            Err(e) => {
                failures += 1;
                if logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(listener = what, error = %e, failures, "accept failed; backing off");
                    logged = Some(Instant::now());
                    failures = 0;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
    }
}
