//! Choosing the vault's keys at start-up.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use patchbay_core::Vault;

/// Where a SQLite deployment keeps its generated key.
pub fn default_key_file(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "patchbay.db".into());
    name.push(".key");
    db_path.with_file_name(name)
}

/// The vault for this configuration:
/// - configured `master_keys` always win;
/// - SQLite on a file: the key file beside the database, created (mode 0600) when missing;
/// - in-memory SQLite: a throw-away key;
/// - PostgreSQL: a configured key is required.
pub fn load_vault(master_keys: Option<&str>, database_url: &str, key_file: Option<&Path>) -> anyhow::Result<Vault> {
    if let Some(spec) = master_keys.filter(|s| !s.trim().is_empty()) {
        return Vault::from_spec(spec).map_err(|e| anyhow::anyhow!("PATCHBAY_MASTER_KEYS: {e}"));
    }
    if !database_url.starts_with("sqlite:") {
        anyhow::bail!(
            "PATCHBAY_MASTER_KEYS is required with PostgreSQL: set it to id:base64 with a 32-byte key \
             (for example: k1:$(head -c32 /dev/urandom | base64))"
        );
    }
    let Some(db_path) = patchbay_store::sqlite_path(database_url) else {
        tracing::warn!("no master key configured; using a throw-away key for this in-memory database");
        return Ok(Vault::from_spec(&Vault::generate_spec("ephemeral")).expect("generated key is valid"));
    };
    let path = key_file.map(Path::to_path_buf).unwrap_or_else(|| default_key_file(&db_path));
    if path.exists() {
        let spec = std::fs::read_to_string(&path).with_context(|| format!("reading key file {}", path.display()))?;
        return Vault::from_spec(spec.trim()).map_err(|e| anyhow::anyhow!("key file {}: {e}", path.display()));
    }
    let spec = Vault::generate_spec("local-1");
    write_private(&path, &spec).with_context(|| format!("writing key file {}", path.display()))?;
    tracing::warn!(
        key_file = %path.display(),
        "no master key configured: generated one into the key file; back it up, or set PATCHBAY_MASTER_KEYS"
    );
    Ok(Vault::from_spec(&spec).expect("generated key is valid"))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(contents.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sqlite_generates_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("p.db").display());
        let v1 = load_vault(None, &url, None).unwrap();
        let key = dir.path().join("p.db.key");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = v1.seal(b"x", b"");
        let v2 = load_vault(None, &url, None).unwrap();
        assert_eq!(v2.open(&sealed, b"").unwrap(), b"x", "the same key is read back");
    }

    #[test]
    fn postgres_requires_a_key() {
        let err = load_vault(None, "postgres://h/db", None).unwrap_err().to_string();
        assert!(err.contains("PATCHBAY_MASTER_KEYS is required"), "{err}");
        assert!(load_vault(Some("k:AAAA"), "postgres://h/db", None).is_err());
        let ok = load_vault(Some("k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="), "postgres://h/db", None).unwrap();
        assert_eq!(ok.primary_key_id(), "k1");
    }
}
