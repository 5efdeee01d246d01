//! Reading the web configuration file and the files it names without trusting the file system:
//! only regular files (a FIFO, a device or a directory is refused without being read, and opening
//! never waits for a writer), at most [`MAX_FILE_BYTES`], and only a read that saw the file stay
//! the same from start to end (a file rewritten in place while it was read is read again).

use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

/// The largest web configuration, certificate, key or CA file read. A web configuration is a few
/// hundred bytes; a CA bundle a few hundred kilobytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Reads of a file that changed while it was read, before giving up until the next change.
const ATTEMPTS: usize = 3;

/// A file's identity and state without its content: enough to tell that it changed (replaced,
/// rewritten, removed or created).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub len: u64,
    pub modified: Option<SystemTime>,
    #[cfg(unix)]
    pub inode: (u64, u64, i64, i64),
}

impl Stamp {
    pub fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: m.len(),
            modified: m.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (m.dev(), m.ino(), m.ctime(), m.ctime_nsec())
            },
        }
    }

    /// The file at `path` now (following symbolic links, as Kubernetes Secret mounts need);
    /// `None` when it cannot be seen.
    pub fn now(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }
}

/// Why a file was not read. Never holds any of its content.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file (a FIFO, device, socket or directory is never read)")]
    NotRegular,
    #[error("larger than {} bytes", MAX_FILE_BYTES)]
    TooLarge,
    #[error("it kept changing while being read (written in place?); it is read again at its next change")]
    Unsettled,
}

/// The content of the regular file at `path` and its stamp, from a read during which it did not
/// change.
pub fn read(path: &Path) -> Result<(Vec<u8>, Stamp), ReadError> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let mut file = open(path)?;
        let before = file.metadata()?;
        if !before.file_type().is_file() {
            return Err(ReadError::NotRegular);
        }
        if before.len() > MAX_FILE_BYTES {
            return Err(ReadError::TooLarge);
        }
        let mut bytes = Vec::with_capacity(before.len() as usize);
        (&mut file).take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ReadError::TooLarge);
        }
        let stamp = Stamp::of(&before);
        let after = Stamp::of(&file.metadata()?);
        // The name may have been pointed at another file meanwhile (an atomic rename): that one
        // is read at the next change, and this read only counts when the name still shows it.
        let named = Stamp::now(path);
        if after == stamp && named.as_ref() == Some(&stamp) && bytes.len() as u64 == stamp.len {
            return Ok((bytes, stamp));
        }
    }
    Err(ReadError::Unsettled)
}

/// Open for reading without waiting: on a FIFO without a writer a plain open blocks forever.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_with_their_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a");
        std::fs::write(&path, "hello").unwrap();
        let (bytes, stamp) = read(&path).unwrap();
        assert_eq!(bytes, b"hello");
        assert_eq!(Some(stamp), Stamp::now(&path));
    }

    #[test]
    fn directories_and_devices_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read(dir.path()), Err(ReadError::NotRegular)));
        assert!(matches!(read(Path::new("/dev/zero")), Err(ReadError::NotRegular)));
        assert!(matches!(read(Path::new("/dev/null")), Err(ReadError::NotRegular)));
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        assert!(matches!(read(&fifo), Err(ReadError::NotRegular)));
        // Not a speed target: a blocking open would never return at all.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_huge_sparse_file_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.yml");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(1 << 30).unwrap(); // 1 GiB, sparse: no disk used
        assert!(matches!(read(&path), Err(ReadError::TooLarge)));
        file.set_len(MAX_FILE_BYTES).unwrap();
        assert_eq!(
            read(&path).unwrap().0.len() as u64,
            MAX_FILE_BYTES,
            "the limit itself is allowed"
        );
    }
}
