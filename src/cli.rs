//! Command-line definitions (clap derive) and nothing else.
//!
//! Settings are read from flags, then environment variables, then the TOML
//! file named by `--config` / `STOCKOPS_CONFIG`; see [`crate::config`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::logging::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "stockops",
    version,
    about = "Provision, back up, restore and audit the stock database",
    long_about = "Provision, back up, restore and audit the stock database.\n\n\
        Settings come from flags, then environment variables, then the TOML file \
        given by --config (or STOCKOPS_CONFIG).",
    after_help = crate::exit::HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (read after flags and environment).
    #[arg(long, env = "STOCKOPS_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database to operate on; else DATABASE_URL, the config file, then libpq's PG* variables.
    /// A password here shows in `ps`: give it with PGPASSWORD or .pgpass (stockops warns).
    #[arg(
        long,
        env = "DATABASE_URL",
        global = true,
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Backup repository: s3://BUCKET/PREFIX or file:///PATH.
    #[arg(long, env = "STOCKOPS_REPO", global = true, value_name = "URL")]
    pub repo: Option<String>,
    /// Use path-style S3 addressing (needed by most self-hosted S3 servers).
    #[arg(long, env = "STOCKOPS_S3_PATH_STYLE", global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub s3_path_style: Option<bool>,
    /// Seconds to wait for an S3 answer before retrying the request (default 60).
    #[arg(
        long,
        env = "STOCKOPS_S3_TIMEOUT_SECS",
        global = true,
        value_name = "SECS"
    )]
    pub s3_timeout_secs: Option<u64>,
    /// age recipients file, one age1... recipient a line (as `age -R`).
    #[arg(
        long,
        env = "STOCKOPS_AGE_RECIPIENTS",
        global = true,
        value_name = "FILE"
    )]
    pub recipients_file: Option<PathBuf>,
    /// age identity file (as `age -i`).
    #[arg(
        long,
        env = "STOCKOPS_AGE_IDENTITY",
        global = true,
        value_name = "FILE"
    )]
    pub identity_file: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, env = "STOCKOPS_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply migrations, roles, grants, row-level security and procedures; idempotent.
    Provision(ProvisionArgs),
    /// Manage login roles: people and programs, each a member of one group.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Load representative, deterministic fictitious data.
    Seed(SeedArgs),
    /// Read-only reports, through the api functions, as the connected login.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Call an api function as the connected login.
    Call(CallArgs),
    /// Read and verify the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure throughput against a baseline in the same run.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Load data files through the audited api (resellers' order files).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Write data files from the api (the stock state per product).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Take one full backup: pg_dump, zstd, age, streamed into the repository.
    Backup(BackupArgs),
    /// List, show and verify the backups in the repository.
    #[command(subcommand)]
    Backups(BackupsCommand),
    /// Restore a backup into a database, then prove it complete.
    Restore(RestoreArgs),
    /// Continuous WAL archiving for point-in-time recovery: archive_command, restore_command, gaps.
    #[command(subcommand)]
    Wal(WalCommand),
    /// Recovery drill: restore into a scratch cluster, check everything, time it, store the report.
    Drill(DrillArgs),
    /// The stored drill reports.
    #[command(subcommand)]
    Drills(DrillsCommand),
    /// Every committed stock movement as one JSON line, live; reconnects after a server restart.
    Watch(WatchArgs),
    /// Check that the server and the repository are hardened: findings with severity, evidence and fix.
    Doctor(DoctorArgs),
    /// Check the data itself: data-quality rules, one finding per rule broken.
    #[command(subcommand)]
    Check(CheckCommand),
    /// Run backup, prune, verify and drill on the cron schedules of the config file, in the foreground.
    Schedule(ScheduleArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the man page, or write one page per command into a directory.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Only movements in this warehouse (code).
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Only movements of this product (SKU).
    #[arg(long)]
    pub sku: Option<String>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A backup older than this many hours is a high finding.
    #[arg(long, default_value_t = 26, value_name = "HOURS")]
    pub max_backup_age_hours: u64,
    /// A drill older than this many days is a high finding.
    #[arg(long, default_value_t = 8, value_name = "DAYS")]
    pub max_drill_age_days: u64,
    /// Login roles allowed to be superuser or to bypass row-level security (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "postgres",
        value_name = "ROLES"
    )]
    pub allow_superuser: Vec<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Runs backup, verify, prune and drill on the cron schedules of the config file's \
        [schedule] section, in the foreground (for containers).\n\n\
        Each job is this binary run as a child with the same settings: `backup`, \
        `backups verify latest`, `backups prune` with the [schedule.keep] retention and \
        `drill latest`, each with --metrics-file METRICS_DIR/stockops_<job>.prom when \
        metrics_dir is set. A job never overlaps its own previous run: a tick that comes \
        while it still runs is logged as skipped. Standard output is the run log, one JSON \
        object a line (the jobs' own output goes to standard error).\n\n\
        On SIGTERM or SIGINT no job is started any more, the jobs in flight get SIGTERM \
        (a backup aborts its upload and keeps nothing) and, past --stop-timeout, SIGKILL. \
        Exits 0 when nothing was cut short, 7 when a job in flight was aborted."
)]
pub struct ScheduleArgs {
    /// Run each scheduled job once, in the order backup, verify, prune, drill, then exit
    /// (1 if any failed): a first check of the config.
    #[arg(long)]
    pub once: bool,
    /// On stop, seconds to wait for the jobs in flight after forwarding SIGTERM, before SIGKILL.
    #[arg(long, default_value_t = 90, value_name = "SECS")]
    pub stop_timeout: u64,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// Shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write stockops.1 and one page per subcommand (stockops-backup.1, ...) here.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProvisionArgs {
    /// Print the statements that would run, change nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Exit 0 if the server matches the declaration, 3 naming each difference otherwise.
    #[arg(long)]
    pub check: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a login role as a member of GROUP; prints a generated password once.
    Add(UsersAddArgs),
    /// List the login roles that belong to the managed groups.
    List(JsonArg),
    /// Forbid a login and end its open sessions.
    Disable(UserNameArg),
    /// Allow a disabled login again.
    Enable(UserNameArg),
    /// Set a new password: from standard input, or generated and printed once.
    RotatePassword(PasswordTarget),
}

#[derive(Debug, Args)]
pub struct UsersAddArgs {
    /// Login role to create (lowercase letters, digits, underscores).
    pub name: String,
    /// Group to join: dept_stock, dept_sales, dept_purchasing, dept_reporting, dept_audit, etl, reseller, supplier.
    #[arg(long)]
    pub role: String,
    /// Reseller code the login speaks for (required with --role reseller).
    #[arg(long, conflicts_with = "supplier")]
    pub reseller: Option<String>,
    /// Supplier code the login speaks for (required with --role supplier).
    #[arg(long)]
    pub supplier: Option<String>,
    #[command(flatten)]
    pub password: PasswordSource,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PasswordSource {
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
    /// Refused: a password on the command line leaks through ps and shell history.
    #[arg(long, hide = true, value_name = "PASSWORD")]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct PasswordTarget {
    /// Login role.
    pub name: String,
    #[command(flatten)]
    pub password: PasswordSource,
}

#[derive(Debug, Args)]
pub struct UserNameArg {
    /// Login role.
    pub name: String,
}

#[derive(Debug, Args)]
pub struct JsonArg {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Volume multiplier: 1 is about 2,000 products and a year of sales; fractions allowed.
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Seed of the random generator: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub rng_seed: u64,
    /// Last day of data is the day before this date (YYYY-MM-DD); default today (UTC).
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<chrono::NaiveDate>,
    /// Machine-readable summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Stock per product and warehouse (api.stock_status).
    Stock(StockReportArgs),
    /// What to reorder, with a suggested quantity (api.reorder_needs).
    Reorder(ReorderArgs),
    /// On-time rate, lead time and fill rate per supplier (api.supplier_performance).
    Suppliers(PeriodArgs),
    /// Orders, units and revenue per period or group (api.sales_summary).
    Sales(GroupedPeriodArgs),
    /// Revenue, cost and margin per group (api.margins).
    Margins(GroupedPeriodArgs),
    /// Units expected per product and warehouse, with weekly seasonality (api.demand_forecast).
    Forecast(ForecastArgs),
    /// Days whose sales of a product stand far from its norm (api.sales_anomalies).
    Anomalies(AnomaliesArgs),
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Days ahead, from today.
    #[arg(long, default_value_t = 14)]
    pub days: i32,
    /// Weeks of fulfilled sales the forecast learns from.
    #[arg(long, default_value_t = 8)]
    pub history_weeks: i32,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct AnomaliesArgs {
    /// Days back from today (today included) the norm and the anomalies are looked for in.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(7..=3660))]
    pub days: u64,
    /// Smallest score reported: units above the norm, in standard deviations
    /// (6 by default: demand is lumpy, a few large orders a month are normal).
    #[arg(long, default_value_t = 6.0, value_name = "Z")]
    pub threshold: f64,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Data-quality rules (api.data_quality): level vs ledger, orphans, duplicates, meaningless values.
    #[command(
        after_long_help = "Each rule that finds something is one line: rule, severity (error or \
        warning), count, an example and what the rule checks. Exit 0 when no rule finds anything, \
        3 when any does (as doctor's findings), 5 when the login may not run the rules."
    )]
    Data(JsonArg),
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// At most this many rows (0: all).
    #[arg(long, default_value_t = 0)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct StockReportArgs {
    /// Only this warehouse code.
    #[arg(long)]
    pub warehouse: Option<String>,
    /// Only rows with this status.
    #[arg(long, value_enum)]
    pub status: Option<StockStatus>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ReorderArgs {
    /// Days of sales the velocity is measured over.
    #[arg(long, default_value_t = 28)]
    pub window_days: i32,
    /// Velocity from the demand forecast over the next --window-days days
    /// (api.reorder_forecast) instead of the past ones.
    #[arg(long)]
    pub forecast: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct PeriodArgs {
    /// First day (YYYY-MM-DD); default a year before --to.
    #[arg(long, value_name = "DATE")]
    pub from: Option<chrono::NaiveDate>,
    /// Day after the last (YYYY-MM-DD); default tomorrow.
    #[arg(long, value_name = "DATE")]
    pub to: Option<chrono::NaiveDate>,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct GroupedPeriodArgs {
    #[command(flatten)]
    pub period: PeriodArgs,
    /// Grouping: sales: day, week, month, category, region, reseller, warehouse; margins: category, sku, month, reseller.
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StockStatus {
    Ok,
    Low,
    Out,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args)]
pub struct CallArgs {
    /// Function in schema api, e.g. record_sale.
    pub procedure: String,
    /// A parameter, NAME=VALUE (the p_ prefix is optional); repeat for each.
    #[arg(long = "arg", value_name = "NAME=VALUE", value_parser = parse_key_value)]
    pub args: Vec<(String, String)>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Same as --format json.
    #[arg(long)]
    pub json: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; name the first bad record.
    Verify(AuditVerifyArgs),
    /// The last events.
    Tail(AuditTailArgs),
    /// Events in a period, as CSV or JSON.
    Export(AuditExportArgs),
    /// Chain the events recorded since the last seal (run it every minute or so).
    Seal,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    /// A head printed earlier (POSITION:HASH): proves nothing was cut off the end since.
    #[arg(long, value_name = "POSITION:HASH")]
    pub expect_head: Option<String>,
    /// Do not seal pending events before verifying.
    #[arg(long)]
    pub no_seal: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditTailArgs {
    /// How many events.
    #[arg(short = 'n', long = "lines", default_value_t = 20)]
    pub count: i32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    /// From this time (RFC 3339 or YYYY-MM-DD), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Until this time, exclusive.
    #[arg(long)]
    pub to: Option<String>,
    /// csv or json.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
    /// Write here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Audited api.record_sale against the same sale without its audit record.
    Procedures(BenchProceduresArgs),
    /// `import orders` of generated order lines against COPY of the same clean rows.
    Import(BenchImportArgs),
    /// `watch` latency from a committing call to its line, against a bare NOTIFY.
    Watch(BenchWatchArgs),
    /// Demand forecast error on held-out weeks of the seed, against a naive last-week forecast.
    Forecast(BenchForecastArgs),
}

#[derive(Debug, Args)]
pub struct BenchForecastArgs {
    /// Weeks held out at the end of the seeded year and forecast.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=12))]
    pub holdout_weeks: i32,
    /// Weeks of history the forecast learns from.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=26))]
    pub history_weeks: i32,
    /// Seed volume (1: about 2,000 products and a year of sales).
    #[arg(long, default_value_t = 0.5)]
    pub scale: f64,
    /// Keep the scratch database afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchWatchArgs {
    /// Stock changes to commit and time.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub changes: u64,
    /// Milliseconds between two changes.
    #[arg(long, default_value_t = 5)]
    pub gap_ms: u64,
    /// Keep the scratch database afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchImportArgs {
    /// Order lines to generate and load.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Lines per api call.
    #[arg(long, default_value_t = 10000, value_parser = clap::value_parser!(u64).range(1..=50000))]
    pub batch_size: u64,
    /// Keep the scratch databases afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// A reseller order file (CSV): checked, deduplicated, loaded through api.import_order_lines.
    Orders(ImportOrdersArgs),
    /// The legacy SQLite stock database: reconciled, stock differences applied as audited adjustments.
    Legacy(ImportLegacyArgs),
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Tables (French or English names): produits|products (ref_produit|sku, nom|name, \
    categorie|category), revendeurs|resellers (code_revendeur|code, nom|name), stocks|stock \
    (ref_produit|sku, entrepot|warehouse, quantite|quantity). The central catalogue is kept: products \
    and resellers that differ are reported. Stock counts are the legacy file's: each level that \
    differs becomes an adjustment whose reason names the file and both figures. Run as an etl login. \
    Running it again adjusts nothing."
)]
pub struct ImportLegacyArgs {
    /// The legacy SQLite database (opened read-only).
    #[arg(long, value_name = "FILE")]
    pub sqlite: PathBuf,
    /// Warehouse of the stock counts when the stock table has no warehouse column.
    #[arg(long, value_name = "CODE")]
    pub warehouse: Option<String>,
    /// Report the differences, adjust nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Columns: order_ref, order_date, reseller, sku, quantity, unit_price \
    (or ref_commande, date_commande, revendeur, ref_produit, quantite, prix_unitaire), in any order, \
    any case, with or without accents. Comma, semicolon or tab separated (read from the header line); \
    UTF-8 with or without BOM, or Latin-1; decimal commas; dates YYYY-MM-DD or DD/MM/YYYY.\n\n\
    An order line is identified by (reseller, order_ref, sku): seen again with the same quantity, \
    price and date it is a duplicate and skipped, so importing a file twice changes nothing; with \
    another quantity, price or date it is rejected as a conflict. Imported orders are submitted \
    orders: they reserve stock in the warehouse serving the reseller, and api.fulfil_order ships them.\n\n\
    Rejected lines go to the reject file (line_number, reason, detail, raw_line) and to \
    inventory.import_rejects. In the reject file a text cell starting with =, +, -, @, tab or \
    carriage return gets a leading ' so a spreadsheet never runs it as a formula (plain numbers \
    such as -3 are kept); the table keeps each line exactly as read. A login bound to a reseller \
    imports only that reseller's lines, at catalogue prices. The file is one transaction. Exit 0 when the import is committed, \
    also with rejects; 1 with --strict and any reject (then nothing is kept but the reject file)."
)]
pub struct ImportOrdersArgs {
    /// The order file.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Every line must be this reseller's; other lines are rejected (wrong_reseller).
    #[arg(long, value_name = "CODE")]
    pub reseller: Option<String>,
    /// Reserve stock in this warehouse rather than the one serving each reseller.
    #[arg(long, value_name = "CODE")]
    pub warehouse: Option<String>,
    /// Any rejected line fails the import (exit 1) and keeps nothing.
    #[arg(long)]
    pub strict: bool,
    /// Where to write the rejected lines (default FILE.rejects.csv).
    #[arg(long, value_name = "FILE")]
    pub rejects: Option<PathBuf>,
    /// Lines per api call.
    #[arg(long, default_value_t = 10000, value_parser = clap::value_parser!(u64).range(1..=50000))]
    pub batch_size: u64,
    /// Machine-readable summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// The stock state per product (etat_stock_par_produit.csv), through api.stock_by_product.
    Stock(ExportStockArgs),
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Columns, always in this order: sku, name, category, on_hand_<WAREHOUSE> \
    for every warehouse in code order, on_hand_total, reserved, on_order, reorder_point, status \
    (ok, low: available at or below the reorder point, out: nothing available)."
)]
pub struct ExportStockArgs {
    /// Where to write (`-`: standard output); a file is written whole or not at all.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Machine-readable summary (not with --csv -).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BenchProceduresArgs {
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    pub clients: Vec<usize>,
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Keep the scratch database afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// A physical base backup of the whole cluster (pg_basebackup over the
    /// replication protocol, with the WAL it needs) instead of a pg_dump of one database.
    #[arg(long)]
    pub physical: bool,
    /// zstd level (1-19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    /// zstd worker threads (0: compress on the pipeline's thread; default 0 on
    /// two CPUs or fewer, else all CPUs but one).
    #[arg(long)]
    pub zstd_workers: Option<u32>,
    /// Upload part size in MiB (S3 needs at least 5).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(5..=512))]
    pub part_size_mib: u32,
    /// Parts uploaded at once (S3).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub upload_concurrency: u32,
    /// Lock every object of the backup for N days (S3 Object Lock); refused
    /// where the bucket does not support it, confirmed on each object afterwards.
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub object_lock_days: Option<u32>,
    /// Object Lock mode: governance (privileged users may shorten it) or compliance (nobody can).
    #[arg(long, value_enum, default_value_t = LockMode::Governance, requires = "object_lock_days")]
    pub object_lock_mode: LockMode,
    /// Write Prometheus textfile metrics here (last success time, duration, bytes).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Machine-readable summary on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Archive one WAL file, once: archive_command = 'stockops wal push %p'.
    #[command(
        after_long_help = "Compresses (zstd) and encrypts (age, to the recipients) the file and stores it \
        as wal/<TIMELINE>/<FILE>.<SHA256>.zst.age, SHA256 being the plaintext's. Pushing a file \
        the archive already holds identically succeeds without writing; a different file under \
        the same name is refused (exit 1) and PostgreSQL keeps retrying, which `pg_stat_archiver` \
        shows. Needs no database connection and no private key; settings come from the \
        environment or --config as for every command (never put secrets in archive_command)."
    )]
    Push(WalPushArgs),
    /// Restore one WAL file: restore_command = 'stockops wal fetch %f %p'.
    #[command(
        after_long_help = "Downloads wal/<TIMELINE>/<NAME>.*, decrypts it with the identity, \
        decompresses it, checks the plaintext's SHA-256 and writes it to a temporary file beside \
        DEST, renamed to DEST once complete. Exits 8, quietly (debug log only), when the archive \
        does not hold NAME: PostgreSQL asks for the next file until one is missing at the end of \
        every recovery. Note that PostgreSQL takes any exit code from 1 to 125 for `absent`: \
        a recovery target (restore --to-time/--to-lsn) or `wal verify` beforehand catches a \
        recovery that stopped early."
    )]
    Fetch(WalFetchArgs),
    /// List the archived WAL per timeline and report gaps (exit 1 on a gap).
    Verify(WalVerifyArgs),
}

#[derive(Debug, Args)]
pub struct WalPushArgs {
    /// The WAL file (%p: a path relative to the data directory).
    pub path: PathBuf,
    /// zstd level (1-19).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,
    /// zstd worker threads (0: compress on one thread).
    #[arg(long, default_value_t = 0)]
    pub zstd_workers: u32,
    /// Also push up to N of the files PostgreSQL has marked ready after this one
    /// (pg_wal/archive_status), in parallel; the later calls for them find them archived.
    #[arg(long, default_value_t = 0, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=64))]
    pub ahead: u64,
}

#[derive(Debug, Args)]
pub struct WalFetchArgs {
    /// The WAL file's name (%f).
    pub name: String,
    /// Where PostgreSQL wants it (%p).
    pub dest: PathBuf,
}

#[derive(Debug, Args)]
pub struct WalVerifyArgs {
    /// Check from this physical backup's first needed segment (an id or `latest`),
    /// instead of from each timeline's oldest archived segment.
    #[arg(long, value_name = "ID")]
    pub from_backup: Option<String>,
    /// The cluster's WAL segment size in MiB (initdb --wal-segsize); a backup's own is used with --from-backup.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pub segment_size_mib: u64,
    /// Also fail (exit 1) when the newest WAL file was archived longer ago than
    /// this, or nothing is archived: a stopped archiver leaves no gap, only silence.
    #[arg(long, value_name = "MINUTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_age_minutes: Option<u64>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LockMode {
    Governance,
    Compliance,
}

#[derive(Debug, Subcommand)]
pub enum BackupsCommand {
    /// Every backup in the repository, complete or not.
    List(JsonArg),
    /// One backup's manifest (and, with an identity, its metadata).
    Show(BackupIdArgs),
    /// Check stored sizes and checksums; with --identity-file also decrypt,
    /// check the plaintext and list the archive.
    Verify(VerifyArgs),
    /// Apply the retention policy and clear what crashed runs left.
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep the newest N backups.
    #[arg(long, default_value_t = 0)]
    pub keep_last: usize,
    /// Keep the newest backup of each of the last N days that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_daily: usize,
    /// Keep the newest backup of each of the last N ISO weeks that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_weekly: usize,
    /// Keep the newest backup of each of the last N months that have one.
    #[arg(long, default_value_t = 0)]
    pub keep_monthly: usize,
    /// Incomplete backups and uploads younger than this many hours may still be running: left alone.
    #[arg(long, default_value_t = 24)]
    pub grace_hours: u64,
    /// Print the plan, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write Prometheus textfile metrics here (last success time, backups pruned).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Backup id, or `latest`.
    pub id: String,
    /// Write Prometheus textfile metrics here (last success time, duration).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupIdArgs {
    /// Backup id, or `latest`.
    pub id: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Backup id, or `latest`.
    pub id: String,
    /// The database to restore into (its password from PGPASSFILE, not the URL).
    #[arg(long, value_name = "URL", required_unless_present = "physical")]
    pub target_url: Option<String>,
    /// Point-in-time recovery from a physical backup and the WAL archive into
    /// a new data directory (--target-dir), started on its own port beside
    /// production; one of --to-time, --to-lsn, --latest.
    #[arg(long, requires = "target_dir", conflicts_with_all = ["target_url", "force", "with_globals"])]
    pub physical: bool,
    /// physical: the new data directory (absent or empty).
    #[arg(long, value_name = "DIR", requires = "physical")]
    pub target_dir: Option<PathBuf>,
    /// physical: recover up to this time (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC), inclusive.
    #[arg(long, value_name = "TS", requires = "physical", conflicts_with_all = ["to_lsn", "latest"])]
    pub to_time: Option<String>,
    /// physical: recover up to this WAL position (e.g. 0/3000060).
    #[arg(
        long,
        value_name = "LSN",
        requires = "physical",
        conflicts_with = "latest"
    )]
    pub to_lsn: Option<String>,
    /// physical: recover to the end of the archive.
    #[arg(long, requires = "physical")]
    pub latest: bool,
    /// physical: the restored server's port (default: a free one).
    #[arg(long, requires = "physical")]
    pub port: Option<u16>,
    /// physical: give up waiting for the end of recovery after this many seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECS")]
    pub recovery_timeout: u64,
    /// Restore into a database that already holds tables (its objects are dropped and recreated).
    #[arg(long)]
    pub force: bool,
    /// First create the roles the target cluster lacks, with their settings and
    /// memberships, from the backup's roles stored as data (never passwords,
    /// never SUPERUSER; existing roles are left as they are).
    #[arg(long)]
    pub with_globals: bool,
    /// With --with-globals: also grant the backup's memberships between roles
    /// the target already has, even those revoked there since.
    #[arg(long, requires = "with_globals")]
    pub regrant_memberships: bool,
    /// Restore with N parallel jobs: the archive is first decrypted to a private
    /// temporary file (STOCKOPS_SPOOL_DIR, else the system's), removed afterwards.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Backup id, or `latest` (the default).
    #[arg(default_value = "latest")]
    pub id: String,
    /// Point-in-time recovery drill of a physical backup and the WAL archive:
    /// check the archive, recover into a scratch directory, report the real RPO
    /// (the drill's start minus the last replayed commit).
    #[arg(long, conflicts_with = "target_url")]
    pub physical: bool,
    /// physical: recover to this time (RFC 3339, or YYYY-MM-DD HH:MM:SS in UTC)
    /// instead of the end of the archive.
    #[arg(long, value_name = "TS", requires = "physical")]
    pub to_time: Option<String>,
    /// An empty database to restore into, instead of a scratch cluster of our own.
    #[arg(long, value_name = "URL")]
    pub target_url: Option<String>,
    /// Fail when the time to a verified database exceeds this many seconds.
    #[arg(long, value_name = "SECS")]
    pub max_rto: Option<f64>,
    /// Fail when the backup's snapshot is older than this many seconds.
    #[arg(long, value_name = "SECS")]
    pub max_rpo: Option<f64>,
    /// Keep the scratch cluster afterwards (its directory and port are logged).
    #[arg(long)]
    pub keep: bool,
    /// Write Prometheus textfile metrics here (last success time, RTO, RPO).
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Machine-readable report.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DrillsCommand {
    /// Every stored drill report, oldest first.
    List(JsonArg),
}
