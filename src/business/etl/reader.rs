//! Reading resellers' order files as they come from the field.
//!
//! The header line decides everything: its delimiter (`;`, `,` or tab,
//! whichever it holds most of outside quotes) and which column is which
//! (English or French names, any case, accents, spaces, hyphens or
//! underscores). Each field is UTF-8 when it is valid UTF-8 and Latin-1
//! otherwise, so a Latin-1 file, a UTF-8 file with or without BOM, and even a
//! file mixing both read right, a record at a time.
//!
//! Every data line becomes an [`OrderLine`] or a [`Reason`] it was rejected
//! for: the checks that need no database. The api checks the rest (codes
//! that do not exist, duplicates, conflicts, stock).

use std::fmt;
use std::io::{BufRead, BufReader, Chain, Cursor, Read};

use anyhow::{bail, Context};
use chrono::NaiveDate;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

/// The six columns of an order file, in their canonical order.
pub const COLUMNS: [&str; 6] = [
    "order_ref",
    "order_date",
    "reseller",
    "sku",
    "quantity",
    "unit_price",
];

/// Names accepted for each column, after [`normalize_header`].
const ALIASES: [(&str, &[&str]); 6] = [
    (
        "order_ref",
        &[
            "order_ref",
            "order_reference",
            "order_id",
            "order_number",
            "ref_commande",
            "reference_commande",
            "num_commande",
            "numero_commande",
            "commande",
        ],
    ),
    (
        "order_date",
        &["order_date", "date_commande", "date_de_commande", "date"],
    ),
    (
        "reseller",
        &[
            "reseller",
            "reseller_code",
            "revendeur",
            "code_revendeur",
            "revendeur_code",
        ],
    ),
    (
        "sku",
        &[
            "sku",
            "product_sku",
            "product",
            "ref_produit",
            "reference_produit",
            "code_produit",
            "produit",
        ],
    ),
    ("quantity", &["quantity", "qty", "quantite", "qte"]),
    (
        "unit_price",
        &[
            "unit_price",
            "price",
            "prix_unitaire",
            "prix_unitaire_ht",
            "prix",
            "pu",
        ],
    ),
];

/// Largest quantity a line may order.
pub const MAX_QUANTITY: i64 = 1_000_000;
/// Unit prices must be above zero and at most this (euros).
pub const MAX_PRICE: i64 = 1_000_000;
/// Order dates before this are impossible for this business.
pub const FIRST_DATE: (i32, u32, u32) = (2000, 1, 1);

/// Why a line was not loaded. The names are stable: they are the reject
/// file's and the quarantine table's `reason`, and `--json`'s keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A required field is empty or absent.
    MissingField,
    /// More non-empty fields than the header has columns.
    WrongFieldCount,
    /// A quantity or price that is not a number (or a quantity with a fraction,
    /// a price with more than two decimals).
    MalformedNumber,
    /// A quantity of zero or less.
    NonPositiveQuantity,
    /// A quantity above [`MAX_QUANTITY`].
    QuantityOutOfRange,
    /// A unit price of zero or less, or above [`MAX_PRICE`].
    PriceOutOfRange,
    /// Not a date in a known format, not a calendar date, or out of range.
    ImpossibleDate,
    /// `--reseller` was given and the line is another reseller's.
    WrongReseller,
    /// Checked by the api: no such (active) reseller.
    UnknownReseller,
    /// Checked by the api: no such sku.
    UnknownSku,
    /// Checked by the api: the same order line was imported (or appears
    /// earlier in the file) with another quantity, price or date, or the
    /// order is dated otherwise.
    Conflict,
    /// Checked by the api: the order is already fulfilled or cancelled.
    OrderClosed,
    /// Checked by the api: no warehouse serves the reseller.
    NoWarehouse,
    /// Checked by the api: not enough unreserved stock to reserve.
    InsufficientStock,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingField => "missing_field",
            Reason::WrongFieldCount => "wrong_field_count",
            Reason::MalformedNumber => "malformed_number",
            Reason::NonPositiveQuantity => "non_positive_quantity",
            Reason::QuantityOutOfRange => "quantity_out_of_range",
            Reason::PriceOutOfRange => "price_out_of_range",
            Reason::ImpossibleDate => "impossible_date",
            Reason::WrongReseller => "wrong_reseller",
            Reason::UnknownReseller => "unknown_reseller",
            Reason::UnknownSku => "unknown_sku",
            Reason::Conflict => "conflict",
            Reason::OrderClosed => "order_closed",
            Reason::NoWarehouse => "no_warehouse",
            Reason::InsufficientStock => "insufficient_stock",
        }
    }

    /// The reason the api names `s`.
    pub fn from_api(s: &str) -> Option<Self> {
        Some(match s {
            "unknown_reseller" => Reason::UnknownReseller,
            "unknown_sku" => Reason::UnknownSku,
            "conflict" => Reason::Conflict,
            "order_closed" => Reason::OrderClosed,
            "no_warehouse" => Reason::NoWarehouse,
            "insufficient_stock" => Reason::InsufficientStock,
            _ => return None,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A line that passed every check that needs no database.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderLine {
    pub order_ref: String,
    pub order_date: NaiveDate,
    pub reseller: String,
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Decimal,
}

/// A rejected line: why, and what exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub reason: Reason,
    pub detail: String,
}

fn reject(reason: Reason, detail: impl Into<String>) -> Rejected {
    Rejected {
        reason,
        detail: detail.into(),
    }
}

/// One data line of the file.
#[derive(Debug)]
pub struct Record {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    /// The fields as read, joined again by the file's delimiter.
    pub raw: String,
    pub parsed: Result<OrderLine, Rejected>,
}

/// What the reader found out about the file.
#[derive(Clone, Debug, Serialize)]
pub struct FileShape {
    pub delimiter: char,
    /// The header as read, each column's name.
    pub header: Vec<String>,
    /// Records (the header too) with a field that was not valid UTF-8, read as Latin-1.
    pub latin1_records: u64,
}

/// Checks that depend on the run, not the file.
#[derive(Clone, Debug)]
pub struct Checks {
    /// Every line must be this reseller's.
    pub reseller: Option<String>,
    /// Last acceptable order date (orders are not dated in the future).
    pub latest_date: NaiveDate,
}

/// The delimiter is sniffed from at most this much of the header line.
const HEADER_MAX: u64 = 256 * 1024;

/// The header line, already read to sniff its delimiter, then the rest.
type Input<R> = Chain<Cursor<Vec<u8>>, BufReader<CrlfToLf<R>>>;

/// Streams [`Record`]s out of an order file, one at a time.
pub struct OrderReader<R: Read> {
    csv: csv::Reader<Input<R>>,
    columns: [usize; 6],
    width: usize,
    checks: Checks,
    record: csv::ByteRecord,
    pub shape: FileShape,
}

impl<R: Read> OrderReader<R> {
    /// Read the header line and set up for the data lines.
    pub fn new(input: R, checks: Checks) -> anyhow::Result<Self> {
        let mut rest = BufReader::with_capacity(256 * 1024, CrlfToLf::new(input));
        // The whole header line, however the input arrives: a pipe or a FIFO
        // hands it over in pieces, and a piece can end before the line does.
        let mut head = Vec::new();
        (&mut rest)
            .take(HEADER_MAX)
            .read_until(b'\n', &mut head)
            .context("reading the header line")?;
        let delimiter = sniff_delimiter(head.strip_suffix(b"\n").unwrap_or(&head));
        // Records end at LF only (CRLF is LF by now): the csv crate's default
        // also ends one at a lone CR without counting a line, and two records
        // then shared a line number, which the import keys rejects by.
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .terminator(csv::Terminator::Any(b'\n'))
            .has_headers(false)
            .flexible(true)
            .from_reader(Cursor::new(head).chain(rest));
        let mut header = csv::ByteRecord::new();
        if !csv
            .read_byte_record(&mut header)
            .context("reading the header line")?
        {
            bail!(
                "the file is empty: expected a header line naming the columns {}",
                COLUMNS.join(", ")
            );
        }
        let decoded: Vec<(String, bool)> = header.iter().map(decode).collect();
        let header_latin1 = decoded.iter().any(|(_, latin1)| *latin1);
        let names: Vec<String> = decoded.into_iter().map(|(name, _)| name).collect();
        let columns = map_columns(&names)?;
        Ok(Self {
            csv,
            columns,
            width: names.len(),
            checks,
            record: csv::ByteRecord::new(),
            shape: FileShape {
                delimiter: delimiter as char,
                header: names,
                latin1_records: u64::from(header_latin1),
            },
        })
    }

    /// The next data line, or `None` at the end of the file.
    pub fn next_record(&mut self) -> anyhow::Result<Option<Record>> {
        loop {
            if !self.csv.read_byte_record(&mut self.record)? {
                return Ok(None);
            }
            let line = self.record.position().map_or(0, |p| p.line());
            let mut latin1 = false;
            let fields: Vec<String> = self
                .record
                .iter()
                .map(|f| {
                    let (s, was_latin1) = decode(f);
                    latin1 |= was_latin1;
                    s
                })
                .collect();
            // Lines of nothing but delimiters and blanks are not records.
            if fields.iter().all(|f| f.trim().is_empty()) {
                continue;
            }
            if latin1 {
                self.shape.latin1_records += 1;
            }
            let raw = join_raw(&fields, self.shape.delimiter);
            let parsed = self.check(&fields);
            return Ok(Some(Record { line, raw, parsed }));
        }
    }

    fn check(&self, fields: &[String]) -> Result<OrderLine, Rejected> {
        let extra = fields.iter().skip(self.width).any(|f| !f.trim().is_empty());
        if extra {
            return Err(reject(
                Reason::WrongFieldCount,
                format!("{} fields, the header has {}", fields.len(), self.width),
            ));
        }
        let field = |i: usize| -> Result<&str, Rejected> {
            let value = fields.get(self.columns[i]).map_or("", |f| f.trim());
            if value.is_empty() {
                Err(reject(
                    Reason::MissingField,
                    format!("{} is empty", COLUMNS[i]),
                ))
            } else {
                Ok(value)
            }
        };
        let values = [
            field(0)?,
            field(1)?,
            field(2)?,
            field(3)?,
            field(4)?,
            field(5)?,
        ];
        let quantity = parse_quantity(values[4])?;
        let unit_price = parse_price(values[5])?;
        let order_date = parse_date(values[1], self.checks.latest_date)?;
        let reseller = values[2].to_uppercase();
        if let Some(only) = &self.checks.reseller {
            if !reseller.eq_ignore_ascii_case(only) {
                return Err(reject(
                    Reason::WrongReseller,
                    format!("reseller {reseller}, expected {only}"),
                ));
            }
        }
        Ok(OrderLine {
            order_ref: values[0].to_string(),
            order_date,
            reseller,
            sku: values[3].to_uppercase(),
            quantity,
            unit_price,
        })
    }
}

/// CRLF line ends read as LF, so that record positions count lines right
/// (the csv reader counts a CRLF's LF on the next record). A CR not followed
/// by LF is kept.
pub struct CrlfToLf<R> {
    inner: R,
    pending_cr: bool,
    raw: Vec<u8>,
    ready: Vec<u8>,
    at: usize,
}

impl<R: Read> CrlfToLf<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            pending_cr: false,
            raw: vec![0; 64 * 1024],
            ready: Vec::with_capacity(64 * 1024 + 1),
            at: 0,
        }
    }

    /// Refill `ready`; false at the end of the input.
    fn refill(&mut self) -> std::io::Result<bool> {
        self.ready.clear();
        self.at = 0;
        while self.ready.is_empty() {
            let n = self.inner.read(&mut self.raw)?;
            if n == 0 {
                if std::mem::take(&mut self.pending_cr) {
                    self.ready.push(b'\r');
                    return Ok(true);
                }
                return Ok(false);
            }
            for &b in &self.raw[..n] {
                if std::mem::take(&mut self.pending_cr) && b != b'\n' {
                    self.ready.push(b'\r');
                }
                if b == b'\r' {
                    self.pending_cr = true;
                } else {
                    self.ready.push(b);
                }
            }
        }
        Ok(true)
    }
}

impl<R: Read> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.ready.len() && !self.refill()? {
            return Ok(0);
        }
        let n = out.len().min(self.ready.len() - self.at);
        out[..n].copy_from_slice(&self.ready[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// The delimiter the header line holds most of, outside quotes (`,` on a tie
/// or when it holds none).
pub fn sniff_delimiter(line: &[u8]) -> u8 {
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0)];
    let mut quoted = false;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for (d, n) in counts.iter_mut() {
                if *d == b {
                    *n += 1;
                }
            }
        }
    }
    let best = counts.iter().max_by_key(|(d, n)| (*n, *d == b',')).unwrap();
    if best.1 == 0 {
        b','
    } else {
        best.0
    }
}

/// UTF-8 if it is valid UTF-8, else Latin-1; a byte-order mark dropped.
/// The flag says Latin-1 was used.
pub fn decode(bytes: &[u8]) -> (String, bool) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (bytes.iter().map(|&b| b as char).collect(), true),
    }
}

/// A header name reduced to lowercase ASCII words joined by underscores:
/// `" Réf. Commande "` → `ref_commande`, `"Prix-Unitaire"` → `prix_unitaire`.
pub fn normalize_header(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().trim_start_matches('\u{feff}').chars() {
        let c = fold_accent(c.to_lowercase().next().unwrap_or(c));
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_end_matches('_').to_string()
}

fn fold_accent(c: char) -> char {
    match c {
        'à' | 'â' | 'ä' | 'á' | 'ã' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'î' | 'ï' | 'í' => 'i',
        'ô' | 'ö' | 'ó' => 'o',
        'ù' | 'û' | 'ü' | 'ú' => 'u',
        'ç' => 'c',
        'ÿ' => 'y',
        other => other,
    }
}

/// Which position holds each of [`COLUMNS`]; an error names what is missing.
pub fn map_columns(names: &[String]) -> anyhow::Result<[usize; 6]> {
    let normalized: Vec<String> = names.iter().map(|n| normalize_header(n)).collect();
    let mut found = [usize::MAX; 6];
    for (i, (_, aliases)) in ALIASES.iter().enumerate() {
        let hits: Vec<usize> = (0..normalized.len())
            .filter(|&p| aliases.contains(&normalized[p].as_str()))
            .collect();
        match hits.as_slice() {
            [one] => found[i] = *one,
            [] => {}
            _ => bail!(
                "the header names column {} more than once ({})",
                COLUMNS[i],
                hits.iter()
                    .map(|&p| names[p].trim())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    let missing: Vec<&str> = (0..6)
        .filter(|&i| found[i] == usize::MAX)
        .map(|i| COLUMNS[i])
        .collect();
    if !missing.is_empty() {
        bail!(
            "the header line has no column for {} (found: {}); expected order_ref, order_date, reseller, sku, \
             quantity, unit_price or ref_commande, date_commande, revendeur, ref_produit, quantite, prix_unitaire",
            missing.join(", "),
            names.iter().map(|n| n.trim()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(found)
}

/// A decimal as written in the field: blanks and thin spaces as thousands
/// separators, a decimal comma or point (with both, the last one is the
/// decimal separator and the other separates thousands), a euro sign.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    let mut t: String = s
        .trim()
        .trim_end_matches('€')
        .trim_end_matches("EUR")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\u{a0}' && *c != '\u{202f}' && *c != '\'')
        .collect();
    match (t.rfind(','), t.rfind('.')) {
        (Some(c), Some(p)) if c > p => t = t.replace('.', "").replace(',', "."),
        (Some(_), Some(_)) => t = t.replace(',', ""),
        (Some(_), None) if t.matches(',').count() == 1 => t = t.replace(',', "."),
        (Some(_), None) => return None,
        _ => {}
    }
    let valid = !t.is_empty()
        && t.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+')))
        && t.matches('.').count() <= 1
        && t.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    t.parse::<Decimal>().ok()
}

fn parse_quantity(s: &str) -> Result<i32, Rejected> {
    let d = parse_decimal(s)
        .filter(|d| d.fract().is_zero())
        .ok_or_else(|| {
            reject(
                Reason::MalformedNumber,
                format!("quantity {s:?} is not a whole number"),
            )
        })?;
    if d <= Decimal::ZERO {
        return Err(reject(Reason::NonPositiveQuantity, format!("quantity {s}")));
    }
    if d > Decimal::from(MAX_QUANTITY) {
        return Err(reject(
            Reason::QuantityOutOfRange,
            format!("quantity {s} is above {MAX_QUANTITY}"),
        ));
    }
    Ok(d.to_i32().unwrap_or(i32::MAX))
}

fn parse_price(s: &str) -> Result<Decimal, Rejected> {
    let d = parse_decimal(s).ok_or_else(|| {
        reject(
            Reason::MalformedNumber,
            format!("unit price {s:?} is not a number"),
        )
    })?;
    let d = d.normalize();
    if d.scale() > 2 {
        return Err(reject(
            Reason::MalformedNumber,
            format!("unit price {s} has more than two decimals"),
        ));
    }
    if d <= Decimal::ZERO || d > Decimal::from(MAX_PRICE) {
        return Err(reject(
            Reason::PriceOutOfRange,
            format!("unit price {s} is not in (0, {MAX_PRICE}]"),
        ));
    }
    Ok(d)
}

/// `YYYY-MM-DD` or `DD/MM/YYYY` (also with one-digit day or month, and
/// `DD-MM-YYYY` or `DD.MM.YYYY`), a real calendar date from 2000 to `latest`.
pub fn parse_date(s: &str, latest: NaiveDate) -> Result<NaiveDate, Rejected> {
    let bad = || reject(Reason::ImpossibleDate, format!("date {s:?}"));
    let parts: Vec<&str> = s.split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return Err(bad());
    };
    let num = |x: &str| -> Option<u32> {
        (!x.is_empty() && x.len() <= 4 && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse().ok())
            .flatten()
    };
    let (y, m, d) = match (a.len(), c.len(), s.contains('/') || s.contains('.')) {
        (4, 1..=2, false) => (num(a), num(b), num(c)),
        (1..=2, 4, _) => (num(c), num(b), num(a)),
        _ => return Err(bad()),
    };
    let (Some(y), Some(m), Some(d)) = (y, m, d) else {
        return Err(bad());
    };
    let date = NaiveDate::from_ymd_opt(y as i32, m, d).ok_or_else(|| {
        reject(
            Reason::ImpossibleDate,
            format!("date {s:?} is not a calendar date"),
        )
    })?;
    let (fy, fm, fd) = FIRST_DATE;
    let first = NaiveDate::from_ymd_opt(fy, fm, fd).expect("valid");
    if date < first || date > latest {
        return Err(reject(
            Reason::ImpossibleDate,
            format!("date {s} is not between {first} and {latest}"),
        ));
    }
    Ok(date)
}

/// The fields joined again by the delimiter, quoted where they need it.
fn join_raw(fields: &[String], delimiter: char) -> String {
    let mut out = String::new();
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        if f.contains(delimiter) || f.contains('"') || f.contains('\n') || f.contains('\r') {
            out.push('"');
            out.push_str(&f.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn read_all(bytes: &[u8], reseller: Option<&str>) -> Vec<Record> {
        let checks = Checks {
            reseller: reseller.map(str::to_string),
            latest_date: day(2026, 6, 30),
        };
        let mut r = OrderReader::new(bytes, checks).unwrap();
        let mut out = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            out.push(rec);
        }
        out
    }

    #[test]
    fn headers_in_french_with_accents_and_case() {
        for h in [
            " Réf. Commande ",
            "REF_COMMANDE",
            "ref-commande",
            "Ref Commande",
        ] {
            assert_eq!(normalize_header(h), "ref_commande", "{h}");
        }
        assert_eq!(normalize_header("Quantité"), "quantite");
        assert_eq!(normalize_header("\u{feff}order_ref"), "order_ref");
    }

    /// Hands over at most `piece` bytes a read, as a pipe may.
    struct Pipe<'a> {
        data: &'a [u8],
        piece: usize,
    }

    impl Read for Pipe<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.piece.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_header_that_arrives_in_pieces_is_read_whole() {
        // Found by fuzz/fuzz_targets/order_csv.rs: the delimiter was sniffed
        // from the first read only, so a semicolon file through a pipe that
        // handed over "ref_commande" first was read as comma-separated and
        // refused.
        let file = "ref_commande;date_commande;revendeur;ref_produit;quantite;prix_unitaire\r\n\
                    C-1;05/01/2026;r1;p-1;2;3,50\r\n";
        for piece in [1, 7, 13, 64, 1 << 20] {
            let checks = Checks {
                reseller: None,
                latest_date: day(2026, 6, 30),
            };
            let pipe = Pipe {
                data: file.as_bytes(),
                piece,
            };
            let mut r = OrderReader::new(pipe, checks).unwrap_or_else(|e| panic!("{piece}: {e:#}"));
            assert_eq!(r.shape.delimiter, ';', "{piece}");
            let rec = r.next_record().unwrap().unwrap();
            assert_eq!(rec.line, 2);
            assert_eq!(rec.parsed.unwrap().unit_price.to_string(), "3.5");
            assert!(r.next_record().unwrap().is_none());
        }
    }

    #[test]
    fn a_lone_cr_does_not_start_a_record_with_the_same_line_number() {
        // Found by fuzz/fuzz_targets/order_csv.rs: "A-1,...\rA-2,..." was two
        // records, both line 2.
        let file = b"order_ref,order_date,reseller,sku,quantity,unit_price\n\
                     A-1,2026-01-05,R1,P-1,1,2\rA-2,2026-01-05,R1,P-2,1,2\n\
                     A-3,2026-01-05,R1,P-3,1,2\n";
        let lines: Vec<u64> = read_all(file, None).iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3]);
    }

    #[test]
    fn delimiter_from_the_header_line() {
        assert_eq!(sniff_delimiter(b"a;b;c"), b';');
        assert_eq!(sniff_delimiter(b"a,b,c"), b',');
        assert_eq!(sniff_delimiter(b"\"a;x\",b,c"), b',');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"abc"), b',');
    }

    #[test]
    fn decimals_as_written() {
        let d = |s: &str| parse_decimal(s).map(|d| d.to_string());
        assert_eq!(d("12,50").as_deref(), Some("12.50"));
        assert_eq!(d(" 1 234,5 € ").as_deref(), Some("1234.5"));
        assert_eq!(d("1.234,50").as_deref(), Some("1234.50"));
        assert_eq!(d("1,234.50").as_deref(), Some("1234.50"));
        assert_eq!(d("1,2,3"), None);
        assert_eq!(d("abc"), None);
        assert_eq!(d("-3").as_deref(), Some("-3"));
        assert_eq!(d("1e5"), None);
    }

    #[test]
    fn dates_in_both_formats_and_impossible_ones() {
        let latest = day(2026, 6, 30);
        assert_eq!(parse_date("2026-03-02", latest).unwrap(), day(2026, 3, 2));
        assert_eq!(parse_date("02/03/2026", latest).unwrap(), day(2026, 3, 2));
        assert_eq!(parse_date("2/3/2026", latest).unwrap(), day(2026, 3, 2));
        for bad in [
            "31/02/2026",
            "2026-13-01",
            "2026/03/02",
            "hier",
            "1999-12-31",
            "2027-01-01",
            "02/03/26",
        ] {
            assert_eq!(
                parse_date(bad, latest).unwrap_err().reason,
                Reason::ImpossibleDate,
                "{bad}"
            );
        }
    }

    #[test]
    fn latin1_semicolons_crlf_and_decimal_commas() {
        let file =
            b"R\xe9f commande;Date commande;Revendeur;R\xe9f produit;Quantit\xe9;Prix unitaire\r\n\
                     A-1 ; 02/03/2026 ; res-0001 ; lap-0001 ; 2 ; 1\xa0234,50\r\n";
        let recs = read_all(file, None);
        assert_eq!(recs.len(), 1);
        let line = recs[0].parsed.as_ref().unwrap();
        assert_eq!(line.reseller, "RES-0001");
        assert_eq!(line.sku, "LAP-0001");
        assert_eq!(line.unit_price.to_string(), "1234.5");
        assert_eq!(recs[0].line, 2);
    }

    #[test]
    fn crlf_becomes_lf_across_reads() {
        let input = b"a\r\nb\rc\r\n\r".to_vec();
        // One byte at a time, so a CR and its LF arrive in separate reads.
        struct Slow(std::io::Cursor<Vec<u8>>);
        impl Read for Slow {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let n = out.len().min(1);
                self.0.read(&mut out[..n])
            }
        }
        let mut out = Vec::new();
        CrlfToLf::new(Slow(std::io::Cursor::new(input.clone())))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"a\nb\rc\n\r");
        let mut out = Vec::new();
        CrlfToLf::new(&input[..]).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"a\nb\rc\n\r");
    }

    #[test]
    fn utf8_bom_and_commas() {
        let file = "\u{feff}order_ref,order_date,reseller,sku,quantity,unit_price\n\
                    A-1,2026-03-02,RES-0001,LAP-0001,3,\"12,5\"\n"
            .as_bytes();
        let recs = read_all(file, None);
        assert_eq!(recs[0].parsed.as_ref().unwrap().quantity, 3);
    }

    #[test]
    fn each_defect_has_its_reason() {
        let file = "order_ref;order_date;reseller;sku;quantity;unit_price\n\
                    A;2026-03-02;R;S;;1\n\
                    A;2026-03-02;R;S;1;1;x\n\
                    A;2026-03-02;R;S;1.5;1\n\
                    A;2026-03-02;R;S;0;1\n\
                    A;2026-03-02;R;S;2000000;1\n\
                    A;2026-03-02;R;S;1;-1\n\
                    A;2026-03-02;R;S;1;1,999\n\
                    A;2026-02-30;R;S;1;1\n\
                    A;2026-03-02;OTHER;S;1;1\n\
                    ;;;;;\n\
                    A;2026-03-02;R;S;1;1;\n";
        let reasons: Vec<_> = read_all(file.as_bytes(), Some("R"))
            .into_iter()
            .map(|r| r.parsed.map(|_| "ok").map_err(|e| e.reason))
            .collect();
        use Reason::*;
        assert_eq!(
            reasons,
            vec![
                Err(MissingField),
                Err(WrongFieldCount),
                Err(MalformedNumber),
                Err(NonPositiveQuantity),
                Err(QuantityOutOfRange),
                Err(PriceOutOfRange),
                Err(MalformedNumber),
                Err(ImpossibleDate),
                Err(WrongReseller),
                Ok("ok"),
            ]
        );
    }

    #[test]
    fn a_missing_column_is_named() {
        let err = map_columns(&["order_ref".into(), "sku".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("order_date, reseller, quantity, unit_price"),
            "{err}"
        );
    }
}
