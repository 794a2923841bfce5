//! The SQLite gallery: round trip, foreign files, dimensions, a writer with readers at once,
//! and a writer killed (SIGKILL) in the middle of enrolments.
//!
//! The crash test re-runs this test binary as a child process (`crash_child`, an ignored
//! helper that does nothing unless the environment variable below is set).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use convnet_face::gallery::{
    APPLICATION_ID, Gallery, GalleryError, Identity, PersonDistance, SCHEMA_VERSION,
};

/// Deterministic pseudo-random encoding (xorshift64*), values in [-1, 1).
fn pseudo_encoding(seed: u64, dim: usize) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..dim)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let bits = state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
            bits as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn batch(name: &str, count: usize, dim: usize) -> Vec<(Vec<f32>, String)> {
    (0..count)
        .map(|j| {
            (
                pseudo_encoding(fnv(name) ^ ((j as u64) << 1), dim),
                format!("{name}-{j}.jpg"),
            )
        })
        .collect()
}

fn euclid(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

fn names(gallery: &Gallery) -> Vec<String> {
    gallery
        .people()
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect()
}

fn pairs(list: &[&[f32]]) -> Vec<(Vec<f32>, String)> {
    list.iter()
        .enumerate()
        .map(|(i, e)| (e.to_vec(), format!("photo{i}.jpg")))
        .collect()
}

#[test]
fn round_trip_list_match_remove_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.gallery");
    let alice: [&[f32]; 2] = [&[0.0, 0.0, 0.0, 0.0], &[1.0, 0.0, 0.0, 0.0]];
    let bob: [&[f32]; 3] = [
        &[3.0, 4.0, 0.0, 0.0],
        &[0.0, 0.0, 0.0, 2.0],
        &[0.0, 6.0, 8.0, 0.0],
    ];
    {
        let mut g = Gallery::create_or_open(&path, 4).unwrap();
        assert_eq!(g.dim(), 4);
        assert_eq!(g.path(), path.as_path());
        assert_eq!(g.people().unwrap(), vec![]);
        // An empty gallery: unknown, nobody nearest; unknown names say the gallery is empty.
        assert_eq!(
            g.identify(&[0.0; 4], 0.6).unwrap(),
            Identity::Unknown { nearest: None }
        );
        let e = g.encodings("alice").unwrap_err();
        assert!(matches!(&e, GalleryError::UnknownName { known, .. } if known.is_empty()));
        assert!(e.to_string().contains("empty"), "{e}");

        assert_eq!(g.enroll("bob", &pairs(&bob[..2])).unwrap(), 2);
        assert_eq!(g.enroll("alice", &pairs(&alice)).unwrap(), 2);
        // Appending to an existing person.
        assert_eq!(g.enroll("bob", &pairs(&bob[2..])).unwrap(), 3);

        let people = g.people().unwrap();
        assert_eq!(
            people
                .iter()
                .map(|p| (p.name.as_str(), p.encodings))
                .collect::<Vec<_>>(),
            vec![("alice", 2), ("bob", 3)]
        );
        assert!(
            people.iter().all(|p| p.created_at.ends_with('Z')),
            "{people:?}"
        );
        let json = serde_json::to_value(&people[0]).unwrap();
        assert_eq!(json["name"], "alice");
        assert_eq!(json["encodings"], 2);

        assert_eq!(
            g.encodings("bob").unwrap(),
            bob.iter().map(|e| e.to_vec()).collect::<Vec<_>>()
        );

        // By hand, from (0.5, 0, 0, 0): alice 0.5 and 0.5 → mean 0.5, nearest 0.5;
        // bob |(-2.5,-4,0,0)| = √22.25, |(0.5,0,0,-2)| = √4.25, |(0.5,-6,-8,0)| = √100.25.
        let query = [0.5, 0.0, 0.0, 0.0];
        let ranked = g.distances(&query).unwrap();
        let bob_mean = (22.25f32.sqrt() + 4.25f32.sqrt() + 100.25f32.sqrt()) / 3.0;
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].name, "alice");
        assert!((ranked[0].distance - 0.5).abs() < 1e-6);
        assert!((ranked[0].nearest - 0.5).abs() < 1e-6);
        assert_eq!(ranked[1].name, "bob");
        assert!((ranked[1].distance - bob_mean).abs() < 1e-5, "{ranked:?}");
        assert!((ranked[1].nearest - 4.25f32.sqrt()).abs() < 1e-6);
        // Generic check of the definitions against every person.
        for PersonDistance {
            name,
            distance,
            nearest,
        } in &ranked
        {
            let ds: Vec<f32> = g
                .encodings(name)
                .unwrap()
                .iter()
                .map(|e| euclid(e, &query))
                .collect();
            let mean = ds.iter().sum::<f32>() / ds.len() as f32;
            let min = ds.iter().copied().fold(f32::INFINITY, f32::min);
            assert!((mean - distance).abs() < 1e-5);
            assert!((min - nearest).abs() < 1e-6);
        }

        // Identify: below the threshold → known; otherwise unknown with the nearest person.
        assert_eq!(
            g.identify(&query, 0.6).unwrap(),
            Identity::Known {
                name: "alice".into(),
                distance: ranked[0].distance
            }
        );
        // Strictly below: a distance equal to the threshold is not a match.
        assert!(matches!(
            g.identify(&query, 0.5).unwrap(),
            Identity::Unknown { nearest: Some((ref n, d)) } if n == "alice" && (d - 0.5).abs() < 1e-6
        ));
        let far = [-100.0, 0.0, 0.0, 0.0];
        let unknown = g.identify(&far, 0.6).unwrap();
        assert!(matches!(&unknown, Identity::Unknown { nearest: Some((n, _)) } if n == "alice"));
        // Whoever ranks first is named when the threshold is just above their distance.
        let on_bob = [1.0, 3.3, 2.7, 0.7];
        let best = &g.distances(&on_bob).unwrap()[0];
        assert_eq!(
            g.identify(&on_bob, best.distance + 0.01).unwrap(),
            Identity::Known {
                name: best.name.clone(),
                distance: best.distance
            }
        );

        // JSON forms.
        let known = serde_json::to_value(g.identify(&query, 0.6).unwrap()).unwrap();
        assert_eq!(known["kind"], "known");
        assert_eq!(known["name"], "alice");
        let unknown = serde_json::to_value(&unknown).unwrap();
        assert_eq!(unknown["kind"], "unknown");
        assert_eq!(unknown["nearest"][0], "alice");
        let empty = serde_json::to_value(Identity::Unknown { nearest: None }).unwrap();
        assert_eq!(
            empty,
            serde_json::json!({"kind": "unknown", "nearest": null})
        );
        let back: Identity = serde_json::from_value(known).unwrap();
        assert!(matches!(back, Identity::Known { .. }));

        // Unknown names are errors listing the known ones, never someone else.
        for e in [
            g.encodings("carol").unwrap_err(),
            g.remove("carol").unwrap_err(),
            g.encodings("Alice").unwrap_err(),
        ] {
            match &e {
                GalleryError::UnknownName { known, .. } => {
                    assert_eq!(known, &["alice".to_string(), "bob".to_string()])
                }
                other => panic!("expected UnknownName, got {other:?}"),
            }
            let msg = e.to_string();
            assert!(
                msg.contains("\"alice\"") && msg.contains("\"bob\""),
                "{msg}"
            );
        }
    }

    // Reopen from disk: everything is there.
    {
        let mut g = Gallery::open(&path).unwrap();
        assert_eq!(g.dim(), 4);
        assert_eq!(names(&g), ["alice", "bob"]);
        assert_eq!(
            g.encodings("alice").unwrap(),
            alice.iter().map(|e| e.to_vec()).collect::<Vec<_>>()
        );
        assert_eq!(g.remove("bob").unwrap(), 3);
        assert_eq!(names(&g), ["alice"]);
        assert!(matches!(
            g.remove("bob"),
            Err(GalleryError::UnknownName { .. })
        ));
        assert_eq!(g.distances(&[0.0; 4]).unwrap().len(), 1);
    }
    {
        let g = Gallery::create_or_open(&path, 4).unwrap();
        assert_eq!(names(&g), ["alice"]);
    }

    // The file is a WAL-mode SQLite database marked as ours; the encodings went away with bob
    // (no orphans), and no pixels: only the BLOBs of 4 little-endian f32s.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(id, APPLICATION_ID);
    let version: i32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    let (rows, max_len): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), MAX(LENGTH(encoding)) FROM encodings",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, max_len), (2, 16));
    let sources: Vec<String> = conn
        .prepare("SELECT source FROM encodings ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sources, ["photo0.jpg", "photo1.jpg"]);
}

#[test]
fn names_and_values_are_checked_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let mut g = Gallery::create_or_open(&path, 4).unwrap();
    let one = pairs(&[&[0.1, 0.2, 0.3, 0.4]]);

    for bad in ["", "   ", "a\nb", "tab\there", "nul\0", &"x".repeat(201)] {
        assert!(
            matches!(g.enroll(bad, &one), Err(GalleryError::BadName { .. })),
            "{bad:?}"
        );
    }
    // Stored exactly as given (no trimming), looked up exactly.
    let long = "é".repeat(200);
    assert_eq!(g.enroll(&long, &one).unwrap(), 1);
    assert_eq!(g.enroll(" Zoë ", &one).unwrap(), 1);
    assert!(matches!(
        g.encodings("Zoë"),
        Err(GalleryError::UnknownName { .. })
    ));
    assert_eq!(g.encodings(" Zoë ").unwrap().len(), 1);

    assert!(matches!(
        g.enroll("nobody", &[]),
        Err(GalleryError::NoEncodings { .. })
    ));
    // A batch with one bad encoding stores nothing at all.
    let mut mixed = batch("mixed", 3, 4);
    mixed[2].0[1] = f32::NAN;
    assert!(matches!(
        g.enroll("mixed", &mixed),
        Err(GalleryError::NonFinite { index: 1, .. })
    ));
    mixed[2].0[1] = f32::INFINITY;
    assert!(matches!(
        g.enroll("mixed", &mixed),
        Err(GalleryError::NonFinite { .. })
    ));
    mixed[2].0 = vec![0.0; 5];
    assert!(matches!(
        g.enroll("mixed", &mixed),
        Err(GalleryError::BadEncoding {
            expected: 4,
            found: 5
        })
    ));
    assert!(matches!(
        g.enroll(" Zoë ", &mixed),
        Err(GalleryError::BadEncoding { .. })
    ));
    assert_eq!(g.people().unwrap().len(), 2);
    assert_eq!(g.encodings(" Zoë ").unwrap().len(), 1);

    // Queries are checked too.
    assert!(matches!(
        g.distances(&[0.0; 3]),
        Err(GalleryError::BadEncoding {
            expected: 4,
            found: 3
        })
    ));
    assert!(matches!(
        g.identify(&[0.0, f32::NAN, 0.0, 0.0], 0.6),
        Err(GalleryError::NonFinite { index: 1, .. })
    ));
}

#[test]
fn dimension_mismatch_on_open_and_enrol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    {
        let mut g = Gallery::create_or_open(&path, 128).unwrap();
        g.enroll("ann", &batch("ann", 2, 128)).unwrap();
        let e = g.enroll("ann", &batch("ann", 1, 64)).unwrap_err();
        assert!(
            matches!(
                e,
                GalleryError::BadEncoding {
                    expected: 128,
                    found: 64
                }
            ),
            "{e:?}"
        );
        assert_eq!(g.encodings("ann").unwrap().len(), 2);
    }
    let e = Gallery::create_or_open(&path, 64).unwrap_err();
    assert!(
        matches!(
            e,
            GalleryError::DimensionMismatch {
                gallery: 128,
                requested: 64,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("128"), "{e}");
    assert!(matches!(
        Gallery::create_or_open(&dir.path().join("zero.db"), 0),
        Err(GalleryError::ZeroDim { .. })
    ));
    assert!(!dir.path().join("zero.db").exists());
    // Open without a dimension takes the gallery's.
    assert_eq!(Gallery::open(&path).unwrap().dim(), 128);
}

fn assert_not_a_gallery(result: Result<Gallery, GalleryError>, what: &str) -> String {
    match result {
        Err(e @ GalleryError::NotAGallery { .. }) => e.to_string(),
        Err(other) => panic!("{what}: expected NotAGallery, got {other:?}"),
        Ok(_) => panic!("{what}: expected NotAGallery, got a gallery"),
    }
}

#[test]
fn foreign_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();

    // Random bytes.
    let random = dir.path().join("random.bin");
    let bytes: Vec<u8> = pseudo_encoding(7, 4096)
        .iter()
        .map(|v| (v * 127.0) as i8 as u8)
        .collect();
    std::fs::write(&random, &bytes).unwrap();
    assert_not_a_gallery(Gallery::open(&random), "random bytes");
    assert_not_a_gallery(Gallery::create_or_open(&random, 128), "random bytes");
    assert_eq!(std::fs::read(&random).unwrap(), bytes);

    // A JPEG (header of one, then data).
    let jpeg = dir.path().join("face.jpg");
    let mut jpeg_bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    jpeg_bytes.extend_from_slice(&bytes[..2000]);
    std::fs::write(&jpeg, &jpeg_bytes).unwrap();
    let msg = assert_not_a_gallery(Gallery::open(&jpeg), "jpeg");
    assert!(msg.contains("JPEG"), "{msg}");
    assert_not_a_gallery(Gallery::create_or_open(&jpeg, 128), "jpeg");
    assert_eq!(std::fs::read(&jpeg).unwrap(), jpeg_bytes);

    // A few bytes only.
    let short = dir.path().join("short");
    std::fs::write(&short, b"SQLite").unwrap();
    assert_not_a_gallery(Gallery::open(&short), "short file");
    assert_not_a_gallery(Gallery::create_or_open(&short, 128), "short file");
    assert_eq!(std::fs::read(&short).unwrap(), b"SQLite");

    // A folder.
    assert_not_a_gallery(Gallery::open(dir.path()), "folder");

    // Another program's SQLite database: refused by open and by create_or_open, unchanged.
    let foreign = dir.path().join("notes.sqlite");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO notes (body) VALUES ('hello'), ('world');",
        )
        .unwrap();
    }
    let before = std::fs::read(&foreign).unwrap();
    let msg = assert_not_a_gallery(Gallery::open(&foreign), "foreign sqlite");
    assert!(msg.contains("SQLite"), "{msg}");
    assert_not_a_gallery(Gallery::create_or_open(&foreign, 128), "foreign sqlite");
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        before,
        "foreign file changed"
    );
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tables, ["notes"]);
    }
    assert_eq!(std::fs::read(&foreign).unwrap(), before);

    // An SQLite database that is empty of tables but not new (one page written).
    let blank = dir.path().join("blank.sqlite");
    {
        let conn = rusqlite::Connection::open(&blank).unwrap();
        conn.execute_batch("PRAGMA user_version = 3;").unwrap();
    }
    let before = std::fs::read(&blank).unwrap();
    assert_not_a_gallery(Gallery::create_or_open(&blank, 128), "blank sqlite");
    assert_eq!(std::fs::read(&blank).unwrap(), before);

    // Another application id.
    let other_app = dir.path().join("other.sqlite");
    {
        let conn = rusqlite::Connection::open(&other_app).unwrap();
        conn.execute_batch("PRAGMA application_id = 42; CREATE TABLE people (x);")
            .unwrap();
    }
    let msg = assert_not_a_gallery(Gallery::open(&other_app), "other application id");
    assert!(msg.contains("0x2a"), "{msg}");

    // Our application id but not our tables.
    let fake = dir.path().join("fake.sqlite");
    {
        let conn = rusqlite::Connection::open(&fake).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1; \
             CREATE TABLE people (x);"
        ))
        .unwrap();
    }
    assert_not_a_gallery(Gallery::open(&fake), "fake gallery");

    // A gallery from a newer convnet (newer schema version).
    let newer = dir.path().join("newer.gallery");
    Gallery::create_or_open(&newer, 8)
        .unwrap()
        .enroll("x", &batch("x", 1, 8))
        .unwrap();
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))
            .unwrap();
    }
    let msg = assert_not_a_gallery(Gallery::open(&newer), "newer schema");
    assert!(msg.contains("newer"), "{msg}");
    assert_not_a_gallery(Gallery::create_or_open(&newer, 8), "newer schema");

    // An empty file is nobody's gallery (convnet never leaves one empty): opening and
    // creating refuse it alike, and leave it as it was.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let msg = assert_not_a_gallery(Gallery::open(&empty), "empty file");
    assert!(msg.contains("empty"), "{msg}");
    let msg = assert_not_a_gallery(Gallery::create_or_open(&empty, 8), "empty file");
    assert!(msg.contains("empty"), "{msg}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
    // A new path gets a whole gallery at once, and no temporary file stays behind.
    let fresh = dir.path().join("fresh.db");
    let mut g = Gallery::create_or_open(&fresh, 8).unwrap();
    g.enroll("y", &batch("y", 2, 8)).unwrap();
    drop(g);
    assert_eq!(names(&Gallery::open(&fresh).unwrap()), ["y"]);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".new")),
    );

    // Missing files and folders.
    let missing = dir.path().join("missing.db");
    assert!(matches!(
        Gallery::open(&missing),
        Err(GalleryError::Missing { .. })
    ));
    assert!(!missing.exists(), "open must not create a file");
    let e = Gallery::create_or_open(&dir.path().join("no/such/folder/g.db"), 8).unwrap_err();
    assert!(matches!(e, GalleryError::NoFolder { .. }), "{e:?}");
    assert!(e.to_string().contains("folder"), "{e}");
}

/// People enrolled by the concurrency test's writer: `p000`, `p001`... with `1 + i % 4`
/// encodings each; every tenth (`i % 10 == 9`) call also adds 3 to `p{i-5}`.
fn allowed_counts(name: &str) -> Vec<usize> {
    let i: usize = name[1..].parse().unwrap();
    let first = 1 + i % 4;
    if i % 10 == 4 {
        vec![first, first + 3]
    } else {
        vec![first]
    }
}

#[test]
fn readers_and_a_writer_at_once() {
    const DIM: usize = 16;
    const PEOPLE: usize = 120;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.gallery");
    drop(Gallery::create_or_open(&path, DIM).unwrap());
    let done = Arc::new(AtomicBool::new(false));

    let writer = {
        let path = path.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut g = Gallery::open(&path).unwrap();
            for i in 0..PEOPLE {
                let name = format!("p{i:03}");
                g.enroll(&name, &batch(&name, 1 + i % 4, DIM)).unwrap();
                if i % 10 == 9 {
                    let again = format!("p{:03}", i - 5);
                    g.enroll(&again, &batch(&format!("{again}+"), 3, DIM))
                        .unwrap();
                }
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let readers: Vec<_> = (0..2u64)
        .map(|r| {
            let path = path.clone();
            let done = done.clone();
            std::thread::spawn(move || {
                let g = Gallery::open(&path).unwrap();
                let mut last_len = 0;
                let mut rounds = 0;
                loop {
                    // Read the flag first, so the last round sees the final state.
                    let finished = done.load(Ordering::SeqCst);
                    let people = g.people().unwrap();
                    assert!(people.len() >= last_len, "people disappeared");
                    last_len = people.len();
                    for p in &people {
                        assert!(
                            allowed_counts(&p.name).contains(&p.encodings),
                            "reader {r} saw a partial enrolment: {p:?}"
                        );
                    }
                    let query = pseudo_encoding(r * 1000 + rounds, DIM);
                    let ranked = g.distances(&query).unwrap();
                    for d in &ranked {
                        assert!(d.distance.is_finite() && d.nearest <= d.distance + 1e-5);
                    }
                    g.identify(&query, 0.6).unwrap();
                    if let Some(p) = people.last() {
                        let n = g.encodings(&p.name).unwrap().len();
                        assert!(allowed_counts(&p.name).contains(&n));
                    }
                    rounds += 1;
                    if finished {
                        assert_eq!(people.len(), PEOPLE);
                        return rounds;
                    }
                }
            })
        })
        .collect();

    writer.join().expect("writer failed");
    for reader in readers {
        let rounds = reader.join().expect("reader failed");
        assert!(rounds >= 1);
    }
    let g = Gallery::open(&path).unwrap();
    let people = g.people().unwrap();
    assert_eq!(people.len(), PEOPLE);
    for p in &people {
        assert_eq!(
            p.encodings,
            *allowed_counts(&p.name).last().unwrap(),
            "{p:?}"
        );
    }
}

// ---- crash during enrol ----

const CRASH_PATH_ENV: &str = "CONVNET_GALLERY_CRASH_PATH";
const CRASH_ROUND_ENV: &str = "CONVNET_GALLERY_CRASH_ROUND";
const CRASH_DIM: usize = 128;
const CRASH_BATCH: usize = 500;
/// Kill rounds: at least the minimum, more (up to the maximum) until enough kills landed
/// while an `enroll` call was in flight.
const CRASH_ROUNDS: usize = 5;
const CRASH_MAX_ROUNDS: usize = 15;
const CRASH_IN_FLIGHT_KILLS: usize = 3;

/// The child side of `crash_during_enrol_never_corrupts`: enrols people forever, in large
/// batches, until killed. Does nothing unless run by that test.
#[test]
#[ignore = "helper run in a child process by crash_during_enrol_never_corrupts"]
fn crash_child() {
    let Ok(path) = std::env::var(CRASH_PATH_ENV) else {
        return;
    };
    let round = std::env::var(CRASH_ROUND_ENV).unwrap();
    let mut g = Gallery::open(Path::new(&path)).unwrap();
    for i in 0.. {
        let name = format!("r{round}-p{i:05}");
        let encodings = batch(&name, CRASH_BATCH, CRASH_DIM);
        // The parent reads these to tell whether the kill landed inside `enroll`, and which
        // enrolments `enroll` acknowledged (those must survive).
        eprintln!("begin {name}");
        let total = g.enroll(&name, &encodings).unwrap();
        eprintln!("end {name}");
        assert_eq!(total, CRASH_BATCH);
    }
}

fn check_after_crash(
    path: &Path,
    survivors: &BTreeSet<String>,
    acknowledged: &[String],
    round: usize,
) -> BTreeSet<String> {
    // The raw file first, before any of our code opens it.
    let conn = rusqlite::Connection::open(path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "round {round}: integrity_check");
    let orphans: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM encodings WHERE person_id NOT IN (SELECT id FROM people)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0, "round {round}: orphan encodings");
    drop(conn);

    let g = Gallery::open(path).unwrap();
    assert_eq!(g.dim(), CRASH_DIM);
    let people = g.people().unwrap();
    let present: BTreeSet<String> = people.iter().map(|p| p.name.clone()).collect();
    for p in &people {
        assert_eq!(
            p.encodings, CRASH_BATCH,
            "round {round}: partial enrolment of {}",
            p.name
        );
    }
    let missing: Vec<_> = survivors.difference(&present).collect();
    assert!(missing.is_empty(), "round {round}: lost {missing:?}");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|n| !present.contains(*n))
        .collect();
    assert!(
        lost.is_empty(),
        "round {round}: acknowledged but lost {lost:?}"
    );
    let this_round = present
        .iter()
        .filter(|n| n.starts_with(&format!("r{round}-")))
        .count();
    assert!(this_round >= 3, "round {round}: only {this_round} enrolled");
    // The newly committed people's values are exactly what was enrolled.
    for name in present.difference(survivors) {
        let expected: Vec<Vec<f32>> = batch(name, CRASH_BATCH, CRASH_DIM)
            .into_iter()
            .map(|(e, _)| e)
            .collect();
        assert!(
            g.encodings(name).unwrap() == expected,
            "round {round}: {name}'s encodings differ"
        );
    }
    // And one earlier person, still intact.
    if let Some(name) = survivors.iter().next() {
        assert_eq!(g.encodings(name).unwrap().len(), CRASH_BATCH);
        let ranked = g.distances(&batch(name, 1, CRASH_DIM)[0].0).unwrap();
        let own = ranked.iter().find(|d| &d.name == name).unwrap();
        assert_eq!(own.nearest, 0.0);
        assert_eq!(ranked.len(), present.len());
    }
    present
}

#[test]
fn crash_during_enrol_never_corrupts() {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("crash.gallery");
    drop(Gallery::create_or_open(&path, CRASH_DIM).unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut survivors = BTreeSet::new();

    let mut in_flight_kills = 0;
    let mut round = 0;
    while round < CRASH_ROUNDS
        || (in_flight_kills < CRASH_IN_FLIGHT_KILLS && round < CRASH_MAX_ROUNDS)
    {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CRASH_PATH_ENV, &path)
            .env(CRASH_ROUND_ENV, round.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();

        // Wait (with our own reader connection) until a few enrolments are committed.
        let reader = Gallery::open(&path).unwrap();
        let prefix = format!("r{round}-");
        let target = 3 + round % 3;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let committed = names(&reader)
                .iter()
                .filter(|n| n.starts_with(&prefix))
                .count();
            if committed >= target {
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                stderr.read_to_string(&mut err).unwrap();
                panic!("round {round}: the child exited ({status}) before the kill:\n{err}");
            }
            assert!(Instant::now() < deadline, "round {round}: child too slow");
            std::thread::sleep(Duration::from_millis(2));
        }
        drop(reader);
        // Land the kill at different points of an enrolment.
        std::thread::sleep(Duration::from_micros((round as u64 * 1_700) % 6_000));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "round {round}: the child was not killed");

        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        let mut acknowledged = Vec::new();
        let mut in_flight = false;
        for line in log.lines() {
            if let Some(name) = line.strip_prefix("end ") {
                acknowledged.push(name.to_string());
                in_flight = false;
            } else if line.starts_with("begin ") {
                in_flight = true;
            }
        }
        in_flight_kills += usize::from(in_flight);

        survivors = check_after_crash(&path, &survivors, &acknowledged, round);
        round += 1;
    }
    eprintln!("crash test: {round} kills, {in_flight_kills} of them inside enroll");
    assert!(
        in_flight_kills >= CRASH_IN_FLIGHT_KILLS,
        "only {in_flight_kills} of {round} kills landed inside enroll"
    );
    assert!(survivors.len() >= 3 * round);
    // The gallery is still writable after all this.
    let mut g = Gallery::open(&path).unwrap();
    assert_eq!(g.enroll("last", &batch("last", 2, CRASH_DIM)).unwrap(), 2);
}

/// A gallery holding a NaN (or infinite) encoding, written behind convnet's back, is refused
/// when opened, naming the person; NaN encodings are refused at enrolment.
#[test]
fn non_finite_rows_are_refused_at_open_and_enrol() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let mut g = Gallery::create_or_open(&path, 4).unwrap();
    g.enroll("ann", &batch("ann", 1, 4)).unwrap();
    let mut nan = vec![0.1f32; 4];
    nan[2] = f32::NAN;
    assert!(g.enroll("bob", &[(nan.clone(), "x".into())]).is_err());
    drop(g);
    let bytes: Vec<u8> = nan.iter().flat_map(|v| v.to_le_bytes()).collect();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE encodings SET encoding = ?1", [bytes])
        .unwrap();
    drop(conn);
    let err = Gallery::open(&path).unwrap_err().to_string();
    assert!(err.contains("\"ann\""), "{err}");
    assert!(err.contains("NaN"), "{err}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// Arbitrary bytes as a gallery file, alone or behind SQLite's signature, are opened or
    /// refused, never a panic.
    #[test]
    fn arbitrary_gallery_files_never_panic(
        sqlite in proptest::prelude::any::<bool>(),
        body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.db");
        let mut bytes = if sqlite { b"SQLite format 3\0".to_vec() } else { Vec::new() };
        bytes.extend(&body);
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(g) = Gallery::open(&path) {
            let _ = g.identify(&vec![0.1; g.dim()], 0.6);
        }
        let _ = Gallery::create_or_open(&path, 4);
    }
}
