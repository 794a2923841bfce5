//! The gallery of people: named face encodings in one embedded SQLite file.
//!
//! # What is stored
//!
//! Encodings, never pictures. Each person (`people`: a unique name and a creation time) owns
//! any number of encodings (`encodings`): the network's output vector as a BLOB of
//! little-endian `f32`s, a `source` label (typically the image's file name, so a user can tell
//! which photo an encoding came from) and a creation time. No pixels, crops or thumbnails ever
//! reach the file. A `meta` table records the encoding dimension and the model that made the
//! encodings; the file is marked with SQLite's `application_id` ([`APPLICATION_ID`]) and its
//! `user_version` ([`SCHEMA_VERSION`]), so a file that is not a convnet gallery (a JPEG, random
//! bytes, another program's SQLite database, a gallery from a newer convnet) is refused with
//! [`GalleryError::NotAGallery`] and never written to: no tables are created in a foreign file.
//!
//! # Crashes and concurrency
//!
//! * The file is in WAL mode (write-ahead log) with `synchronous=FULL`: a commit is durable
//!   once [`Gallery::enroll`] returns, because the log is synced to disk before the commit is
//!   acknowledged.
//! * Every [`Gallery::enroll`] call (all of its encodings, and the person if new) is ONE
//!   transaction, so a crash, a kill or a power cut loses at most the enrolment in flight: a
//!   transaction's frames in the log without a commit record are ignored when the file is
//!   opened next. A person never appears with part of an enrolment.
//! * Readers see the last committed state while a writer writes (WAL readers work from a
//!   snapshot and do not block the writer, nor it them). Writes take the write lock up front
//!   (`BEGIN IMMEDIATE`) and every connection waits up to [`BUSY_TIMEOUT`] for a lock instead
//!   of failing with `SQLITE_BUSY`, so one writer and several readers, in threads or processes,
//!   each with its own [`Gallery`], are safe at once.
//!
//! # Matching
//!
//! [`Gallery::distances`] ranks people by the mean Euclidean distance from a query encoding
//! to each of their encodings (as face-api.js's `FaceMatcher` does), and also reports the
//! nearest single encoding; [`Gallery::identify`] names the best person only when that mean is
//! below a threshold, otherwise the face is unknown. Unknown names and foreign files are errors,
//! never a wrong identity.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

/// SQLite `application_id` of a convnet gallery (the bytes `CNVG`).
pub const APPLICATION_ID: i32 = 0x434E_5647;
/// Schema version stored in `user_version`; a file with a larger one is from a newer convnet.
pub const SCHEMA_VERSION: i32 = 1;
/// The model whose encodings a gallery made here holds (recorded in the `meta` table).
pub const MODEL: &str = "face-api.js faceRecognitionNet";
/// How long a connection waits for another one's lock before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The most values an encoding may have (face-api's are 128): a recorded dimension above it is
/// damage, not a model.
pub const MAX_DIM: usize = 1 << 16;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

const SCHEMA: &str = "
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    created_at TEXT
);
CREATE TABLE encodings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    encoding BLOB NOT NULL, -- little-endian f32 values
    source TEXT,            -- e.g. the image file name; never the picture
    created_at TEXT
);
CREATE INDEX encodings_person ON encodings(person_id);
";

/// Current UTC time as an ISO 8601 string, computed by SQLite.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

/// Why a gallery operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    #[error("gallery {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("gallery {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a convnet gallery: {reason}")]
    NotAGallery { path: PathBuf, reason: String },
    #[error("gallery {path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("gallery {path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot create a gallery in {path}: the folder does not exist")]
    NoFolder { path: PathBuf },
    #[error(
        "gallery {path} holds {gallery}-value encodings, not {requested}-value ones \
         (made for another model?)"
    )]
    DimensionMismatch {
        path: PathBuf,
        gallery: usize,
        requested: usize,
    },
    #[error("a gallery's encodings need at least one value (dimension 0 asked for {path})")]
    ZeroDim { path: PathBuf },
    #[error("{}", unknown_name_message(.name, .known))]
    UnknownName { name: String, known: Vec<String> },
    #[error("an encoding has {found} values, the gallery expects {expected}")]
    BadEncoding { expected: usize, found: usize },
    #[error("encoding value {index} is {value}: values must be finite")]
    NonFinite { index: usize, value: f32 },
    #[error("bad name {name:?}: {reason}")]
    BadName { name: String, reason: String },
    #[error("nothing to enrol for {name:?}: no encodings given")]
    NoEncodings { name: String },
}

fn unknown_name_message(name: &str, known: &[String]) -> String {
    const SHOWN: usize = 20;
    if known.is_empty() {
        return format!("no person named {name:?}: the gallery is empty");
    }
    let mut list = known
        .iter()
        .take(SHOWN)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if known.len() > SHOWN {
        list.push_str(&format!(" and {} more", known.len() - SHOWN));
    }
    format!("no person named {name:?} in the gallery; known: {list}")
}

/// A person in the gallery, as listed by [`Gallery::people`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    /// How many encodings the person has.
    pub encodings: usize,
    /// When the person was first enrolled (UTC, ISO 8601).
    pub created_at: String,
}

/// How far a query encoding is from one person, as ranked by [`Gallery::distances`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonDistance {
    pub name: String,
    /// Mean Euclidean distance to the person's encodings (what matching uses).
    pub distance: f32,
    /// Euclidean distance to the person's nearest encoding.
    pub nearest: f32,
}

/// The answer of [`Gallery::identify`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Identity {
    /// The best person's mean distance is below the threshold.
    Known { name: String, distance: f32 },
    /// Nobody is close enough; `nearest` is the best person and their mean distance, or
    /// `None` when the gallery is empty.
    Unknown { nearest: Option<(String, f32)> },
}

/// A gallery file opened for reading and writing. Each thread or process uses its own.
#[derive(Debug)]
pub struct Gallery {
    conn: Connection,
    path: PathBuf,
    dim: usize,
    model: String,
}

impl Gallery {
    /// Opens the gallery at `path`, creating it (for `dim`-value encodings) when the file does
    /// not exist or is empty. The parent folder must exist. An existing gallery must have been
    /// made for `dim`-value encodings; any other file is refused, untouched.
    pub fn create_or_open(path: &Path, dim: usize) -> Result<Self, GalleryError> {
        if dim == 0 {
            return Err(GalleryError::ZeroDim {
                path: path.to_path_buf(),
            });
        }
        if dim > MAX_DIM {
            return Err(GalleryError::DimensionMismatch {
                path: path.to_path_buf(),
                gallery: MAX_DIM,
                requested: dim,
            });
        }
        let gallery = Self::connect(path, Some(dim))?;
        if gallery.dim != dim {
            return Err(GalleryError::DimensionMismatch {
                path: path.to_path_buf(),
                gallery: gallery.dim,
                requested: dim,
            });
        }
        Ok(gallery)
    }

    /// Opens an existing gallery; [`GalleryError::Missing`] if there is no file, and
    /// [`GalleryError::NotAGallery`] (file left untouched) if it is not a convnet gallery.
    pub fn open(path: &Path) -> Result<Self, GalleryError> {
        Self::connect(path, None)
    }

    /// The gallery file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of values in each encoding.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The model that made the gallery's encodings.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Adds `encodings` (each with its source label) to the person `name`, creating the
    /// person if new, in one transaction: all of them are stored or none. Returns the person's
    /// total number of encodings afterwards.
    pub fn enroll(
        &mut self,
        name: &str,
        encodings: &[(Vec<f32>, String)],
    ) -> Result<usize, GalleryError> {
        check_name(name)?;
        if encodings.is_empty() {
            return Err(GalleryError::NoEncodings {
                name: name.to_string(),
            });
        }
        for (encoding, _) in encodings {
            check_encoding(encoding, self.dim)?;
        }
        let err = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        tx.execute(
            &format!(
                "INSERT INTO people (name, created_at) VALUES (?1, {NOW}) \
                 ON CONFLICT(name) DO NOTHING"
            ),
            params![name],
        )
        .map_err(&err)?;
        let person_id: i64 = tx
            .query_row(
                "SELECT id FROM people WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .map_err(&err)?;
        {
            let mut insert = tx
                .prepare(&format!(
                    "INSERT INTO encodings (person_id, encoding, source, created_at) \
                     VALUES (?1, ?2, ?3, {NOW})"
                ))
                .map_err(&err)?;
            for (encoding, source) in encodings {
                insert
                    .execute(params![person_id, encode(encoding), source])
                    .map_err(&err)?;
            }
        }
        let total: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM encodings WHERE person_id = ?1",
                params![person_id],
                |r| r.get(0),
            )
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(total as usize)
    }

    /// Everyone in the gallery, sorted by name.
    pub fn people(&self) -> Result<Vec<Person>, GalleryError> {
        let err = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.name, COUNT(e.id), COALESCE(p.created_at, '') \
                 FROM people p LEFT JOIN encodings e ON e.person_id = p.id \
                 GROUP BY p.id ORDER BY p.name",
            )
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Person {
                    name: r.get(0)?,
                    encodings: r.get::<_, i64>(1)? as usize,
                    created_at: r.get(2)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&err)
    }

    /// The encodings of `name`, in the order they were enrolled.
    pub fn encodings(&self, name: &str) -> Result<Vec<Vec<f32>>, GalleryError> {
        let err = sql_err(&self.path);
        let blobs: Vec<Vec<u8>> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT e.encoding FROM encodings e JOIN people p ON p.id = e.person_id \
                     WHERE p.name = ?1 ORDER BY e.id",
                )
                .map_err(&err)?;
            let rows = stmt.query_map(params![name], |r| r.get(0)).map_err(&err)?;
            rows.collect::<Result<_, _>>().map_err(&err)?
        };
        if blobs.is_empty() && self.person_id(name)?.is_none() {
            return Err(self.unknown(name));
        }
        blobs
            .iter()
            .map(|b| self.values(b, &format!("an encoding of {name:?}")))
            .collect()
    }

    /// Removes `name` and all of their encodings; returns how many encodings went.
    pub fn remove(&mut self, name: &str) -> Result<usize, GalleryError> {
        let err = sql_err(&self.path);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(&err)?;
        let person_id: Option<i64> = tx
            .query_row(
                "SELECT id FROM people WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(&err)?;
        let Some(person_id) = person_id else {
            drop(tx);
            return Err(self.unknown(name));
        };
        // Delete the encodings explicitly too, so the count is right even if a foreign-key
        // cascade were off.
        let removed = tx
            .execute(
                "DELETE FROM encodings WHERE person_id = ?1",
                params![person_id],
            )
            .map_err(&err)?;
        tx.execute("DELETE FROM people WHERE id = ?1", params![person_id])
            .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(removed)
    }

    /// Every person's distance from `encoding`, nearest first: `distance` is the mean
    /// Euclidean distance to the person's encodings, `nearest` the smallest one.
    pub fn distances(&self, encoding: &[f32]) -> Result<Vec<PersonDistance>, GalleryError> {
        check_encoding(encoding, self.dim)?;
        let err = sql_err(&self.path);
        // One statement, so one consistent snapshot even while a writer commits.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.name, e.encoding FROM encodings e JOIN people p ON p.id = e.person_id \
                 ORDER BY p.name, e.id",
            )
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        // (name, sum of distances, count, nearest)
        let mut acc: Vec<(String, f64, usize, f32)> = Vec::new();
        while let Some(row) = rows.next().map_err(&err)? {
            let name: String = row.get(0).map_err(&err)?;
            let blob = self.blob(row, 1, &name)?;
            let stored = self.values(blob, &format!("an encoding of {name:?}"))?;
            let d = distance(encoding, &stored);
            match acc.last_mut() {
                Some(last) if last.0 == name => {
                    last.1 += f64::from(d);
                    last.2 += 1;
                    last.3 = last.3.min(d);
                }
                _ => acc.push((name, f64::from(d), 1, d)),
            }
        }
        let mut out: Vec<PersonDistance> = acc
            .into_iter()
            .map(|(name, sum, n, nearest)| PersonDistance {
                name,
                distance: (sum / n as f64) as f32,
                nearest,
            })
            .collect();
        out.sort_by(|a, b| {
            a.distance
                .total_cmp(&b.distance)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(out)
    }

    /// Who `encoding` is: the best person (smallest mean distance) if that distance is below
    /// `threshold`, otherwise unknown (with the nearest person, if anyone is enrolled).
    pub fn identify(&self, encoding: &[f32], threshold: f32) -> Result<Identity, GalleryError> {
        let ranked = self.distances(encoding)?;
        Ok(match ranked.into_iter().next() {
            None => Identity::Unknown { nearest: None },
            Some(best) if best.distance < threshold => Identity::Known {
                name: best.name,
                distance: best.distance,
            },
            Some(best) => Identity::Unknown {
                nearest: Some((best.name, best.distance)),
            },
        })
    }

    // ---- internals ----

    fn connect(path: &Path, create_dim: Option<usize>) -> Result<Self, GalleryError> {
        let create = create_dim.is_some();
        let path_buf = path.to_path_buf();
        let not_a_gallery = |reason: String| GalleryError::NotAGallery {
            path: path_buf.clone(),
            reason,
        };
        let err = sql_err(path);

        // Look at the file before SQLite does, so nothing is written to a foreign file.
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Err(GalleryError::Missing { path: path_buf });
                }
                let parent = match path.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !parent.is_dir() {
                    return Err(GalleryError::NoFolder {
                        path: parent.to_path_buf(),
                    });
                }
                if let Some(dim) = create_dim {
                    create_new(path, parent, dim)?;
                }
            }
            Err(e) => {
                return Err(GalleryError::Io {
                    path: path_buf,
                    source: e,
                });
            }
            Ok(meta) if meta.is_dir() => {
                return Err(not_a_gallery("it is a folder".into()));
            }
            // A gallery convnet makes is never empty (see `create_new`): an empty file is
            // someone else's, and is refused by every command alike.
            Ok(meta) if meta.len() == 0 => {
                return Err(not_a_gallery(
                    "the file is empty (remove it to make a new gallery there)".into(),
                ));
            }
            Ok(_) => {
                let mut head = Vec::with_capacity(100);
                File::open(path)
                    .and_then(|f| f.take(100).read_to_end(&mut head))
                    .map_err(|e| GalleryError::Io {
                        path: path_buf.clone(),
                        source: e,
                    })?;
                if let Some(reason) = not_sqlite_reason(&head) {
                    return Err(not_a_gallery(reason));
                }
            }
        }

        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let not_db = |e: rusqlite::Error| {
            if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) {
                not_a_gallery("not an SQLite database".into())
            } else {
                err(e)
            }
        };
        let mut conn = Connection::open_with_flags(path, flags).map_err(not_db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;

        let application_id = |c: &Connection| -> Result<i32, GalleryError> {
            c.query_row("PRAGMA application_id", [], |r| r.get(0))
                .map_err(not_db)
        };
        let foreign_reason = |id: i32| {
            if id == 0 {
                "an SQLite database without convnet's gallery schema".to_string()
            } else {
                format!("an SQLite database of another application (application_id {id:#x})")
            }
        };

        let mut id = application_id(&conn)?;
        if id != APPLICATION_ID {
            let Some(dim) = create_dim else {
                return Err(not_a_gallery(foreign_reason(id)));
            };
            // Only a brand-new (zero-page) database is initialised. The schema goes in with
            // one write transaction that checks again, so two processes creating the same
            // gallery at once do not both write it.
            let pages: i64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .map_err(&err)?;
            if pages != 0 {
                return Err(not_a_gallery(foreign_reason(id)));
            }
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(not_db)?;
            id = application_id(&tx)?;
            if id != APPLICATION_ID {
                let (objects, version): (i64, i64) = tx
                    .query_row(
                        "SELECT (SELECT COUNT(*) FROM sqlite_master), \
                         (SELECT user_version FROM pragma_user_version)",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map_err(&err)?;
                if id != 0 || objects != 0 || version != 0 {
                    return Err(not_a_gallery(foreign_reason(id)));
                }
                write_schema(&tx, dim).map_err(&err)?;
            }
            tx.commit().map_err(&err)?;
        }

        // It is ours: check the version and the schema before changing anything.
        let version: i32 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(&err)?;
        if version > SCHEMA_VERSION {
            return Err(not_a_gallery(format!(
                "it has schema version {version}, newer than this convnet's {SCHEMA_VERSION} \
                 (made by a newer convnet?)"
            )));
        }
        if version < 1 {
            return Err(not_a_gallery(format!(
                "it has convnet's application id but schema version {version}"
            )));
        }
        let tables: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
                 AND name IN ('meta', 'people', 'encodings')",
                [],
                |r| r.get(0),
            )
            .map_err(&err)?;
        if tables != 3 {
            return Err(not_a_gallery(
                "its meta, people and encodings tables are missing".into(),
            ));
        }
        let meta = |key: &str| -> Result<Option<String>, GalleryError> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(&err)
        };
        let dim_text = meta("dim")?.ok_or_else(|| GalleryError::Corrupt {
            path: path_buf.clone(),
            reason: "the encoding dimension is not recorded".into(),
        })?;
        let dim: usize = dim_text
            .trim()
            .parse()
            .ok()
            .filter(|&d| d > 0 && d <= MAX_DIM)
            .ok_or_else(|| GalleryError::Corrupt {
                path: path_buf.clone(),
                reason: format!(
                    "the recorded encoding dimension {dim_text:?} is not a number from 1 to {MAX_DIM}"
                ),
            })?;
        let model = meta("model")?.unwrap_or_default();
        if model != MODEL {
            return Err(not_a_gallery(format!(
                "its encodings come from model {model:?}, not {MODEL:?}; they cannot be compared"
            )));
        }

        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(&err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(&err)?;
        // Persistent; a no-op once the file is in WAL mode.
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(&err)?;

        let gallery = Self {
            conn,
            path: path_buf,
            dim,
            model,
        };
        gallery.check_rows()?;
        Ok(gallery)
    }

    /// Every stored encoding has the gallery's dimension and finite values, checked when the
    /// file is opened: one NaN row would otherwise make every distance NaN and every face
    /// "unknown". The error names the person and the row.
    fn check_rows(&self) -> Result<(), GalleryError> {
        let err = sql_err(&self.path);
        let mut stmt = self
            .conn
            .prepare("SELECT p.name, e.id, e.encoding FROM encodings e JOIN people p ON p.id = e.person_id")
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            let name: String = row.get(0).map_err(&err)?;
            let id: i64 = row.get(1).map_err(&err)?;
            let blob = self.blob(row, 2, &name)?;
            self.values(blob, &format!("encoding {id} of {name:?}"))?;
        }
        Ok(())
    }

    /// Column `column` of `row` as a BLOB, or the gallery is damaged.
    fn blob<'r>(
        &self,
        row: &'r rusqlite::Row<'_>,
        column: usize,
        name: &str,
    ) -> Result<&'r [u8], GalleryError> {
        row.get_ref(column)
            .map_err(sql_err(&self.path))?
            .as_blob()
            .map_err(|e| GalleryError::Corrupt {
                path: self.path.clone(),
                reason: format!("an encoding of {name:?} is not a BLOB: {e}"),
            })
    }

    /// A stored encoding's values: `dim` little-endian `f32`s, all finite.
    fn values(&self, blob: &[u8], what: &str) -> Result<Vec<f32>, GalleryError> {
        let corrupt = |reason: String| GalleryError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        if blob.len() != self.dim * 4 {
            return Err(corrupt(format!(
                "{what} has {} bytes, expected {} ({} f32 values)",
                blob.len(),
                self.dim * 4,
                self.dim
            )));
        }
        let values: Vec<f32> = blob
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(corrupt(format!(
                "{what} has value {i} = {v}; values must be finite"
            )));
        }
        Ok(values)
    }

    fn person_id(&self, name: &str) -> Result<Option<i64>, GalleryError> {
        self.conn
            .query_row(
                "SELECT id FROM people WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err(&self.path))
    }

    /// The [`GalleryError::UnknownName`] for `name`, listing the known names.
    fn unknown(&self, name: &str) -> GalleryError {
        let known = self
            .people()
            .map(|people| people.into_iter().map(|p| p.name).collect())
            .unwrap_or_default();
        GalleryError::UnknownName {
            name: name.to_string(),
            known,
        }
    }
}

/// Euclidean distance between two encodings of the same length.
fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// Writes a new gallery's schema and marks (in the caller's transaction or connection).
fn write_schema(conn: &Connection, dim: usize) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('dim', ?1), ('model', ?2), \
         ('created_at', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        params![dim.to_string(), MODEL],
    )?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)
}

/// Makes a new gallery at `path` (which did not exist): written whole under a temporary name in
/// the same folder, synced, then linked into place. The path therefore never holds a
/// half-made gallery or an empty file of ours, even after a kill, which is what lets an empty
/// file be refused as foreign. If another process linked its gallery first, that one is kept.
fn create_new(path: &Path, parent: &Path, dim: usize) -> Result<(), GalleryError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{name}.{}.new", std::process::id()));
    let made = (|| -> Result<(), GalleryError> {
        let _ = std::fs::remove_file(&tmp);
        let conn = Connection::open(&tmp).map_err(sql_err(&tmp))?;
        write_schema(&conn, dim).map_err(sql_err(&tmp))?;
        conn.close().map_err(|(_, e)| sql_err(&tmp)(e))?;
        let io = |source| GalleryError::Io {
            path: tmp.clone(),
            source,
        };
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
        match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(GalleryError::Io {
                path: path.to_path_buf(),
                source: e,
            }),
            _ => Ok(()),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    made
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> GalleryError + '_ {
    move |source| GalleryError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Why the start of a file shows it is not an SQLite database, if it does.
fn not_sqlite_reason(head: &[u8]) -> Option<String> {
    if head.starts_with(SQLITE_MAGIC) {
        return None;
    }
    let looks_like = if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        " (it looks like a JPEG image)"
    } else if head.starts_with(b"\x89PNG") {
        " (it looks like a PNG image)"
    } else {
        ""
    };
    Some(format!("not an SQLite database{looks_like}"))
}

fn check_name(name: &str) -> Result<(), GalleryError> {
    let bad = |reason: &str| {
        Err(GalleryError::BadName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.trim().is_empty() {
        return bad("a name cannot be empty or only spaces");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad(&format!("a name has at most {MAX_NAME_CHARS} characters"));
    }
    if name.chars().any(char::is_control) {
        return bad("a name cannot contain control characters");
    }
    Ok(())
}

fn check_encoding(encoding: &[f32], dim: usize) -> Result<(), GalleryError> {
    if encoding.len() != dim {
        return Err(GalleryError::BadEncoding {
            expected: dim,
            found: encoding.len(),
        });
    }
    if let Some((index, &value)) = encoding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(GalleryError::NonFinite { index, value });
    }
    Ok(())
}

fn encode(encoding: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoding.len() * 4);
    for v in encoding {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
