//! SIGTERM and SIGINT as a value the work can look at, instead of the
//! default of dying on the spot.
//!
//! A command that must not leave half a state behind (a backup with an open
//! multipart upload, a drill with a running scratch cluster) installs the
//! handlers first, then either checks a [`CancellationToken`] between steps
//! and turns it into an error, so that its ordinary error path undoes what
//! was started, or races its work against [`cancelled`] when dropping the
//! work is itself the clean-up (destructors run).

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Both stop signals, installed: from here on they no longer kill the process.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Wait for the next stop signal; returns its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// A token cancelled by the first SIGTERM or SIGINT (logged once).
pub fn token() -> std::io::Result<CancellationToken> {
    let mut signals = Signals::install()?;
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let name = signals.recv().await;
        tracing::warn!(signal = name, "stop requested: undoing the work in flight");
        cancel.cancel();
    });
    Ok(token)
}

/// Run `work` unless a stop signal comes first; then `work` is dropped (its
/// destructors are the clean-up) and the error is [`crate::exit::INTERRUPTED`].
pub async fn cancelled<T>(
    what: &str,
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let token = token()?;
    tokio::select! {
        result = work => result,
        _ = token.cancelled() => Err(crate::exit::interrupted(format!(
            "{what} aborted by signal: nothing was kept"
        ))),
    }
}
