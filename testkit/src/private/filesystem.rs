//! A tmpfs of a few hundred kilobytes mounted on a temporary directory, to run a state
//! directory out of space on demand: [`SmallFilesystem::fill`] takes every free byte with a
//! filler file, [`SmallFilesystem::free`] removes it. Mounting needs root (or CAP_SYS_ADMIN);
//! [`SmallFilesystem::mount`] says so when it cannot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::run;

pub struct SmallFilesystem {
    dir: tempfile::TempDir,
}

impl SmallFilesystem {
    /// Mounts a tmpfs of `kib` KiB; `Err` says why it could not (not root, no mount).
    pub fn mount(kib: u64) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("mailfleet-smallfs-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "mount -t tmpfs failed (root needed): {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(SmallFilesystem { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes a filler file until the filesystem answers ENOSPC: nothing else can grow.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).expect("the filler file");
        let block = vec![0u8; 4096];
        loop {
            match file.write_all(&block) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.path().display()),
            }
        }
        // Part of the last block may have fit: go on byte by byte until truly full.
        while file.write_all(&[0u8]).is_ok() {}
    }

    /// Removes the filler file: the space is back.
    pub fn free(&self) {
        std::fs::remove_file(self.filler()).expect("the filler file is removed");
    }
}

impl Drop for SmallFilesystem {
    fn drop(&mut self) {
        // Lazy unmount: a process of the test that still holds a file open cannot keep the
        // mount point (and its temporary directory) from going.
        run(
            Command::new("umount").arg("-l").arg(self.dir.path()),
            "umount",
        );
    }
}
