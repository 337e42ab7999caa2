//! Key files: one or more 32-byte keys, 64 hex digits a line, `#` comments.
//! The first key is current; the others are older keys kept during a rotation.
//! Without a configured file, a key is generated once and kept at a default
//! path beside the database (the log says so).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot read the key file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write a new key file {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("the key file {path} must hold one or more keys, each 64 hex digits (32 bytes) on a line of its own")]
    Malformed { path: PathBuf },
}

/// Where a generated key is kept: beside the SQLite file, or under `./var/`
/// for PostgreSQL (where replicas must be given one shared key file instead).
pub fn default_path(database_url: &str, service: &str, key: &str) -> PathBuf {
    match dialin_store::sqlite_path(database_url) {
        Some(path) if path != ":memory:" && !path.is_empty() => PathBuf::from(format!("{path}.{key}")),
        _ => PathBuf::from(format!("var/{service}.{key}")),
    }
}

/// Reads the keys from `configured`, or from `default_path`, generating a key
/// there first if there is none. `what` names the key in the log.
pub fn load(configured: Option<&Path>, default_path: &Path, what: &str) -> Result<Vec<[u8; 32]>, KeyFileError> {
    if let Some(path) = configured {
        return read(path);
    }
    if default_path.exists() {
        tracing::info!(path = %default_path.display(), "using the generated {what}");
        return read(default_path);
    }
    let key: [u8; 32] = rand::random();
    write_private(default_path, hex::encode(key).as_bytes()).map_err(|source| KeyFileError::Write {
        path: default_path.to_owned(),
        source,
    })?;
    tracing::warn!(
        path = %default_path.display(),
        "no {what} file configured: generated one; every replica must share the same file"
    );
    Ok(vec![key])
}

fn read(path: &Path) -> Result<Vec<[u8; 32]>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            hex::decode(line)
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        })
        .collect::<Option<Vec<_>>>()
        .filter(|keys| !keys.is_empty())
        .ok_or_else(|| KeyFileError::Malformed { path: path.to_owned() })
}

/// Creates `path` readable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reads_back_and_accepts_several_keys() {
        let dir = std::env::temp_dir().join(format!("dialin-keyfile-{}", uuid::Uuid::new_v4()));
        let generated = load(None, &dir.join("a.key"), "test key").unwrap();
        assert_eq!(load(None, &dir.join("a.key"), "test key").unwrap(), generated);
        std::fs::write(
            dir.join("two.key"),
            format!("# rotated\n{}\n{}\n", "11".repeat(32), "22".repeat(32)),
        )
        .unwrap();
        assert_eq!(
            load(Some(&dir.join("two.key")), &dir.join("unused"), "k").unwrap(),
            vec![[0x11; 32], [0x22; 32]]
        );
        std::fs::write(dir.join("bad.key"), "abc").unwrap();
        assert!(load(Some(&dir.join("bad.key")), &dir.join("unused"), "k").is_err());
        assert!(load(Some(&dir.join("missing.key")), &dir.join("unused"), "k").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
