//! Files and directories that are their owner's alone.
//!
//! A database given with `--db` may live in a directory others can write (the system
//! temp directory, say). Whatever another local user can create there before us — the
//! database, its `-wal` or `-shm`, the writer queue's directory and its files, lock
//! files — they could read (agents, tasks, tokens), hold (a turn nobody else gets),
//! forge (a reply granting one task to two agents) or point elsewhere (a symlink that
//! makes us write into any file we may write). So everything tasklease creates is
//! created here: directories `0700`, files `0600`, the mode set explicitly after
//! creation (a umask only ever removes bits, and an odd one could leave us without
//! our own access), files with `O_EXCL` and never through a symlink (`O_NOFOLLOW`).
//!
//! What already exists is checked, not trusted: it must not be a symlink, must be
//! owned by the user running tasklease, and must not be writable by group or others.
//! Anything else is refused with [`Error::Store`] (a runtime failure, exit 1) whose
//! message names the path, what is wrong, and the `chmod`/`chown` that fixes it. Reading
//! by others is left to the owner: it leaks, but cannot change what tasklease believes.
//!
//! Checks cost one `lstat` or `fstat` each, done on every open: a CLI call's budget is
//! a few milliseconds, and a check only at creation would trust whatever someone put
//! there since.
//!
//! Elsewhere than Unix there are no modes or owners to check, and these are plain
//! creates and opens.

use std::fs::File;
use std::io;
use std::path::Path;

use tasklease_core::{Error, Result};

/// The mode of every directory created here.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file created here.
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` as a directory of ours alone (its parent must exist), or checks the
/// one there. `what` names it in messages ("the writer queue's directory").
///
/// # Errors
/// [`Error::Store`] when it cannot be created, or exists but is a symlink, not a
/// directory, not ours, or writable by group or others (the message says how to fix
/// it).
pub fn dir(path: &Path, what: &str) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, DIR_MODE);
    match b.create(path) {
        Ok(()) => {
            #[cfg(unix)]
            set_mode(path, DIR_MODE).map_err(|e| {
                Error::store(format!("cannot set the mode of {}", path.display()), e)
            })?;
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(Error::store(
                format!("cannot create {what} {}", path.display()),
                e,
            ));
        }
    }
    check(path, what)?;
    Ok(())
}

/// Opens `path` for reading and writing, creating it as a file of ours alone if it
/// does not exist, never through a symlink; an existing one is checked as [`check`]
/// does, on the open file itself.
///
/// # Errors
/// [`Error::Store`] when it cannot be created or opened, or is not private (see
/// [`check`]). A missing parent directory is [`io::ErrorKind::NotFound`] inside it.
pub fn file(path: &Path, what: &str) -> Result<File> {
    open_file(path, what, false)
}

/// As [`file`], for a file inside a directory that is ours alone (checked by [`dir`]):
/// one that group or others may write is made ours alone (`chmod 600`) instead of
/// refused. Nobody else can reach it through that directory, and lock files made by
/// earlier versions followed the umask.
///
/// # Errors
/// As [`file`], but for the mode.
pub fn file_within(path: &Path, what: &str) -> Result<File> {
    open_file(path, what, true)
}

fn open_file(path: &Path, what: &str, repair: bool) -> Result<File> {
    let cannot = |e| Error::store(format!("cannot open {what} {}", path.display()), e);
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create_new(true);
    nofollow(&mut o);
    match o.open(path) {
        Ok(f) => {
            // Whatever the umask left, the mode is ours alone.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
                    .map_err(cannot)?;
            }
            Ok(f)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mut o = std::fs::OpenOptions::new();
            o.read(true).write(true);
            nofollow(&mut o);
            let f = o.open(path).map_err(|e| {
                if is_symlink(path) {
                    refusal(path, what, "is a symbolic link", remove_fix(path))
                } else {
                    cannot(e)
                }
            })?;
            let meta = f.metadata().map_err(cannot)?;
            #[cfg(unix)]
            if repair && !meta.file_type().is_symlink() && meta.is_file() {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                if meta.uid() == rustix::process::geteuid().as_raw() && meta.mode() & 0o022 != 0 {
                    f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))
                        .map_err(cannot)?;
                    return Ok(f);
                }
            }
            verify(path, what, &meta, false)?;
            Ok(f)
        }
        Err(e) => Err(cannot(e)),
    }
}

/// Checks what is at `path` without following a symlink: `Ok(false)` when nothing is;
/// `Ok(true)` when it is a file (or a directory) of the current user that group and
/// others cannot write.
///
/// # Errors
/// [`Error::Store`] when it is a symlink, not ours, or writable by group or others,
/// naming the fix; or when it cannot be looked at.
pub fn check(path: &Path, what: &str) -> Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let is_dir = meta.is_dir();
            verify(path, what, &meta, is_dir)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::store(
            format!("cannot look at {what} {}", path.display()),
            e,
        )),
    }
}

/// Opening options that refuse a symlink as the last component.
fn nofollow(o: &mut std::fs::OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(o, libc::O_NOFOLLOW);
    #[cfg(not(unix))]
    let _ = o;
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The checks themselves, on metadata read without following a symlink.
#[cfg(unix)]
fn verify(path: &Path, what: &str, meta: &std::fs::Metadata, want_dir: bool) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let kind = meta.file_type();
    if kind.is_symlink() {
        return Err(refusal(path, what, "is a symbolic link", remove_fix(path)));
    }
    if want_dir != kind.is_dir() || (!want_dir && !kind.is_file()) {
        let want = if want_dir {
            "a directory"
        } else {
            "a regular file"
        };
        return Err(refusal(
            path,
            what,
            &format!("is not {want}"),
            remove_fix(path),
        ));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refusal(
            path,
            what,
            &format!(
                "is owned by uid {}, not by you (uid {me}): its owner can change what \
                 tasklease reads and writes",
                meta.uid()
            ),
            format!(
                "if you trust its contents, take it over with `sudo chown {me} {p}` (and \
                 `chmod go-w {p}`); otherwise remove it: `sudo rm -r {p}`",
                p = quote(path)
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(refusal(
            path,
            what,
            &format!(
                "is writable by {} (mode {:o}): another local user could change what \
                 tasklease reads and writes",
                match meta.mode() & 0o022 {
                    0o020 => "its group",
                    0o002 => "others",
                    _ => "its group and others",
                },
                meta.mode() & 0o7777
            ),
            format!("make it yours alone with `chmod go-rwx {}`", quote(path)),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn verify(_: &Path, _: &str, _: &std::fs::Metadata, _: bool) -> Result<()> {
    Ok(())
}

fn remove_fix(path: &Path) -> String {
    format!(
        "remove it (`rm {}`) and let tasklease create it, or point --db at a \
         directory of your own",
        quote(path)
    )
}

/// A path quoted for a POSIX shell.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

fn refusal(path: &Path, what: &str, wrong: &str, fix: String) -> Error {
    Error::store(
        format!("refusing {what} {}: it {wrong}; {fix}", path.display()),
        io::Error::from(io::ErrorKind::PermissionDenied),
    )
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn created_private_and_refused_when_not() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        dir(&d, "the test directory").unwrap();
        assert_eq!(mode(&d), DIR_MODE);
        let f = d.join("f");
        file(&f, "the test file").unwrap();
        assert_eq!(mode(&f), FILE_MODE);
        // Opened again: checked, still fine.
        file(&f, "the test file").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = file(&f, "the test file").unwrap_err().to_string();
        assert!(
            e.contains("writable by its group and others") && e.contains("chmod go-rwx"),
            "{e}"
        );
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = dir(&d, "the test directory").unwrap_err().to_string();
        assert!(e.contains("chmod go-rwx"), "{e}");
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = file(&link, "the test file").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert!(
            check(&link, "x")
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!check(&tmp.path().join("none"), "x").unwrap());
        // Inside a directory of ours, a file of ours is made private instead.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        file_within(&f, "the test file").unwrap();
        assert_eq!(mode(&f), FILE_MODE);
    }
}
