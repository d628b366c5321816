//! `stockops restore --physical`: point-in-time recovery from a physical
//! backup and the WAL archive, into a new data directory beside production.
//!
//! Steps:
//! 1. refuse a target directory that exists and is not empty;
//! 2. stream the base backup through age and zstd into an extraction with
//!    an allow-list ([`crate::recovery::untar`]: files and directories only, modes
//!    forced, nothing outside the directory), checking the stored digest
//!    against the manifest's;
//! 3. write the recovery settings: `recovery.signal`, and in
//!    `postgresql.auto.conf` (read last, so it wins) `restore_command =
//!    'stockops --config FILE wal fetch %f %p'` with a config file that names
//!    the repository and a copy of the identity, and AWS settings of its own,
//!    in a private directory outside the data directory (0700, files 0600,
//!    removed once recovery is over; no secret on a command line nor in the
//!    server's environment), the target (`recovery_target_time` / `_lsn`,
//!    none for `--latest`), `recovery_target_action = 'promote'`, and what
//!    keeps the copy apart from production: its own port, no TCP, its own
//!    socket directory, `archive_mode = off` (it must not archive into
//!    production's repository), none of production's recovery or archive
//!    hooks; every file written with `O_NOFOLLOW`, new ones with `O_EXCL`;
//! 4. start it (as the postgres OS user when run as root, with an emptied
//!    environment) and wait, bounded, until recovery has ended and the
//!    server is promoted;
//! 5. report where it stopped: LSN, timeline, last replayed commit time.
//!
//! The server keeps running afterwards: stop it with `pg_ctl -D DIR stop`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::io::SyncIoBridge;

use crate::exit;
use crate::pipeline;
use crate::pipeline::crypto::Identities;
use crate::recovery::untar;
use crate::repository::catalog::Manifest;
use crate::repository::storage::ReadStore;

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Time(DateTime<Utc>),
    Lsn(String),
    /// The end of the archive.
    Latest,
}

#[derive(Debug, Clone)]
pub struct PitrOptions {
    pub target: Target,
    pub target_dir: PathBuf,
    pub port: u16,
    /// Settings `wal fetch` needs, written to the config file restore_command names.
    pub repo: String,
    pub s3_path_style: bool,
    pub identity_file: PathBuf,
    /// Give up waiting for recovery after this long.
    pub timeout: Duration,
    /// A throwaway copy (a drill): its own pg_hba.conf (the OS user running
    /// stockops as postgres by peer, other logins by password, never trust)
    /// rather than production's; its socket is in the 0700 data directory,
    /// so only its owner (and root) can reach it.
    pub throwaway: bool,
}

/// What `restore --physical --json` prints.
#[derive(Debug, Serialize)]
pub struct PitrReport {
    pub backup: String,
    pub target_dir: String,
    pub port: u16,
    pub target: String,
    /// The server's WAL position once promoted.
    pub lsn: String,
    pub timeline: i32,
    /// The commit time of the last transaction replayed (UTC, RFC 3339).
    pub reached_time: Option<String>,
    pub seconds: f64,
}

pub async fn run(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    opts: &PitrOptions,
) -> anyhow::Result<PitrReport> {
    let started = Instant::now();
    m.validate()
        .map_err(|e| exit::Coded::new(exit::FAILURE, e))?;
    let dir = &opts.target_dir;
    // 1. An empty place, and (to the end of the archive) an archive without
    //    holes: PostgreSQL takes a segment it cannot fetch for the end of the
    //    WAL and would promote there, silently short.
    let newest = match opts.target {
        Target::Latest => Some(continuous_from(store, m).await?),
        _ => None,
    };
    prepare_dir(dir)?;
    // 2. The base backup, extracted.
    extract(store, m, ids, dir).await?;
    // 3. The recovery settings.
    let bin = crate::backup::logical::tool(m.server_major(), "pg_ctl");
    let bin_dir = Path::new(&bin).parent().map(Path::to_path_buf);
    let root = is_root();
    let keys = Keyring::create(root, &opts.identity_file, &opts.repo).await?;
    write_settings(dir, opts, &m.id, &keys)?;
    if root {
        run_ok(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir),
        )?;
    }
    // 4. Start, and wait for the end of recovery.
    let log = dir.join("stockops-restore.log");
    let psql = bin_dir
        .map(|d| d.join("psql").display().to_string())
        .unwrap_or_else(|| "psql".into());
    let sql = |q: &str| query(root, &psql, dir, opts.port, q);
    // A server still recovering when the wait gives up keeps the identity
    // copy, to go on fetching; otherwise it goes once recovery is over.
    let waited = start_and_wait(root, &bin, dir, &log, &sql, opts.timeout, &keys).await;
    if waited.as_ref().is_err_and(|e| e.is::<StillRecovering>()) {
        keys.keep();
    } else {
        drop(keys);
    }
    waited?;
    // 5. Where it stopped.
    let row = sql(
        // The timeline of the WAL being written: right after a promotion
        // the last checkpoint can still name the old one.
        "SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn()), \
         coalesce(to_char(pg_last_xact_replay_timestamp() AT TIME ZONE 'UTC', \
                          'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '')",
    )?;
    let mut parts = row.split('|');
    let lsn = parts.next().unwrap_or_default().to_string();
    let timeline = parts
        .next()
        .and_then(|f| i32::from_str_radix(f.get(..8)?, 16).ok())
        .unwrap_or(0);
    let reached = parts.next().filter(|s| !s.is_empty()).map(str::to_string);
    if let (Some(Some(newest)), Some(w)) = (&newest, &m.wal) {
        let at = crate::backup::wal::parse_lsn(&lsn)
            .map(|l| crate::backup::wal::lsn_segment(l, w.timeline, w.segment_size))
            .unwrap_or_default();
        if at.get(8..) < newest.get(8..) {
            bail!(
                "recovery ended at {lsn} (segment {at}), before the newest archived segment {newest}: \
                 a segment could not be fetched; see {} (the server is left running in {})",
                log.display(),
                dir.display()
            );
        }
    }
    Ok(PitrReport {
        backup: m.id.clone(),
        target_dir: dir.display().to_string(),
        port: opts.port,
        target: describe(&opts.target),
        lsn,
        timeline,
        reached_time: reached,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The wait for the end of recovery gave up; the server is left running.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct StillRecovering(String);

/// Start the restored server and wait, bounded, until recovery has ended
/// and it is promoted ([`StillRecovering`] when the wait gives up).
async fn start_and_wait(
    root: bool,
    bin: &str,
    dir: &Path,
    log: &Path,
    sql: &dyn Fn(&str) -> anyhow::Result<String>,
    timeout: Duration,
    keys: &Keyring,
) -> anyhow::Result<()> {
    as_postgres(
        root,
        bin,
        &["-D", path(dir), "-l", path(log), "-w", "-t", "600", "start"],
    )
    .with_context(|| {
        format!(
            "starting the restored server; the end of its log ({}):\n{}",
            log.display(),
            tail(log)
        )
    })?;
    let deadline = Instant::now() + timeout;
    let mut last_answer: String;
    loop {
        match sql("SELECT pg_is_in_recovery()") {
            Ok(s) if s == "f" => break,
            Ok(_) => last_answer = "still in recovery".into(),
            Err(e) if !dir.join("postmaster.pid").exists() => {
                bail!(
                    "the restored server stopped during recovery ({e}); the end of its log:\n{}",
                    tail(log)
                )
            }
            Err(e) => {
                let why = exit::one_line(&e);
                if why.contains("authentication failed") || why.contains("no password supplied") {
                    bail!(
                        "the restored server does not let the postgres OS user in over its socket \
                         without a password ({why}): its pg_hba.conf is production's; give it a \
                         `local all postgres peer` line first (the server is left running in {})",
                        dir.display()
                    );
                }
                last_answer = format!("could not ask it: {why}");
            }
        }
        if Instant::now() > deadline {
            return Err(StillRecovering(format!(
                "recovery had not ended after {} s ({last_answer}); the server is left running in {} \
                 (its log: {}; the identity copy stays in {} for it to go on: remove both \
                 directories when done)",
                timeout.as_secs(),
                dir.display(),
                log.display(),
                keys.dir.display()
            ))
            .into());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Ok(())
}

/// Refuse an archive with a hole after the backup; the newest segment
/// recovery can reach from it, if any.
async fn continuous_from(store: &dyn ReadStore, m: &Manifest) -> anyhow::Result<Option<String>> {
    let w = m
        .wal
        .as_ref()
        .context("the manifest records no WAL position")?;
    let start = crate::backup::wal::Start {
        backup: m.id.clone(),
        timeline: w.timeline,
        segment: if w.includes_wal {
            w.stop_segment.clone()
        } else {
            w.start_segment.clone()
        },
    };
    crate::backup::wal::continuous_after(store, &start, w.segment_size).await
}

fn describe(t: &Target) -> String {
    match t {
        Target::Time(t) => format!("time {}", t.to_rfc3339()),
        Target::Lsn(l) => format!("lsn {l}"),
        Target::Latest => "the end of the archive".into(),
    }
}

/// An empty private directory to extract into: a new one is created 0700
/// (never open to others, not even for a moment); an existing one must be
/// empty and a real directory (not a symlink), and is made 0700.
fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::symlink_metadata(dir) {
        Ok(m) if !m.file_type().is_dir() => {
            return Err(exit::usage(format!(
                "{} is not a directory (a symlink or a file): a physical restore needs an empty or new directory",
                dir.display()
            )))
        }
        Ok(_) => {
            let mut entries =
                std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
            if entries.next().is_some() {
                return Err(exit::usage(format!(
                    "{} is not empty: a physical restore needs an empty or new directory",
                    dir.display()
                )));
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Err(_) => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    Ok(())
}

/// Decrypt and decompress the base backup, and extract it into `dir` with
/// the allow-list of [`crate::recovery::untar`] (never `tar -x` as root: the archive
/// is the repository's, whoever can write there chooses its headers).
async fn extract(
    store: &dyn ReadStore,
    m: &Manifest,
    ids: &Identities,
    dir: &Path,
) -> anyhow::Result<()> {
    let base = m
        .object("base")
        .context("the manifest lists no base object")?;
    let reader = store.open(&base.key).await?;
    let (plain, tar) = untar::channel(16);
    let owned = ids.clone();
    let opening = tokio::task::spawn_blocking(move || {
        pipeline::open(SyncIoBridge::new(reader), plain, &owned).map(|(_, d)| d)
    });
    let target = dir.to_path_buf();
    let unpacking =
        tokio::task::spawn_blocking(move || untar::extract(tar, &target, &untar::Rules::default()));
    let (opened, unpacked) = (opening.await?, unpacking.await?);
    // A failed extraction (a refused member, a duplicate, a full disk)
    // stops reading, which breaks the decryption's pipe: then the
    // extraction's error is the finding. Otherwise a decryption failure
    // (which ends the tar early) comes first.
    let pipe_broken = matches!(&opened, Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe);
    let done = match unpacked {
        Err(e) if opened.is_ok() || pipe_broken => {
            return Err(anyhow::Error::new(e).context("extracting the base backup"))
        }
        other => other,
    };
    let digests = opened.map_err(|e| {
        crate::repository::backups::no_match(anyhow::anyhow!("{}: {e}", base.key), m, ids)
    })?;
    let done = done.context("extracting the base backup")?;
    if done.neutralised > 0 {
        tracing::warn!(
            files = done.neutralised,
            "the base backup asked for setuid, setgid or sticky bits, which were dropped"
        );
    }
    if digests.stored != base.stored {
        bail!(
            "{} read {} bytes sha256 {}, the manifest records {} bytes sha256 {}",
            base.key,
            digests.stored.bytes,
            digests.stored.sha256,
            base.stored.bytes,
            base.stored.sha256
        );
    }
    Ok(())
}

/// TOML string literal.
fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A word for the shell PostgreSQL runs restore_command with.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A string value for postgresql.conf, whose parser takes a backslash as
/// an escape: both it and the quote are doubled.
fn conf_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// What `wal fetch` needs to read the repository while the restored server
/// recovers, and nothing else: a copy of the identity and, for S3, the
/// endpoint, region and credentials this run resolved, each mode 0600 in a
/// directory of its own (0700, random name, owned by the OS user the server
/// runs as) outside the data directory, whose configuration came from the
/// backup and could `include` a file it knows the name of. Removed when
/// dropped, that is as soon as recovery is over, unless kept.
pub(crate) struct Keyring {
    pub(crate) dir: PathBuf,
    s3: bool,
    kept: std::cell::Cell<bool>,
}

/// The start of a keyring directory's name; the rest is random.
pub(crate) const KEYRING_PREFIX: &str = "stockops-restore-keys-";

impl Keyring {
    async fn create(root: bool, identity_file: &Path, repo: &str) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        let dir =
            std::env::temp_dir().join(format!("{KEYRING_PREFIX}{:016x}", rand::random::<u64>()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let keys = Self {
            dir,
            s3: repo.starts_with("s3://"),
            kept: false.into(),
        };
        let key = std::fs::read(identity_file)
            .with_context(|| format!("reading the identity file {}", identity_file.display()))?;
        write_new(&keys.identity(), &key)?;
        if keys.s3 {
            write_new(&keys.aws(), aws_profile().await?.as_bytes())?;
        }
        if root {
            run_ok(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&keys.dir),
            )?;
        }
        Ok(keys)
    }

    fn identity(&self) -> PathBuf {
        self.dir.join("identity.txt")
    }

    fn aws(&self) -> PathBuf {
        self.dir.join("aws.conf")
    }

    /// The environment restore_command gives `wal fetch`: the AWS SDK's
    /// files are this keyring's, and nothing is asked of the instance
    /// metadata service.
    fn fetch_env(&self) -> String {
        if !self.s3 {
            return String::new();
        }
        let aws = sh_quote(&self.aws().display().to_string());
        format!(
            "AWS_CONFIG_FILE={aws} AWS_SHARED_CREDENTIALS_FILE={aws} AWS_PROFILE=default \
             AWS_EC2_METADATA_DISABLED=true "
        )
    }

    /// Leave it for a server still recovering.
    fn keep(self) {
        self.kept.set(true);
    }
}

impl Drop for Keyring {
    fn drop(&mut self) {
        if !self.kept.get() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The S3 endpoint, region and credentials this run uses, resolved by the
/// AWS SDK from wherever they come (environment, profile, instance role),
/// as an AWS config file's `[default]` profile.
async fn aws_profile() -> anyhow::Result<String> {
    use aws_sdk_s3::config::ProvideCredentials;
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let creds = shared
        .credentials_provider()
        .context("no AWS credentials for the S3 repository")?
        .provide_credentials()
        .await
        .context("resolving the AWS credentials restore_command will need")?;
    let mut text = String::from("[default]\n");
    let mut line = |k: &str, v: &str| {
        if v.contains(['\n', '\r']) {
            bail!("the AWS setting {k} holds a line break");
        }
        text.push_str(&format!("{k} = {v}\n"));
        Ok(())
    };
    if let Some(region) = shared.region() {
        line("region", region.as_ref())?;
    }
    if let Some(url) = shared.endpoint_url() {
        line("endpoint_url", url)?;
    }
    line("aws_access_key_id", creds.access_key_id())?;
    line("aws_secret_access_key", creds.secret_access_key())?;
    if let Some(token) = creds.session_token() {
        line("aws_session_token", token)?;
    }
    Ok(text)
}

/// A new file, mode 0600, never through a symlink nor over a file the
/// backup brought.
fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .with_context(|| format!("writing {} (is it in the backup?)", path.display()))
}

/// Add to a file of the data directory (created if absent), never through a symlink.
fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// pg_hba.conf of a copy whose rules stockops writes: the OS user that
/// runs stockops (root, and the postgres OS user the server runs as, when
/// run as root) as postgres by peer; every other login by its password.
/// Never `trust`.
fn own_hba(dir: &Path) -> anyhow::Result<String> {
    let hba = dir.join("stockops-restore-hba.conf");
    write_new(
        &hba,
        b"# a copy beside production: the OS user stockops runs as, as postgres, by peer over its\n\
          # socket (in the 0700 data directory); other logins by password, never trust\n\
          local all postgres peer map=stockops\n\
          local all all scram-sha-256\n",
    )?;
    let me = if is_root() {
        vec!["root".to_string(), "postgres".to_string()]
    } else {
        vec![run_ok(Command::new("id").arg("-un"))?]
    };
    let ident = dir.join("stockops-restore-ident.conf");
    let map: String = me
        .iter()
        .map(|u| format!("stockops {u} postgres\n"))
        .collect();
    write_new(&ident, map.as_bytes())?;
    Ok(format!(
        "hba_file = {}\nident_file = {}\n",
        conf_str(&hba.display().to_string()),
        conf_str(&ident.display().to_string())
    ))
}

fn write_settings(dir: &Path, opts: &PitrOptions, id: &str, keys: &Keyring) -> anyhow::Result<()> {
    // restore_command runs as the server's OS user with an environment of
    // its own (the server's is emptied, see `as_postgres`): this config
    // file names the repository and the keyring's identity copy.
    let config = dir.join("stockops-restore.toml");
    write_new(
        &config,
        format!(
            "# written by stockops restore --physical {id}: what restore_command needs\n\
             repo = {}\ns3_path_style = {}\nidentity_file = {}\n",
            toml_str(&opts.repo),
            opts.s3_path_style,
            toml_str(&keys.identity().display().to_string())
        )
        .as_bytes(),
    )?;
    let exe = std::env::current_exe().context("locating the stockops binary")?;
    let fetch = format!(
        "{}{} --config {} wal fetch %f %p",
        keys.fetch_env(),
        sh_quote(&exe.display().to_string()),
        sh_quote(&config.display().to_string())
    );
    let target = match &opts.target {
        Target::Time(t) => format!(
            "recovery_target_time = {}\n",
            conf_str(&t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string())
        ),
        Target::Lsn(l) => format!("recovery_target_lsn = {}\n", conf_str(l)),
        Target::Latest => String::new(),
    };
    // A cluster whose configuration lives outside its data directory (the
    // Debian layout, /etc/postgresql/15/main) arrives without it: the copy
    // gets a minimal one of its own; only the postgres OS user may log in.
    let own_conf = !dir.join("postgresql.conf").exists();
    if own_conf {
        write_new(
            &dir.join("postgresql.conf"),
            format!(
                "# written by stockops restore --physical {id}: the backed-up cluster kept its \
                 configuration outside its data directory\n"
            )
            .as_bytes(),
        )?;
    }
    let hba_setting = if opts.throwaway || own_conf || !dir.join("pg_hba.conf").exists() {
        // A drill's copy, or no pg_hba.conf came with the backup: the copy
        // gets its own rules.
        own_hba(dir)?
    } else {
        // Production's own rules, so its DBAs get in as they do there.
        String::new()
    };
    // Read last, so these win over what the backup's configuration says;
    // the commands production runs at the end of recovery or on archived
    // WAL are not this copy's to run (archive_command stays: archive_mode is
    // off, and a copy turned into production switches it back on).
    let settings = format!(
        "\n# stockops restore --physical {id}\n{hba_setting}\
         restore_command = {}\n{target}\
         recovery_target_action = 'promote'\n\
         recovery_target_timeline = 'latest'\n\
         archive_mode = 'off'\n\
         archive_cleanup_command = ''\n\
         recovery_end_command = ''\n\
         port = {}\n\
         listen_addresses = ''\n\
         unix_socket_directories = {}\n",
        conf_str(&fetch),
        opts.port,
        conf_str(&dir.display().to_string())
    );
    append(&dir.join("postgresql.auto.conf"), &settings)?;
    append(&dir.join("recovery.signal"), "")?;
    // Left by the source server: meaningless here.
    for stale in ["postmaster.pid", "postmaster.opts"] {
        let _ = std::fs::remove_file(dir.join(stale));
    }
    Ok(())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run_ok(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().context("running a command")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn as_postgres(root: bool, program: &str, args: &[&str]) -> anyhow::Result<String> {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    };
    // The server started here runs restore_command with the environment it
    // inherits: it gets none of this run's (no AWS or STOCKOPS_ variable, no
    // PGPASSWORD); restore_command sets what `wal fetch` needs.
    cmd.env_clear();
    for (key, value) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k == "PATH" || k == "LANG" || k == "TZ" || k.starts_with("LC_") {
            cmd.env(key, value);
        }
    }
    run_ok(cmd.args(args))
}

/// One query as the postgres OS user over the restored server's socket
/// (production's pg_hba.conf, or the copy's own); never a password prompt.
fn query(root: bool, psql: &str, dir: &Path, port: u16, sql: &str) -> anyhow::Result<String> {
    let port = port.to_string();
    as_postgres(
        root,
        psql,
        &[
            "-X",
            "-w",
            "-h",
            path(dir),
            "-p",
            &port,
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-Atqc",
            sql,
        ],
    )
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    crate::recovery::drill::Redact::from_env(None)
        .text(&lines[lines.len().saturating_sub(15)..].join("\n"))
}

/// A free TCP port number, for the restored server's socket name.
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `--to-time`: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` taken as UTC.
pub fn parse_time(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    Err(exit::usage(format!(
        "--to-time {s:?} is not a time: use RFC 3339 (2026-11-22T14:31:00+01:00) or YYYY-MM-DD HH:MM:SS (UTC)"
    )))
}

/// `drill --physical`: what the drill needs besides the restore's settings.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    pub to_time: Option<DateTime<Utc>>,
    pub max_rto: Option<f64>,
    pub max_rpo: Option<f64>,
    pub keep: bool,
    pub repo: String,
    pub s3_path_style: bool,
    pub identity_file: PathBuf,
    pub timeout: Duration,
}

/// A point-in-time recovery drill: check the archive from the backup on,
/// recover into a scratch directory (to `--to-time`, else to the end of the
/// archive), time it, and report the real RPO: the drill's start minus the
/// last commit the recovery replayed (what a disaster at that moment loses). The report is stored as the logical drill's is.
pub async fn drill(
    store: &dyn crate::repository::storage::WriteStore,
    m: &Manifest,
    ids: &Identities,
    opts: &DrillOptions,
) -> anyhow::Result<crate::recovery::drill::DrillReport> {
    use crate::recovery::drill::{DrillCheck, DrillReport, Phase, Redact};
    m.validate()
        .map_err(|e| exit::Coded::new(exit::FAILURE, e))?;
    let started_at = Utc::now();
    let clock = Instant::now();
    let mut phases = Vec::new();
    let mut checks = Vec::new();
    // 1. The archive, from the backup on.
    let t = Instant::now();
    let archive = continuous_from(store, m).await;
    phases.push(Phase {
        name: "check the WAL archive".into(),
        seconds: t.elapsed().as_secs_f64(),
    });
    let archive_ok = archive.is_ok();
    checks.push(DrillCheck {
        name: "WAL archive continuous from the backup".into(),
        ok: archive_ok,
        detail: match &archive {
            Ok(Some(newest)) => format!("up to {newest}"),
            Ok(None) => "no segment archived since the backup".into(),
            Err(e) => crate::exit::one_line(e),
        },
    });
    // 2. Recover into a scratch directory (unless the archive cannot get there).
    let dir = std::env::temp_dir().join(format!(
        "stockops-pitr-drill-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let mut reached: Option<PitrReport> = None;
    if archive_ok || opts.to_time.is_some() {
        // Stopped and removed however this block is left, a stop signal
        // dropping the drill included.
        let _scratch = Scratch {
            dir: dir.clone(),
            major: m.server_major(),
            keep: opts.keep,
        };
        let t = Instant::now();
        let pitr_opts = PitrOptions {
            target: opts.to_time.map(Target::Time).unwrap_or(Target::Latest),
            target_dir: dir.clone(),
            port: free_port()?,
            repo: opts.repo.clone(),
            s3_path_style: opts.s3_path_style,
            identity_file: opts.identity_file.clone(),
            timeout: opts.timeout,
            throwaway: true,
        };
        let result = run(store, m, ids, &pitr_opts).await;
        phases.push(Phase {
            name: "restore the base backup and replay the WAL".into(),
            seconds: t.elapsed().as_secs_f64(),
        });
        checks.push(DrillCheck {
            name: "recovery reached its target and promoted".into(),
            ok: result.is_ok(),
            detail: match &result {
                Ok(r) => format!("{} at {} on timeline {}", r.target, r.lsn, r.timeline),
                Err(e) => crate::exit::one_line(e),
            },
        });
        reached = result.ok();
        if reached.is_some() {
            // 3. What a logical drill checks, in each database of the stockops schema.
            let t = Instant::now();
            checks.extend(
                crate::recovery::drill::check_recovered_cluster(&dir, pitr_opts.port).await,
            );
            phases.push(Phase {
                name: "verify".into(),
                seconds: t.elapsed().as_secs_f64(),
            });
        }
    }
    // 4. The figures.
    let rto = clock.elapsed().as_secs_f64();
    let last_commit = reached
        .as_ref()
        .and_then(|r| r.reached_time.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Had the disaster struck when the drill started, this much was lost.
    let rpo =
        (started_at - last_commit.unwrap_or(m.snapshot_at)).num_milliseconds() as f64 / 1000.0;
    if let Some(max) = opts.max_rto {
        checks.push(DrillCheck {
            name: "RTO within budget".into(),
            ok: rto <= max,
            detail: format!("{rto:.1}s against {max}s"),
        });
    }
    if let Some(max) = opts.max_rpo {
        checks.push(DrillCheck {
            name: "RPO within budget".into(),
            ok: rpo <= max,
            detail: format!(
                "{rpo:.1}s (the drill's start minus the last replayed commit) against {max}s"
            ),
        });
    }
    let report = Redact::from_env(Some(&opts.identity_file)).report(DrillReport {
        backup: m.id.clone(),
        snapshot_at: last_commit.unwrap_or(m.snapshot_at),
        started_at,
        target: format!(
            "point-in-time recovery to {}",
            opts.to_time
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "the end of the archive".into())
        ),
        phases,
        rto_seconds: rto,
        rpo_seconds: rpo,
        max_rto_seconds: opts.max_rto,
        max_rpo_seconds: opts.max_rpo,
        ok: checks.iter().all(|c| c.ok),
        checks,
    });
    crate::recovery::drill::store_report(store, &report).await?;
    Ok(report)
}

/// A drill's recovered copy: stopped and removed when dropped, unless kept.
struct Scratch {
    dir: PathBuf,
    major: u32,
    keep: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.keep {
            tracing::info!(dir = %self.dir.display(), "kept the recovered cluster");
        } else {
            stop_and_remove(&self.dir, self.major);
        }
    }
}

/// Stop a recovered server and remove its directory.
fn stop_and_remove(dir: &Path, major: u32) {
    if dir.join("postmaster.pid").exists() {
        let bin = crate::backup::logical::tool(major, "pg_ctl");
        let _ = as_postgres(
            is_root(),
            &bin,
            &["-D", path(dir), "-m", "immediate", "-w", "stop"],
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_utc() {
        let a = parse_time("2026-11-22T14:31:00+01:00").unwrap();
        let b = parse_time("2026-11-22 13:31:00").unwrap();
        assert_eq!(a, b);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn literals_are_quoted() {
        assert_eq!(conf_str("it's"), "'it''s'");
        assert_eq!(conf_str(r"c:\k"), r"'c:\\k'");
        // restore_command: a shell-quoted path inside a conf string.
        assert_eq!(conf_str(&sh_quote("/it's")), r"'''/it''\\''''s'''");
        assert_eq!(sh_quote("/a b/it's"), "'/a b/it'\\''s'");
        for v in ["a\"b", "it's", "/tmp/x y/id.txt", "c:\\k"] {
            let doc: toml::Table = toml::from_str(&format!("k = {}", toml_str(v))).unwrap();
            assert_eq!(doc["k"].as_str(), Some(v));
        }
    }
}
