//! Rows in PostgreSQL's COPY text format, buffered and sent in chunks.

use std::fmt::Write as _;

use sqlx::PgConnection;

/// One table's pending rows in COPY text format.
pub struct CopyBuffer {
    statement: String,
    buf: String,
    pub rows: u64,
}

impl CopyBuffer {
    pub fn new(table: &str, columns: &str) -> Self {
        Self {
            statement: format!("COPY {table} ({columns}) FROM STDIN"),
            buf: String::with_capacity(1 << 20),
            rows: 0,
        }
    }

    /// Start a row; fields are added with [`Row`] and the row ends on drop of the builder.
    pub fn row(&mut self) -> Row<'_> {
        self.rows += 1;
        Row {
            buf: &mut self.buf,
            first: true,
        }
    }

    /// Send what is buffered as one COPY statement.
    pub async fn flush(&mut self, conn: &mut PgConnection) -> anyhow::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut copy = conn.copy_in_raw(&self.statement).await?;
        copy.send(self.buf.as_bytes()).await?;
        copy.finish().await?;
        self.buf.clear();
        Ok(())
    }
}

pub struct Row<'a> {
    buf: &'a mut String,
    first: bool,
}

impl Row<'_> {
    fn sep(&mut self) {
        if !self.first {
            self.buf.push('\t');
        }
        self.first = false;
    }

    pub fn int(mut self, v: i64) -> Self {
        self.sep();
        let _ = write!(self.buf, "{v}");
        self
    }

    /// A money amount in cents, written as euros with two decimals.
    pub fn cents(mut self, v: i64) -> Self {
        self.sep();
        let _ = write!(self.buf, "{}.{:02}", v / 100, v % 100);
        self
    }

    pub fn text(mut self, v: &str) -> Self {
        self.sep();
        for c in v.chars() {
            match c {
                '\\' => self.buf.push_str("\\\\"),
                '\t' => self.buf.push_str("\\t"),
                '\n' => self.buf.push_str("\\n"),
                '\r' => self.buf.push_str("\\r"),
                c => self.buf.push(c),
            }
        }
        self
    }

    pub fn opt_text(self, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.text(v),
            None => self.null(),
        }
    }

    pub fn opt_int(self, v: Option<i64>) -> Self {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub fn null(mut self) -> Self {
        self.sep();
        self.buf.push_str("\\N");
        self
    }

    pub fn bool(mut self, v: bool) -> Self {
        self.sep();
        self.buf.push(if v { 't' } else { 'f' });
        self
    }
}

impl Drop for Row<'_> {
    fn drop(&mut self) {
        self.buf.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_nulls() {
        let mut b = CopyBuffer::new("t", "a, b, c, d");
        b.row().text("x\ty\\z").null().cents(1205).int(-3);
        assert_eq!(b.buf, "x\\ty\\\\z\t\\N\t12.05\t-3\n");
        assert_eq!(b.rows, 1);
    }
}
