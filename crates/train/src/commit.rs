//! The commit point of a run directory: a kill at any moment leaves the run's checkpoints,
//! history and curves as they were after one save, all of them together.
//!
//! Each save writes a whole new set — `last.ckpt`, `best.ckpt` (a hard link to the best
//! epoch's file), `history.csv`, `curves.png` — into a fresh directory `.commits/NNNNNNNN/`,
//! flushes it to disk, then renames a symbolic link `.commits/current` onto it: that one
//! rename is the commit. The paths users know (`checkpoints/last.ckpt`,
//! `checkpoints/best.ckpt`, `history.csv`, `curves.png`) are fixed links through `current`,
//! so each shows the same commit as the others. Sets no longer current are removed after.
//!
//! Runs written before this layout keep plain files at those paths; they load as before, and
//! the first commit into such a run replaces them by the links.

use std::path::{Path, PathBuf};

use crate::checkpoint::{BEST, CHECKPOINT_DIR, LAST};
use crate::error::TrainError;
use crate::fs::{sync_dir, write_atomically, write_error};
use crate::history::{EpochRecord, write_reports};

const COMMITS: &str = ".commits";
const CURRENT: &str = "current";
pub const HISTORY: &str = "history.csv";
pub const CURVES: &str = "curves.png";

/// Each file of a commit and where the run directory shows it (relative to the run).
const SHOWN: [(&str, &str); 4] = [
    (LAST, "checkpoints/last.ckpt"),
    (BEST, "checkpoints/best.ckpt"),
    (HISTORY, HISTORY),
    (CURVES, CURVES),
];

/// What one save writes.
pub(crate) struct Save<'a> {
    /// The checkpoint file's bytes.
    pub checkpoint: &'a [u8],
    /// The checkpoint is also the new best.
    pub improved: bool,
    /// The history to write; `None` when it has not changed since the last commit (a save
    /// inside an epoch).
    pub history: Option<&'a [EpochRecord]>,
}

type StepFn<'a> = dyn Fn() -> Result<(), TrainError> + 'a;

/// The steps of a commit, in order: a kill after any of them leaves a consistent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Step {
    WriteCheckpoint,
    LinkBest,
    WriteReports,
    Flush,
    /// The commit itself.
    SwitchCurrent,
    ShowLinks,
    RemoveOld,
}

/// Makes the links a run shows its files through (before the first commit they lead
/// nowhere, as a run with no epoch done has no files); plain files of an older run are left
/// until the first commit replaces them.
pub fn prepare(run_dir: &Path) -> Result<(), TrainError> {
    show_links(run_dir, false)
}

/// Commits `save` as the run's current state.
pub(crate) fn commit(run_dir: &Path, save: &Save<'_>) -> Result<(), TrainError> {
    commit_until(run_dir, save, Step::RemoveOld)
}

/// [`commit`] stopped after `last` (to test a kill at each step).
pub(crate) fn commit_until(run_dir: &Path, save: &Save<'_>, last: Step) -> Result<(), TrainError> {
    let root = run_dir.join(COMMITS);
    std::fs::create_dir_all(&root).map_err(write_error(&root))?;
    let name = format!("{:08}", current_number(&root).saturating_add(1));
    let dir = root.join(&name);
    // A set begun by a run killed before its commit.
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(write_error(&dir))?;
    }
    std::fs::create_dir(&dir).map_err(write_error(&dir))?;
    let steps: [(Step, &StepFn); 7] = [
        (Step::WriteCheckpoint, &|| {
            write_atomically(&dir.join(LAST), save.checkpoint)
        }),
        (Step::LinkBest, &|| link_best(run_dir, &dir, save.improved)),
        (Step::WriteReports, &|| match save.history {
            Some(history) => write_reports(&dir, history),
            None => keep_reports(run_dir, &dir),
        }),
        (Step::Flush, &|| flush(&dir)),
        (Step::SwitchCurrent, &|| switch_current(&root, &name)),
        (Step::ShowLinks, &|| show_links(run_dir, true)),
        (Step::RemoveOld, &|| remove_old(&root, &name)),
    ];
    for (step, run) in steps {
        run()?;
        if step == last {
            break;
        }
    }
    Ok(())
}

/// The number of the current set (0 when there is none).
fn current_number(root: &Path) -> u64 {
    std::fs::read_link(root.join(CURRENT))
        .ok()
        .and_then(|target| target.to_str().and_then(|t| t.parse().ok()))
        .unwrap_or(0)
}

/// The real file a run shows at `shown` (through the links), if there is one.
fn shown_file(run_dir: &Path, shown: &str) -> Option<PathBuf> {
    std::fs::canonicalize(run_dir.join(shown))
        .ok()
        .filter(|p| p.is_file())
}

/// A hard link (a copy where the file system has none) of `from` at `to`.
fn link_or_copy(from: &Path, to: &Path) -> Result<(), TrainError> {
    std::fs::hard_link(from, to)
        .or_else(|_| std::fs::copy(from, to).map(|_| ()))
        .map_err(write_error(to))
}

/// `best.ckpt` of the new set: this save's checkpoint, or the best committed so far.
fn link_best(run_dir: &Path, dir: &Path, improved: bool) -> Result<(), TrainError> {
    let from = if improved {
        Some(dir.join(LAST))
    } else {
        shown_file(run_dir, "checkpoints/best.ckpt")
    };
    match from {
        Some(from) => link_or_copy(&from, &dir.join(BEST)),
        None => Ok(()),
    }
}

/// The committed history and curves, carried into the new set unchanged.
fn keep_reports(run_dir: &Path, dir: &Path) -> Result<(), TrainError> {
    match (shown_file(run_dir, HISTORY), shown_file(run_dir, CURVES)) {
        (Some(history), Some(curves)) => {
            link_or_copy(&history, &dir.join(HISTORY))?;
            link_or_copy(&curves, &dir.join(CURVES))
        }
        _ => write_reports(dir, &[]),
    }
}

/// Every file of `dir`, and the directory itself, on disk before the commit names them.
fn flush(dir: &Path) -> Result<(), TrainError> {
    for entry in std::fs::read_dir(dir).map_err(write_error(dir))? {
        let path = entry.map_err(write_error(dir))?.path();
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(write_error(&path))?;
    }
    sync_dir(dir);
    Ok(())
}

/// Points `current` at the set `name`: the commit.
fn switch_current(root: &Path, name: &str) -> Result<(), TrainError> {
    replace_with_link(&root.join(CURRENT), Path::new(name))?;
    sync_dir(root);
    Ok(())
}

/// The links `checkpoints/last.ckpt` → `../.commits/current/last.ckpt` and the others;
/// `replace` also replaces what is there that is not the link (an older run's plain files).
fn show_links(run_dir: &Path, replace: bool) -> Result<(), TrainError> {
    for (file, shown) in SHOWN {
        let path = run_dir.join(shown);
        let up = if shown.contains('/') { "../" } else { "" };
        let target = PathBuf::from(format!("{up}{COMMITS}/{CURRENT}/{file}"));
        match std::fs::read_link(&path) {
            Ok(existing) if existing == target => continue,
            Err(_) if !replace && std::fs::symlink_metadata(&path).is_ok() => continue,
            _ => {}
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write_error(parent))?;
        }
        replace_with_link(&path, &target)?;
    }
    if replace {
        sync_dir(&run_dir.join(CHECKPOINT_DIR));
        sync_dir(run_dir);
    }
    Ok(())
}

/// Atomically makes `path` a symbolic link to `target`, whatever was there.
fn replace_with_link(path: &Path, target: &Path) -> Result<(), TrainError> {
    let io = write_error(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.link-tmp"));
    let _ = std::fs::remove_file(&tmp);
    symlink(target, &tmp).map_err(&io)?;
    std::fs::rename(&tmp, path).map_err(&io)
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

/// Removes every set but `keep` (and anything else left in `root` by a kill).
fn remove_old(root: &Path, keep: &str) -> Result<(), TrainError> {
    let entries = std::fs::read_dir(root).map_err(write_error(root))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == keep || name == CURRENT {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() && !path.is_symlink() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, meta_with_scores};

    /// The checkpoint after `epoch` epochs whose validation accuracies were `scores`, and
    /// whether its epoch is the best.
    fn checkpoint(scores: &[f64]) -> (Vec<u8>, bool) {
        let meta = meta_with_scores(scores);
        let improved = meta.best_epoch == Some(scores.len());
        let ckpt = Checkpoint {
            meta,
            model: vec![1, 2, 3],
            optimizer: None,
        };
        (ckpt.to_bytes().unwrap(), improved)
    }

    /// The history of a run whose validation accuracies were `scores`.
    fn history(scores: &[f64]) -> Vec<EpochRecord> {
        meta_with_scores(scores).history
    }

    /// The run as a reader sees it: last epoch, history rows, best epoch, and whether all
    /// agree (best.ckpt is the epoch last.ckpt names as best, with the score history shows).
    fn observed(run: &Path) -> (usize, usize, usize) {
        let last = Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
        let best = Checkpoint::load(&run.join("checkpoints/best.ckpt")).unwrap();
        let history = std::fs::read_to_string(run.join(HISTORY)).unwrap();
        let rows = history.lines().count() - 1;
        assert!(run.join(CURVES).is_file());
        assert_eq!(rows, last.meta.epoch, "history rows vs last epoch");
        assert_eq!(Some(best.meta.epoch), last.meta.best_epoch);
        assert_eq!(
            best.meta.history.last().and_then(|r| r.val_accuracy),
            last.meta.best_val_accuracy
        );
        (last.meta.epoch, rows, best.meta.epoch)
    }

    #[test]
    fn a_kill_after_any_step_leaves_the_run_consistent() {
        let scores = [0.5, 0.7, 0.6, 0.9];
        let steps = [
            Step::WriteCheckpoint,
            Step::LinkBest,
            Step::WriteReports,
            Step::Flush,
            Step::SwitchCurrent,
            Step::ShowLinks,
            Step::RemoveOld,
        ];
        for legacy in [false, true] {
            for stop in steps {
                let tmp = tempfile::tempdir().unwrap();
                let run = tmp.path();
                let save = |epochs: usize, last: Step| {
                    let (bytes, improved) = checkpoint(&scores[..epochs]);
                    let history = history(&scores[..epochs]);
                    let save = Save {
                        checkpoint: &bytes,
                        improved,
                        history: Some(&history),
                    };
                    commit_until(run, &save, last).unwrap();
                };
                if legacy {
                    // A run of the old layout: plain files, one epoch done.
                    let (bytes, _) = checkpoint(&scores[..1]);
                    std::fs::create_dir_all(run.join(CHECKPOINT_DIR)).unwrap();
                    std::fs::write(run.join("checkpoints/last.ckpt"), &bytes).unwrap();
                    std::fs::write(run.join("checkpoints/best.ckpt"), &bytes).unwrap();
                    write_reports(run, &history(&scores[..1])).unwrap();
                } else {
                    prepare(run).unwrap();
                    save(1, Step::RemoveOld);
                }
                for epochs in 2..=scores.len() {
                    save(epochs, stop);
                    let (epoch, _, _) = observed(run);
                    let committed = stop >= Step::SwitchCurrent;
                    // A legacy run shows its plain files until the links replace them.
                    let shown = committed && !(legacy && epochs == 2 && stop < Step::ShowLinks);
                    assert_eq!(epoch, if shown { epochs } else { epochs - 1 });
                    // What was killed is done again, to the end.
                    save(epochs, Step::RemoveOld);
                    assert_eq!(
                        observed(run),
                        (epochs, epochs, if epochs == 3 { 2 } else { epochs })
                    );
                }
                let sets = std::fs::read_dir(run.join(COMMITS)).unwrap().count();
                assert_eq!(sets, 2, "one set and the `current` link");
            }
        }
    }

    #[test]
    fn a_save_inside_an_epoch_keeps_the_best_and_the_history() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path();
        prepare(run).unwrap();
        let (first, _) = checkpoint(&[0.5]);
        let history = history(&[0.5]);
        commit(
            run,
            &Save {
                checkpoint: &first,
                improved: true,
                history: Some(&history),
            },
        )
        .unwrap();
        let mut within = Checkpoint::from_bytes(&first, run).unwrap();
        within.meta.steps_into_epoch = Some(3);
        within.meta.global_step += 3;
        let bytes = within.to_bytes().unwrap();
        commit(
            run,
            &Save {
                checkpoint: &bytes,
                improved: false,
                history: None,
            },
        )
        .unwrap();
        assert_eq!(observed(run), (1, 1, 1));
        let last = Checkpoint::load(&run.join("checkpoints/last.ckpt")).unwrap();
        assert_eq!(last.meta.steps_into_epoch, Some(3));
    }
}
