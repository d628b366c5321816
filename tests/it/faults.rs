//! S3 failing under a backup: a loopback proxy in front of the real S3
//! server refuses requests with 503, resets connections in the middle of a
//! part, or stops answering altogether.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::backup::{job_env, Keys};
use crate::common::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forward everything.
    Pass,
    /// Answer the next N connections with 503 Service Unavailable.
    Refuse(u32),
    /// Forward, but reset the connection once this many request bytes have passed in all (once).
    ResetAfter(u64),
    /// Drop every connection at once: the server is gone.
    Dead,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    /// Flipped to true to reset every open connection, as a dying server does.
    dead: tokio::sync::watch::Sender<bool>,
    pub up_bytes: Arc<AtomicU64>,
    pub refused: Arc<AtomicU32>,
    pub resets: Arc<AtomicU32>,
}

impl FaultProxy {
    pub async fn start(upstream: SocketAddr, mode: Mode) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (dead, _) = tokio::sync::watch::channel(false);
        let proxy = FaultProxy {
            addr: listener.local_addr().unwrap(),
            mode: Arc::new(Mutex::new(mode)),
            dead,
            up_bytes: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicU32::new(0)),
            resets: Arc::new(AtomicU32::new(0)),
        };
        let (mode, up, refused, resets) = (
            proxy.mode.clone(),
            proxy.up_bytes.clone(),
            proxy.refused.clone(),
            proxy.resets.clone(),
        );
        let dead = proxy.dead.clone();
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let current = *mode.lock().unwrap();
                let (mode, up, refused, resets) =
                    (mode.clone(), up.clone(), refused.clone(), resets.clone());
                let dead = dead.subscribe();
                tokio::spawn(async move {
                    match current {
                        Mode::Dead => reset(client),
                        Mode::Refuse(n) if n > 0 => {
                            *mode.lock().unwrap() = if n > 1 {
                                Mode::Refuse(n - 1)
                            } else {
                                Mode::Pass
                            };
                            refused.fetch_add(1, Ordering::SeqCst);
                            refuse(client).await;
                        }
                        _ => forward(client, upstream, mode, up, resets, dead).await,
                    }
                });
            }
        });
        proxy
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
        let _ = self.dead.send(mode == Mode::Dead);
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Close with a TCP reset, as a crashed peer's kernel does.
fn reset(stream: TcpStream) {
    let std = stream.into_std().expect("a tokio stream");
    let _ = socket2::SockRef::from(&std).set_linger(Some(Duration::ZERO));
    drop(std);
}

async fn refuse(mut client: TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>ServiceUnavailable</Code><Message>injected</Message></Error>";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(response.as_bytes()).await;
    let _ = client.shutdown().await;
}

async fn forward(
    client: TcpStream,
    upstream: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    up: Arc<AtomicU64>,
    resets: Arc<AtomicU32>,
    mut dead: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let upward = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let total = up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            let m = *mode.lock().unwrap();
            match m {
                Mode::ResetAfter(limit) if total >= limit => {
                    *mode.lock().unwrap() = Mode::Pass;
                    resets.fetch_add(1, Ordering::SeqCst);
                    return true;
                }
                Mode::Dead => return true,
                _ => {}
            }
            if sw.write_all(&buf[..n]).await.is_err() {
                return false;
            }
        }
    };
    let downward = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        false
    };
    let died = async {
        while !*dead.borrow() {
            if dead.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        true
    };
    let kill = tokio::select! { k = upward => k, k = downward => k, k = died => k };
    if kill {
        let client = cr.reunite(cw).expect("same stream");
        reset(client);
    }
}

fn garage_addr() -> SocketAddr {
    let endpoint = std::env::var("STOCKOPS_TEST_S3_ENDPOINT")
        .expect("STOCKOPS_TEST_S3_ENDPOINT is set by scripts/testenv.sh");
    endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("host:port")
}

fn through(proxy: &FaultProxy, repo: &str, keys: &Keys) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = job_env(repo, keys)
        .into_iter()
        .filter(|(k, _)| k != "AWS_ENDPOINT_URL")
        .collect();
    env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    env
}

#[tokio::test]
async fn transient_s3_failures_are_retried() {
    let db = TestDb::provisioned("flt_retry").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.3", "--as-of", "2026-01-01"]),
        "seed",
    );
    let dir = temp_dir("flt_retry");
    let keys = Keys::new(&dir);
    let repo = crate::backup::s3_repo("retry");
    // Two refused connections, then a reset in the middle of the second part.
    let proxy = FaultProxy::start(garage_addr(), Mode::Refuse(2)).await;
    let env = through(&proxy, &repo, &keys);
    // Then a reset in the middle of the first part.
    let proxy_mode_after_refusals = Mode::ResetAfter(2 * 1024 * 1024);
    let mut child = command(
        &["backup", "--json", "--part-size-mib", "5"],
        Some(&db.url),
        &env,
    )
    .spawn()
    .unwrap();
    while proxy.refused.load(Ordering::SeqCst) < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before it was refused twice"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    proxy.set(proxy_mode_after_refusals);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_success(&out, "backup through a failing proxy");
    assert_eq!(
        proxy.resets.load(Ordering::SeqCst),
        1,
        "the reset was injected"
    );
    let mut env_direct = job_env(&repo, &keys);
    env_direct.push((
        "STOCKOPS_AGE_IDENTITY".into(),
        keys.identity.display().to_string(),
    ));
    let out = stockops_env(&["backups", "verify", "latest"], None, None, &env_direct);
    assert_success(&out, "the retried backup verifies, decrypted");
}

#[tokio::test]
async fn s3_dying_mid_upload_fails_cleanly_and_prune_clears_it() {
    use_s3_env();
    let db = TestDb::provisioned("flt_dead").await;
    assert_success(
        &db.run(&["seed", "--scale", "0.3", "--as-of", "2026-01-01"]),
        "seed",
    );
    let dir = temp_dir("flt_dead");
    let keys = Keys::new(&dir);
    let repo = crate::backup::s3_repo("dead");
    let proxy = FaultProxy::start(garage_addr(), Mode::Pass).await;
    let mut env = through(&proxy, &repo, &keys);
    // A vanished server is given up on after this many seconds an attempt.
    env.push(("STOCKOPS_S3_TIMEOUT_SECS".into(), "5".into()));
    let mut child = command(&["backup", "--part-size-mib", "5"], Some(&db.url), &env)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.up_bytes.load(Ordering::SeqCst) < 3 * 1024 * 1024 {
        assert!(Instant::now() < deadline, "the upload never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before the server died"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    proxy.set(Mode::Dead);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !out.status.success(),
        "a backup whose server died must fail"
    );
    assert!(
        stderr(&out).contains("no manifest was written"),
        "{}",
        stderr(&out)
    );
    // The server is back: nothing complete, and prune clears what is left.
    let env = job_env(&repo, &keys);
    let out = stockops_env(&["backups", "list", "--json"], None, None, &env);
    assert_success(&out, "list");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|b| b["complete"] == false),
        "{list}"
    );
    let out = stockops_env(
        &["backups", "prune", "--keep-last", "3", "--grace-hours", "0"],
        None,
        None,
        &env,
    );
    assert_success(&out, "prune");
    let store = open_store(&repo).await;
    assert!(
        store.incomplete_uploads().await.unwrap().is_empty(),
        "prune aborts the dead upload"
    );
    assert!(
        store.list("").await.unwrap().is_empty(),
        "prune removes the incomplete backup's objects"
    );
}
