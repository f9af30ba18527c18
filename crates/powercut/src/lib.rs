//! A FUSE file system that models a power cut: what was not fsynced is gone.
//!
//! SIGKILL does not model a dead battery, because the kernel still writes out what a killed
//! process wrote. This file system keeps every file and directory in memory twice: as the
//! processes see it now, and as it would be found after a power cut. Only `fsync`/`fdatasync`
//! of a file moves that file's bytes (and size) to the durable side, and only `fsync` of a
//! directory moves its entries (creations, renames, removals) there; `sync_file_range` never
//! reaches a FUSE file system, so it makes nothing durable, as on a real disk with a write
//! cache. [`PowerCut::cut`] unmounts, throws away everything that is not durable and mounts
//! the survivors again (fresh kernel caches).
//!
//! The model is the strict POSIX one: a file whose data was synced but whose directory entry
//! was not is lost; a file whose entry was synced but whose data was not comes back empty.
//! Real file systems are often kinder (ext4 orders some metadata), so code that survives this
//! survives them. [`PowerCut::fail_with`] makes every further write fail (EIO, ENOSPC), as a
//! dying SD card or a full disk does.
//!
//! Mounting needs `/dev/fuse` and root (or `fusermount3`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    TimeOrNow, WriteFlags,
};

/// Kernel caches are short-lived: the daemon is the truth, and a cut remounts anyway.
const TTL: Duration = Duration::from_secs(1);
const BLOCK: u64 = 4096;
/// What `statfs` reports as the disk's size: large enough for any test.
const CAPACITY: u64 = 64 << 30;

/// How writes fail after [`PowerCut::fail_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A dying card or a cable pulled: every write, sync, create, rename and removal fails with EIO.
    Io,
    /// A full disk: the same calls fail with ENOSPC and `statfs` reports no free space.
    Full,
}

impl Failure {
    fn errno(self) -> Errno {
        match self {
            Failure::Io => Errno::EIO,
            Failure::Full => Errno::from_i32(libc::ENOSPC),
        }
    }
}

/// Counts of what a cut threw away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose current bytes differed from their durable bytes.
    pub files_reverted: usize,
    /// Directories whose current entries differed from their durable entries.
    pub dirs_reverted: usize,
}

/// Why the file system could not be mounted or cut.
#[derive(Debug, thiserror::Error)]
pub enum PowerCutError {
    #[error(
        "cannot mount the power-cut file system at {path}: {source} (needs /dev/fuse and root)"
    )]
    Mount { path: PathBuf, source: io::Error },
    #[error("cannot unmount the power-cut file system at {path}: {source}")]
    Unmount { path: PathBuf, source: io::Error },
}

/// A mounted power-cut file system. Dropping it unmounts.
pub struct PowerCut {
    mountpoint: PathBuf,
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
}

impl PowerCut {
    /// Mounts an empty file system at `mountpoint` (an existing empty directory).
    pub fn mount(mountpoint: &Path) -> Result<PowerCut, PowerCutError> {
        let state = Arc::new(Mutex::new(State::new()));
        let session = spawn(mountpoint, &state)?;
        Ok(PowerCut {
            mountpoint: mountpoint.to_path_buf(),
            state,
            session: Some(session),
        })
    }

    /// The directory where the file system is mounted.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// Cuts the power: unmounts (no process may still have a file open there: kill them
    /// first), drops every byte and directory change that was not fsynced, clears any failure
    /// mode (a new boot) and mounts what survived.
    pub fn cut(&mut self) -> Result<CutReport, PowerCutError> {
        if let Some(session) = self.session.take() {
            unmount(&self.mountpoint, session).map_err(|source| PowerCutError::Unmount {
                path: self.mountpoint.clone(),
                source,
            })?;
        }
        let report = {
            let mut state = lock(&self.state);
            state.failure = None;
            state.cut()
        };
        self.session = Some(spawn(&self.mountpoint, &self.state)?);
        Ok(report)
    }

    /// From now on, every write fails as `failure` says (until [`PowerCut::heal`] or a cut).
    pub fn fail_with(&self, failure: Failure) {
        lock(&self.state).failure = Some(failure);
    }

    /// Writes work again.
    pub fn heal(&self) {
        lock(&self.state).failure = None;
    }

    /// How many `fsync`/`fdatasync`/`fsyncdir` calls reached the file system so far.
    pub fn syncs(&self) -> u64 {
        lock(&self.state).syncs
    }
}

impl Drop for PowerCut {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            let _ = unmount(&self.mountpoint, session);
        }
    }
}

/// Unmounts and waits for the session to end. A process that was just killed, or a library's
/// helper thread finishing its last close, can keep the mount busy for a moment after the test
/// let go of it: `EBUSY` is retried for up to five seconds before it is an error.
fn unmount(mountpoint: &Path, session: BackgroundSession) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path =
        std::ffi::CString::new(mountpoint.as_os_str().as_bytes()).map_err(io::Error::other)?;
    for _ in 0..500 {
        // SAFETY: `path` is a valid NUL-terminated string for the duration of the call.
        if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
            return session.join();
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EBUSY) => std::thread::sleep(Duration::from_millis(10)),
            // Not root: fuser goes through fusermount3.
            Some(libc::EPERM) => return session.umount_and_join(),
            _ => return Err(err),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EBUSY))
}

fn spawn(mountpoint: &Path, state: &Arc<Mutex<State>>) -> Result<BackgroundSession, PowerCutError> {
    let mut config = Config::default();
    config.mount_options = vec![
        MountOption::FSName("bianmin-powercut".into()),
        MountOption::RW,
    ];
    fuser::spawn_mount(
        Fs {
            state: Arc::clone(state),
        },
        mountpoint,
        &config,
    )
    .map_err(|source| PowerCutError::Mount {
        path: mountpoint.to_path_buf(),
        source,
    })
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic inside a FUSE callback must not wedge every later test step.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

enum Body {
    File {
        data: Vec<u8>,
        /// The bytes a power cut leaves; `None` if never synced (the file comes back empty).
        durable: Option<Vec<u8>>,
    },
    Dir {
        entries: BTreeMap<OsString, u64>,
        /// The entries a power cut leaves.
        durable: BTreeMap<OsString, u64>,
        parent: u64,
    },
}

struct Node {
    body: Body,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    ctime: SystemTime,
}

impl Node {
    fn attr(&self, ino: u64) -> FileAttr {
        let (kind, size, nlink) = match &self.body {
            Body::File { data, .. } => (FileType::RegularFile, data.len() as u64, 1),
            Body::Dir { .. } => (FileType::Directory, BLOCK, 2),
        };
        FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: self.mtime,
            mtime: self.mtime,
            ctime: self.ctime,
            crtime: self.ctime,
            kind,
            perm: self.perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: BLOCK as u32,
            flags: 0,
        }
    }
}

struct State {
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    /// Open handles: handle → (inode, opened with O_APPEND).
    handles: HashMap<u64, (u64, bool)>,
    next_fh: u64,
    failure: Option<Failure>,
    syncs: u64,
}

impl State {
    fn new() -> State {
        let now = SystemTime::now();
        let root = Node {
            body: Body::Dir {
                entries: BTreeMap::new(),
                durable: BTreeMap::new(),
                parent: 1,
            },
            perm: 0o755,
            uid: 0,
            gid: 0,
            mtime: now,
            ctime: now,
        };
        State {
            nodes: HashMap::from([(1, root)]),
            next_ino: 2,
            handles: HashMap::new(),
            next_fh: 1,
            failure: None,
            syncs: 0,
        }
    }

    fn check_writable(&self) -> Result<(), Errno> {
        match self.failure {
            Some(f) => Err(f.errno()),
            None => Ok(()),
        }
    }

    fn entries(&self, dir: u64) -> Result<&BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get(&dir).map(|n| &n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(Body::File { .. }) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn entries_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        match self.nodes.get_mut(&dir).map(|n| &mut n.body) {
            Some(Body::Dir { entries, .. }) => Ok(entries),
            Some(Body::File { .. }) => Err(Errno::ENOTDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.entries(parent)?
            .get(name)
            .copied()
            .ok_or(Errno::ENOENT)
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        self.nodes
            .get(&ino)
            .map(|n| n.attr(ino))
            .ok_or(Errno::ENOENT)
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut Vec<u8>, Errno> {
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File { data, .. }) => Ok(data),
            Some(Body::Dir { .. }) => Err(Errno::EISDIR),
            None => Err(Errno::ENOENT),
        }
    }

    fn add(
        &mut self,
        parent: u64,
        name: &OsStr,
        body: Body,
        perm: u16,
        req: &Request,
    ) -> Result<u64, Errno> {
        self.check_writable()?;
        if self.entries(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let now = SystemTime::now();
        self.nodes.insert(
            ino,
            Node {
                body,
                perm,
                uid: req.uid(),
                gid: req.gid(),
                mtime: now,
                ctime: now,
            },
        );
        self.entries_mut(parent)?.insert(name.to_os_string(), ino);
        Ok(ino)
    }

    fn sync(&mut self, ino: u64) -> Result<(), Errno> {
        self.check_writable()?;
        self.syncs += 1;
        match self.nodes.get_mut(&ino).map(|n| &mut n.body) {
            Some(Body::File { data, durable }) => *durable = Some(data.clone()),
            Some(Body::Dir {
                entries, durable, ..
            }) => *durable = entries.clone(),
            None => return Err(Errno::ENOENT),
        }
        Ok(())
    }

    /// Keeps only what is durable and reachable from the root through durable entries.
    fn cut(&mut self) -> CutReport {
        let mut report = CutReport::default();
        let mut keep = Vec::new();
        let mut stack = vec![1u64];
        while let Some(ino) = stack.pop() {
            keep.push(ino);
            if let Some(Body::Dir { durable, .. }) = self.nodes.get(&ino).map(|n| &n.body) {
                stack.extend(durable.values().copied());
            }
        }
        let mut survivors = HashMap::new();
        for ino in keep {
            let Some(mut node) = self.nodes.remove(&ino) else {
                continue;
            };
            match &mut node.body {
                Body::File { data, durable } => {
                    let after = durable.clone().unwrap_or_default();
                    if *data != after {
                        report.files_reverted += 1;
                    }
                    *data = after;
                }
                Body::Dir {
                    entries, durable, ..
                } => {
                    if entries != durable {
                        report.dirs_reverted += 1;
                    }
                    *entries = durable.clone();
                }
            }
            survivors.insert(ino, node);
        }
        // Parents follow the durable tree.
        let links: Vec<(u64, u64)> = survivors
            .iter()
            .filter_map(|(ino, n)| match &n.body {
                Body::Dir { entries, .. } => Some(entries.values().map(move |c| (*c, *ino))),
                Body::File { .. } => None,
            })
            .flatten()
            .collect();
        for (child, parent) in links {
            if let Some(Body::Dir { parent: p, .. }) =
                survivors.get_mut(&child).map(|n| &mut n.body)
            {
                *p = parent;
            }
        }
        self.nodes = survivors;
        self.handles.clear();
        report
    }
}

struct Fs {
    state: Arc<Mutex<State>>,
}

impl Fs {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn perm_of(mode: u32, umask: u32) -> u16 {
    ((mode & !umask) & 0o7777) as u16
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let state = self.state();
        match state.lookup(parent.0, name).and_then(|ino| state.attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.state().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut state = self.state();
        let result = (|| {
            if let Some(size) = size {
                state.check_writable()?;
                state.file_mut(ino.0)?.resize(size as usize, 0);
            }
            let node = state.nodes.get_mut(&ino.0).ok_or(Errno::ENOENT)?;
            if let Some(mode) = mode {
                node.perm = (mode & 0o7777) as u16;
            }
            if let Some(uid) = uid {
                node.uid = uid;
            }
            if let Some(gid) = gid {
                node.gid = gid;
            }
            node.mtime = match mtime {
                Some(TimeOrNow::SpecificTime(t)) => t,
                Some(TimeOrNow::Now) => SystemTime::now(),
                None if size.is_some() => SystemTime::now(),
                None => node.mtime,
            };
            node.ctime = SystemTime::now();
            state.attr(ino.0)
        })();
        match result {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut state = self.state();
        let body = Body::Dir {
            entries: BTreeMap::new(),
            durable: BTreeMap::new(),
            parent: parent.0,
        };
        match state
            .add(parent.0, name, body, perm_of(mode, umask), req)
            .and_then(|ino| state.attr(ino))
        {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let body = Body::File {
            data: Vec::new(),
            durable: None,
        };
        let result = state
            .add(parent.0, name, body, perm_of(mode, umask), req)
            .and_then(|ino| {
                let fh = state.next_fh;
                state.next_fh += 1;
                state.handles.insert(fh, (ino, flags & libc::O_APPEND != 0));
                Ok((state.attr(ino)?, fh))
            });
        match result {
            Ok((attr, fh)) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(fh),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = (|| {
            state.check_writable()?;
            let ino = state.lookup(parent.0, name)?;
            if matches!(
                state.nodes.get(&ino).map(|n| &n.body),
                Some(Body::Dir { .. })
            ) {
                return Err(Errno::EISDIR);
            }
            state.entries_mut(parent.0)?.remove(name);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let mut state = self.state();
        let result = (|| {
            state.check_writable()?;
            let ino = state.lookup(parent.0, name)?;
            if !state.entries(ino)?.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            state.entries_mut(parent.0)?.remove(name);
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let mut state = self.state();
        let result = (|| {
            state.check_writable()?;
            if flags.contains(RenameFlags::RENAME_EXCHANGE)
                || flags.contains(RenameFlags::RENAME_WHITEOUT)
            {
                return Err(Errno::EINVAL);
            }
            let ino = state.lookup(parent.0, name)?;
            if let Ok(existing) = state.lookup(newparent.0, newname) {
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    return Err(Errno::EEXIST);
                }
                if let Ok(entries) = state.entries(existing) {
                    if !entries.is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
            }
            state.entries_mut(parent.0)?.remove(name);
            state
                .entries_mut(newparent.0)?
                .insert(newname.to_os_string(), ino);
            if let Some(Body::Dir { parent: p, .. }) =
                state.nodes.get_mut(&ino).map(|n| &mut n.body)
            {
                *p = newparent.0;
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let mut state = self.state();
        if !state.nodes.contains_key(&ino.0) {
            return reply.error(Errno::ENOENT);
        }
        let fh = state.next_fh;
        state.next_fh += 1;
        state
            .handles
            .insert(fh, (ino.0, flags.0 & libc::O_APPEND != 0));
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let mut state = self.state();
        match state.file_mut(ino.0) {
            Ok(data) => {
                let start = (offset as usize).min(data.len());
                let end = start.saturating_add(size as usize).min(data.len());
                reply.data(&data[start..end]);
            }
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        bytes: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let mut state = self.state();
        let append = state.handles.get(&fh.0).is_some_and(|(_, a)| *a);
        let result = (|| {
            state.check_writable()?;
            let data = state.file_mut(ino.0)?;
            let at = if append { data.len() } else { offset as usize };
            let end = at.checked_add(bytes.len()).ok_or(Errno::EFBIG)?;
            if end > data.len() {
                data.resize(end, 0);
            }
            data[at..end].copy_from_slice(bytes);
            if let Some(node) = state.nodes.get_mut(&ino.0) {
                node.mtime = SystemTime::now();
            }
            Ok(())
        })();
        match result {
            Ok(()) => reply.written(bytes.len() as u32),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.state().handles.remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.state().sync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let state = self.state();
        let (entries, parent) = match state.nodes.get(&ino.0).map(|n| &n.body) {
            Some(Body::Dir {
                entries, parent, ..
            }) => (entries, *parent),
            Some(Body::File { .. }) => return reply.error(Errno::ENOTDIR),
            None => return reply.error(Errno::ENOENT),
        };
        let mut all = vec![
            (ino.0, FileType::Directory, OsString::from(".")),
            (parent, FileType::Directory, OsString::from("..")),
        ];
        for (name, child) in entries {
            let kind = match state.nodes.get(child).map(|n| &n.body) {
                Some(Body::Dir { .. }) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            all.push((*child, kind, name.clone()));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.state().sync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let state = self.state();
        let used: u64 = state
            .nodes
            .values()
            .map(|n| match &n.body {
                Body::File { data, .. } => (data.len() as u64).div_ceil(BLOCK),
                Body::Dir { .. } => 1,
            })
            .sum();
        let blocks = CAPACITY / BLOCK;
        let free = if state.failure == Some(Failure::Full) {
            0
        } else {
            blocks.saturating_sub(used)
        };
        reply.statfs(
            blocks,
            free,
            free,
            1 << 20,
            1 << 20,
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }
}
