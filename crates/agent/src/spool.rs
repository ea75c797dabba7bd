//! A job's log on the agent's disk: the runner's (masked) log text appended as it comes, read
//! back in chunks by the uploader from any offset. Memory stays bounded whatever the log's
//! size: only one chunk is ever held.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// An append-only log file and its size.
#[derive(Debug)]
pub struct LogSpool {
    path: PathBuf,
    writer: Mutex<Writer>,
    reader: Option<File>,
    size: AtomicU64,
}

#[derive(Debug)]
struct Writer {
    /// `None` when the spool could not be created: every append is lost.
    file: Option<File>,
    /// Bytes that could not be written (disk full...), not yet reported in the log.
    lost: u64,
    last_error: Option<String>,
}

impl LogSpool {
    /// Creates an empty spool at `path` (an existing file is replaced).
    pub fn create(path: &Path) -> io::Result<LogSpool> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(path)?;
        let reader = File::open(path)?;
        Ok(LogSpool {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file: Some(file),
                lost: 0,
                last_error: None,
            }),
            reader: Some(reader),
            size: AtomicU64::new(0),
        })
    }

    /// A spool that keeps nothing, for a job whose directory could not be created: the job is
    /// still reported, with an empty log.
    pub fn unavailable(path: &Path, error: &io::Error) -> LogSpool {
        LogSpool {
            path: path.to_owned(),
            writer: Mutex::new(Writer {
                file: None,
                lost: 0,
                last_error: Some(error.to_string()),
            }),
            reader: None,
            size: AtomicU64::new(0),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's size: every byte appended so far.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::SeqCst)
    }

    /// Appends text and returns the new size. When the disk refuses the bytes they are lost
    /// (never half written), and the next append that succeeds first says how many were lost.
    pub fn append(&self, text: &str) -> u64 {
        let mut writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let size = self.size.load(Ordering::SeqCst);
        let mut pending = String::new();
        if writer.lost > 0 {
            pending = format!(
                "[gantry agent] {} byte(s) of this log were lost: {}\n",
                writer.lost,
                writer.last_error.as_deref().unwrap_or("write error")
            );
        }
        pending.push_str(text);
        let Some(file) = writer.file.as_mut() else {
            writer.lost += text.len() as u64;
            return size;
        };
        match file.write_all(pending.as_bytes()) {
            Ok(()) => {
                writer.lost = 0;
                writer.last_error = None;
                let grown = size + pending.len() as u64;
                self.size.store(grown, Ordering::SeqCst);
                grown
            }
            Err(error) => {
                // Keep the file and the size in step: drop whatever part was written, and
                // write on from there (the file position moved past the part written: left
                // there, the next write would leave a hole that reads as NUL bytes).
                let _ = file.set_len(size);
                let _ = file.seek(std::io::SeekFrom::Start(size));
                let _ = file.sync_data();
                writer.lost += text.len() as u64;
                writer.last_error = Some(error.to_string());
                tracing::warn!(path = %self.path.display(), "could not write the job's log: {error}");
                size
            }
        }
    }

    /// Bytes lost since the last write that succeeded, with the last error; `None` when the
    /// log is whole.
    pub fn lost(&self) -> Option<(u64, String)> {
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (writer.lost > 0).then(|| {
            (
                writer.lost,
                writer
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "write error".to_owned()),
            )
        })
    }

    /// Up to `max` bytes from `offset` (fewer at the end of the log). When the chunk is cut
    /// short of the end, it ends after a newline in its second half, or else on a UTF-8
    /// character boundary, so that live logs show whole lines.
    pub fn read_chunk(&self, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let size = self.size();
        let Some(reader) = self.reader.as_ref() else {
            return Ok(Vec::new());
        };
        if offset >= size || max == 0 {
            return Ok(Vec::new());
        }
        let available = usize::try_from(size - offset).unwrap_or(usize::MAX);
        let len = available.min(max);
        let mut buf = vec![0u8; len];
        reader.read_exact_at(&mut buf, offset)?;
        if len < available {
            let cut = chunk_end(&buf);
            buf.truncate(cut);
        }
        Ok(buf)
    }
}

/// Where to end a chunk that does not reach the end of the log.
fn chunk_end(buf: &[u8]) -> usize {
    let half = buf.len() / 2;
    if let Some(pos) = buf[half..].iter().rposition(|b| *b == b'\n') {
        return half + pos + 1;
    }
    // Otherwise end before a character the chunk holds only part of (a chunk is never empty).
    let Some(last) = buf.len().checked_sub(1) else {
        return 0;
    };
    let mut start = last;
    while start > 0 && last - start < 3 && (buf[start] & 0xC0) == 0x80 {
        start -= 1;
    }
    let needed = match buf[start] {
        0xF0.. => 4,
        0xE0.. => 3,
        0xC0.. => 2,
        _ => 1,
    };
    if buf.len() - start >= needed || start == 0 {
        buf.len()
    } else {
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_from_any_offset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = LogSpool::create(&dir.path().join("log")).expect("created");
        assert_eq!(spool.append("one\n"), 4);
        assert_eq!(spool.append("two\n"), 8);
        assert_eq!(spool.read_chunk(0, 100).expect("read"), b"one\ntwo\n");
        assert_eq!(spool.read_chunk(4, 100).expect("read"), b"two\n");
        assert!(spool.read_chunk(8, 100).expect("read").is_empty());
    }

    #[test]
    fn short_chunks_end_at_a_line_or_a_character() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = LogSpool::create(&dir.path().join("log")).expect("created");
        spool.append("abc\ndefghij\n");
        assert_eq!(spool.read_chunk(0, 6).expect("read"), b"abc\n");
        let spool = LogSpool::create(&dir.path().join("log2")).expect("created");
        spool.append("ééé");
        // 6 bytes; 3 would split the second `é`.
        assert_eq!(spool.read_chunk(0, 3).expect("read"), "é".as_bytes());
        assert_eq!(spool.read_chunk(0, 1).expect("read"), &"é".as_bytes()[..1]);
    }

    #[test]
    fn chunk_end_never_returns_zero() {
        assert_eq!(chunk_end(&[0x80, 0x80]), 2);
        assert_eq!(chunk_end(b"ab"), 2);
        assert_eq!(chunk_end(&[b'a', 0xC3]), 1);
        assert_eq!(chunk_end("aé".as_bytes()), 3);
        assert_eq!(chunk_end(&[b'a', 0xE2, 0x82]), 1);
        assert_eq!(chunk_end("a€".as_bytes()), 4);
    }
}
