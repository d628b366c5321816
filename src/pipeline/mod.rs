//! Byte-stream stages, plain `std::io`, run on a blocking thread: hashing,
//! zstd, age. They nest as writers, and each is finished explicitly and in
//! order (zstd, then age), never by `Drop`: a skipped `finish()` would
//! silently truncate a backup. Sizes and SHA-256 are taken on both sides of
//! every transform, so a verify can check stored bytes without the key and a
//! restore can prove the plaintext.
//!
//! This module knows nothing of S3, PostgreSQL or manifests. [`crypto`] loads
//! the age keys the stages encrypt to and decrypt with.

pub mod crypto;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::pipeline::crypto::{Identities, Recipients};

/// Size and SHA-256 of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub bytes: u64,
    pub sha256: String,
}

/// The three sides of the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digests {
    /// What went in (the pg_dump archive).
    pub plain: Digest,
    /// After zstd, before age.
    pub compressed: Digest,
    /// What was stored.
    pub stored: Digest,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Counts and hashes what passes through, in either direction.
pub struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    pub fn finish(self) -> (T, Digest) {
        let digest = Digest {
            bytes: self.bytes,
            sha256: hex(&self.hasher.finalize()),
        };
        (self.inner, digest)
    }

    fn account(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.account(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.account(&buf[..n]);
        Ok(n)
    }
}

/// zstd settings.
#[derive(Debug, Clone, Copy)]
pub struct Compression {
    pub level: i32,
    /// zstd worker threads (0: compress on the calling thread).
    pub workers: u32,
}

const CHUNK: usize = 1 << 20;

/// Compress and encrypt everything `input` yields into `output`.
/// `progress` is told the plaintext bytes read so far.
pub fn seal<R: Read, W: Write>(
    mut input: R,
    output: W,
    recipients: &Recipients,
    compression: Compression,
    mut progress: impl FnMut(u64),
) -> io::Result<(W, Digests)> {
    let stored = Hashing::new(output);
    let encryptor = age::Encryptor::with_recipients(recipients.iter()).map_err(io::Error::other)?;
    let encrypted = encryptor.wrap_output(stored)?;
    let compressed = Hashing::new(encrypted);
    let mut zstd = zstd::stream::write::Encoder::new(compressed, compression.level)?;
    if compression.workers > 0 {
        zstd.multithread(compression.workers)?;
        // Small jobs bound the workers' buffers (zstd's default is 4 x the window).
        zstd.set_parameter(zstd::stream::raw::CParameter::JobSize(2 << 20))?;
    }
    let mut plain = Hashing::new(io::sink());
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        plain.write_all(&buf[..n])?;
        zstd.write_all(&buf[..n])?;
        progress(plain.bytes);
    }
    // Finish in order, innermost last: zstd's last frame, age's last chunk.
    let compressed = zstd.finish()?;
    let (encrypted, compressed_digest) = compressed.finish();
    let stored = encrypted.finish()?;
    let (output, stored_digest) = stored.finish();
    let (_, plain_digest) = plain.finish();
    Ok((
        output,
        Digests {
            plain: plain_digest,
            compressed: compressed_digest,
            stored: stored_digest,
        },
    ))
}

/// Decrypt and decompress `input`, writing the plaintext to `output`.
/// Fails if no identity matches, or if the stream was altered or truncated.
pub fn open<R: Read, W: Write>(
    input: R,
    output: W,
    identities: &Identities,
) -> io::Result<(W, Digests)> {
    let tap = Rc::new(RefCell::new(Hashing::new(io::sink())));
    let stored = Tap {
        inner: input,
        tap: tap.clone(),
    };
    let decryptor = age::Decryptor::new(stored).map_err(io::Error::other)?;
    let decrypted = decryptor
        .decrypt(identities.iter())
        .map_err(io::Error::other)?;
    let compressed = Hashing::new(decrypted);
    let mut zstd = zstd::stream::read::Decoder::new(compressed)?;
    let mut plain = Hashing::new(output);
    io::copy(&mut zstd, &mut plain)?;
    // Read the stream to its very end, so that a truncated final chunk is
    // caught by age's authentication even when zstd has all it needs.
    let mut rest = zstd.finish();
    io::copy(&mut rest, &mut io::sink())?;
    let (_, compressed_digest) = rest.into_inner().finish();
    let (output, plain_digest) = plain.finish();
    let stored_digest = {
        let t = tap.borrow();
        Digest {
            bytes: t.bytes,
            sha256: hex(&t.hasher.clone().finalize()),
        }
    };
    Ok((
        output,
        Digests {
            plain: plain_digest,
            compressed: compressed_digest,
            stored: stored_digest,
        },
    ))
}

/// A reader that hashes what it reads into state kept outside it.
struct Tap<R> {
    inner: R,
    tap: Rc<RefCell<Hashing<io::Sink>>>,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tap.borrow_mut().account(&buf[..n]);
        Ok(n)
    }
}

/// Hash a stored stream without the key (what `backups verify` does first).
pub fn digest<R: Read>(input: R) -> io::Result<Digest> {
    let mut h = Hashing::new(input);
    io::copy(&mut h, &mut io::sink())?;
    Ok(h.finish().1)
}

/// A writer that cuts the stream into parts of `part_size` bytes and hands
/// them to an async uploader through a bounded channel: back-pressure keeps
/// memory at a fixed ceiling. If the uploader is gone, writes fail.
pub struct Parts {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    part_size: usize,
}

impl Parts {
    pub fn new(tx: tokio::sync::mpsc::Sender<Vec<u8>>, part_size: usize) -> Self {
        Self {
            tx,
            buf: Vec::with_capacity(part_size),
            part_size,
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let part = std::mem::replace(&mut self.buf, Vec::with_capacity(self.part_size));
        self.tx
            .blocking_send(part)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))
    }

    /// Send the last, possibly short, part.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

impl Write for Parts {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.part_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.part_size {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    fn keys() -> (Recipients, Identities) {
        let id = age::x25519::Identity::generate();
        (
            Recipients::parse(&id.to_public().to_string()).unwrap(),
            Identities::parse(id.to_string().expose_secret()).unwrap(),
        )
    }

    fn sample(n: usize, seed: u64) -> Vec<u8> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // Compressible but not trivial: words from a small vocabulary.
        let words = [
            &b"stock "[..],
            b"warehouse ",
            b"LAP-000042 ",
            b"12.50 ",
            b"\n",
            b"reseller ",
        ];
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.extend_from_slice(words[rng.gen_range(0..words.len())]);
        }
        out.truncate(n);
        out
    }

    const FAST: Compression = Compression {
        level: 3,
        workers: 0,
    };

    #[test]
    fn round_trip_holds_and_digests_agree() {
        let (r, i) = keys();
        for (size, seed) in [(0, 1), (1, 2), (CHUNK + 17, 3), (3 * CHUNK, 4)] {
            let data = sample(size, seed);
            let (stored, sealed) = seal(&data[..], Vec::new(), &r, FAST, |_| {}).unwrap();
            assert_eq!(sealed.stored.bytes, stored.len() as u64);
            assert_eq!(sealed.plain.bytes, size as u64);
            let (plain, opened) = open(&stored[..], Vec::new(), &i).unwrap();
            assert_eq!(plain, data);
            assert_eq!(opened, sealed, "the same digests on both sides");
            assert_eq!(digest(&stored[..]).unwrap(), sealed.stored);
        }
    }

    #[test]
    fn multithreaded_zstd_round_trips() {
        let (r, i) = keys();
        let data = sample(5 * CHUNK, 9);
        let (stored, _) = seal(
            &data[..],
            Vec::new(),
            &r,
            Compression {
                level: 3,
                workers: 2,
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(open(&stored[..], Vec::new(), &i).unwrap().0, data);
    }

    #[test]
    fn corruption_truncation_and_wrong_keys_fail_loudly() {
        let (r, i) = keys();
        let data = sample(2 * CHUNK + 5, 5);
        let (stored, _) = seal(&data[..], Vec::new(), &r, FAST, |_| {}).unwrap();
        for at in [stored.len() / 2, stored.len() - 1, 200] {
            let mut flipped = stored.clone();
            flipped[at] ^= 0x01;
            assert!(
                open(&flipped[..], Vec::new(), &i).is_err(),
                "a flipped byte at {at} must fail"
            );
        }
        for cut in [stored.len() - 1, stored.len() - 100, stored.len() / 2] {
            assert!(
                open(&stored[..cut], Vec::new(), &i).is_err(),
                "truncation at {cut} must fail"
            );
        }
        let (_, other) = keys();
        assert!(
            open(&stored[..], Vec::new(), &other).is_err(),
            "a wrong identity must fail"
        );
    }

    #[test]
    fn stored_bytes_do_not_show_the_plaintext() {
        let (r, _) = keys();
        let data = b"Aurora Book 14 sold to Informatique Lyon".repeat(1000);
        let (stored, _) = seal(&data[..], Vec::new(), &r, FAST, |_| {}).unwrap();
        assert!(!stored.windows(6).any(|w| w == b"Aurora"));
    }

    #[test]
    fn parts_are_cut_to_size() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut parts = Parts::new(tx, 10);
        parts.write_all(&[7u8; 25]).unwrap();
        parts.finish().unwrap();
        let mut sizes = Vec::new();
        while let Ok(p) = rx.try_recv() {
            sizes.push(p.len());
        }
        assert_eq!(sizes, vec![10, 10, 5]);
    }
}
