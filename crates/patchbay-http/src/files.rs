//! Where produced files and run logs are kept (`files.backend`): in the local data
//! directory (one replica, or a volume every replica mounts), in the database (chunked
//! rows every replica reads), or in an S3-compatible object store. Names are paths
//! such as `export/files/<fileId>`; the local backend keeps that layout under `data_dir`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use patchbay_store::Store;
use rusty_s3::S3Action as _;
use serde::{Deserialize, Serialize};

/// `files.backend` and, for `s3`, where the bucket is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesBackend {
    #[default]
    Local,
    Database,
    S3,
}

/// `[files.s3]`: an S3-compatible bucket (AWS, MinIO, Ceph, moto …).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Settings {
    /// e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Path-style URLs (`endpoint/bucket/key`, most self-hosted stores) rather than
    /// virtual-host style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// Prepended to every object key (e.g. `patchbay/`).
    pub prefix: String,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("path_style", &self.path_style)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl S3Settings {
    /// The bucket these settings name; the error says which setting is wrong.
    pub fn bucket(&self) -> Result<rusty_s3::Bucket, String> {
        let endpoint: url::Url = self.endpoint.parse().map_err(|e| format!("files.s3.endpoint is not a URL ({e})"))?;
        if self.bucket.is_empty() {
            return Err("files.s3.bucket must be set".into());
        }
        let region = if self.region.is_empty() { "us-east-1".to_string() } else { self.region.clone() };
        let style = if self.path_style { rusty_s3::UrlStyle::Path } else { rusty_s3::UrlStyle::VirtualHost };
        rusty_s3::Bucket::new(endpoint, style, self.bucket.clone(), region)
            .map_err(|e| format!("files.s3.endpoint cannot address a bucket ({e})"))
    }
}

/// A file operation that failed (the store, the object store or the disk).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FileError(String);

enum Backend {
    Local(PathBuf),
    Database(Arc<dyn Store>),
    /// The bucket, or why the settings name none (`Config::validate` refuses those first).
    S3(Box<S3>),
}

struct S3 {
    bucket: Result<rusty_s3::Bucket, String>,
    credentials: rusty_s3::Credentials,
    prefix: String,
    client: reqwest::Client,
}

/// The configured file store.
pub struct Files(Backend);

/// How long a signed object-store request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(300);

impl Files {
    pub fn new(backend: &FilesBackend, s3: &S3Settings, data_dir: PathBuf, store: Arc<dyn Store>) -> Self {
        Files(match backend {
            FilesBackend::Local => Backend::Local(data_dir),
            FilesBackend::Database => Backend::Database(store),
            FilesBackend::S3 => Backend::S3(Box::new(S3 {
                bucket: s3.bucket(),
                credentials: rusty_s3::Credentials::new(s3.access_key_id.clone(), s3.secret_access_key.clone()),
                prefix: s3.prefix.clone(),
                client: reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap_or_default(),
            })),
        })
    }

    /// Stores `bytes` under `name`, replacing what was there; readers see the old
    /// file or the new one, whole.
    pub async fn put(&self, name: &str, bytes: Vec<u8>, now_ms: i64) -> Result<(), FileError> {
        match &self.0 {
            Backend::Local(dir) => {
                let path = dir.join(name);
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await.map_err(|e| FileError(format!("data directory: {e}")))?;
                }
                let part = path.with_extension(format!("part-{}", uuid::Uuid::new_v4().simple()));
                tokio::fs::write(&part, bytes).await.map_err(|e| FileError(format!("writing a file: {e}")))?;
                tokio::fs::rename(&part, &path).await.map_err(|e| FileError(format!("writing a file: {e}")))
            }
            Backend::Database(store) => {
                store.file_put(name, &bytes, now_ms).await.map_err(|e| FileError(format!("storing a file: {e}")))
            }
            Backend::S3(s3) => {
                let url = s3.bucket()?.put_object(Some(&s3.credentials), &s3.key(name)).sign(SIGNED_FOR);
                let resp = s3.client.put(url).body(bytes).send().await.map_err(transport)?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(FileError(format!("the object store answered HTTP {} to a PUT", resp.status().as_u16())))
                }
            }
        }
    }

    /// The file stored under `name`, whole; `None` when there is none.
    pub async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, FileError> {
        match &self.0 {
            Backend::Local(dir) => match tokio::fs::read(dir.join(name)).await {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(FileError(format!("reading a file: {e}"))),
            },
            Backend::Database(store) => {
                store.file_get(name).await.map_err(|e| FileError(format!("reading a file: {e}")))
            }
            Backend::S3(s3) => {
                let url = s3.bucket()?.get_object(Some(&s3.credentials), &s3.key(name)).sign(SIGNED_FOR);
                let resp = s3.client.get(url).send().await.map_err(transport)?;
                match resp.status().as_u16() {
                    200 => Ok(Some(resp.bytes().await.map_err(transport)?.to_vec())),
                    404 => Ok(None),
                    s => Err(FileError(format!("the object store answered HTTP {s} to a GET"))),
                }
            }
        }
    }
}

impl S3 {
    fn bucket(&self) -> Result<&rusty_s3::Bucket, FileError> {
        self.bucket.as_ref().map_err(|e| FileError(e.clone()))
    }

    /// The object key of a file name.
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// An object-store call that failed without an answer, told without the request's URL
/// (a signed URL carries a signature).
fn transport(e: reqwest::Error) -> FileError {
    FileError(format!("the object store: {}", e.without_url()))
}
