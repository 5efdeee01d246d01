//! The running web configuration and the thread that re-reads it.
//!
//! Requests and new connections take [`LiveWebConfig::current`], the configuration last
//! published, which touches no file and waits on nothing the file system does. A watcher thread
//! compares the files' stamps every [`POLL_INTERVAL`] and on a change reads them again (a FIFO, a
//! huge or endlessly nested file is refused, see [`super::read`] and [`super::file`]); a slow or
//! hung file system stalls that thread only, never a request or the shutdown.
//!
//! A change is applied only from a complete, valid read, and never weakens the protections on
//! its own: turning TLS or basic auth off takes a restart (logged, the running configuration
//! kept), and any other weakening (client certificates no longer required or verified, a lower
//! `min_version`, a response header dropped) only once two consecutive reads, a poll apart, found
//! the same content. A file rewritten in place (`cat > web.yml` truncates, then writes) is
//! therefore never served half-written with fewer protections.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{BasicAuth, Watched, WebConfig, WebConfigError};

/// How often the watcher compares the files' stamps.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// The running web configuration; see the module documentation.
pub struct LiveWebConfig {
    shared: Arc<Shared>,
    auth: BasicAuth,
    /// Dropping it ends the watcher thread (at its next poll).
    _stop: Option<mpsc::Sender<()>>,
}

struct Shared {
    path: PathBuf,
    published: watch::Sender<Arc<WebConfig>>,
    state: Mutex<State>,
}

struct State {
    /// The files of the last read, successful or not.
    watched: Vec<Watched>,
    /// A valid configuration that weakens the running one, seen once: applied when the next
    /// read finds the same content.
    pending: Option<[u8; 32]>,
}

impl std::fmt::Debug for LiveWebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveWebConfig")
            .field("path", &self.shared.path)
            .finish()
    }
}

/// How a new configuration compares with the running one.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// As protective as the running one, or more.
    Keeps,
    /// Fewer protections, which the file may ask for: applied after a second identical read.
    Weakens(&'static str),
    /// Takes a restart: never applied while running.
    NeedsRestart(&'static str),
}

fn compare(running: &WebConfig, new: &WebConfig) -> Change {
    match (running.tls.is_some(), new.tls.is_some()) {
        (true, false) => return Change::NeedsRestart("it turns TLS off"),
        (false, true) => return Change::NeedsRestart("it turns TLS on"),
        _ => {}
    }
    if !running.users.is_empty() && new.users.is_empty() {
        return Change::NeedsRestart("it turns basic auth off");
    }
    if running.client_auth.mandatory() && !new.client_auth.mandatory() {
        return Change::Weakens("client certificates are no longer required");
    }
    if running.client_auth.verifies() && !new.client_auth.verifies() {
        return Change::Weakens("client certificates are no longer verified");
    }
    if new.min_version < running.min_version {
        return Change::Weakens("a lower min_version");
    }
    if running.headers.keys().any(|h| !new.headers.contains_key(h)) {
        return Change::Weakens("a response header is no longer set");
    }
    Change::Keeps
}

impl LiveWebConfig {
    /// Load the file and start its watcher thread.
    pub fn load(path: &Path) -> Result<LiveWebConfig, WebConfigError> {
        WebConfig::load(path).map(|c| LiveWebConfig::watching(c, POLL_INTERVAL))
    }

    /// `config`, re-read by a watcher thread every `interval`.
    pub fn watching(config: WebConfig, interval: Duration) -> LiveWebConfig {
        let mut live = LiveWebConfig::new(config);
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = live.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("web-config-watch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    shared.poll();
                }
            });
        match spawned {
            Ok(_) => live._stop = Some(stop),
            Err(e) => {
                error!(error = %e, "cannot start the web configuration watcher; changes to the file take a restart")
            }
        }
        live
    }

    /// `config`, without a watcher: it changes only through [`LiveWebConfig::check_files`].
    pub fn new(mut config: WebConfig) -> LiveWebConfig {
        let watched = std::mem::take(&mut config.watched);
        for warning in config.warnings() {
            warn!(path = %config.path.display(), "web configuration: {warning}");
        }
        let path = config.path.clone();
        let (published, _) = watch::channel(Arc::new(config));
        LiveWebConfig {
            shared: Arc::new(Shared {
                path,
                published,
                state: Mutex::new(State { watched, pending: None }),
            }),
            auth: BasicAuth::new(),
            _stop: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    pub fn auth(&self) -> &BasicAuth {
        &self.auth
    }

    /// The configuration in force: the last one published. Touches no file.
    pub fn current(&self) -> Arc<WebConfig> {
        self.shared.published.borrow().clone()
    }

    /// What the watcher does at each poll, now, on the calling thread (blocking file I/O).
    pub fn check_files(&self) {
        self.shared.poll();
    }
}

impl Shared {
    fn poll(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.pending.is_none() && !state.watched.iter().any(Watched::changed) {
            return;
        }
        let path = self.path.display().to_string();
        match WebConfig::load(&self.path) {
            Ok(mut new) => {
                state.watched = std::mem::take(&mut new.watched);
                let running = self.published.borrow().clone();
                match compare(&running, &new) {
                    Change::NeedsRestart(why) => {
                        state.pending = None;
                        error!(%path, "web configuration changed: {why}, which takes a restart; keeping the running web configuration");
                        return;
                    }
                    Change::Weakens(why) if state.pending != Some(new.digest) => {
                        state.pending = Some(new.digest);
                        warn!(%path, "web configuration changed and weakens the running one ({why}); it applies once a second read finds the same content");
                        return;
                    }
                    Change::Weakens(_) | Change::Keeps => {}
                }
                state.pending = None;
                if new.digest == running.digest {
                    return; // touched, not changed
                }
                info!(%path, "web configuration reloaded: {}", new.summary());
                for warning in new.warnings() {
                    warn!(%path, "web configuration: {warning}");
                }
                self.published.send_replace(Arc::new(new));
            }
            Err(e) => {
                state.pending = None;
                error!(error = %e, "web configuration changed but cannot be used; keeping the running one");
                state.watched = e.watched;
            }
        }
    }
}
