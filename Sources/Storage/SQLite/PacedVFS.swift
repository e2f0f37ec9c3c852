import CSQLite
import Glibc

/// A VFS over SQLite's default one (`unix`) that lets a paced usage write (`WritePacing`) pause inside
/// what no statement step covers, each of which held a shared core for 0.3–1 ms in one go:
/// - reads, writes and syncs are pace points (`WritePacing.point()`): a COMMIT writing its pages to the
///   WAL (~100 `pwrite`s for a 500-row batch) and the checkpoint that follows it (~200 page reads and
///   writes) pause between them;
/// - the kernel's write-out of the database and the WAL starts every `writebackBytes` written
///   (`sync_file_range`), between pace points, so the checkpoint's `fdatasync`s mostly wait rather than
///   submit ~1 MB of pages at once — the longest runs the writer had on a shared core.
/// Everything else is the default VFS's: the same files, locks and shared memory, so other processes
/// (the admin CLI) use the database as before, and the durability is the same (the syncs still run).
enum PacedVFS {
    static let name = "llmp-paced"

    /// Registers the VFS once (not as the default); false if SQLite has no default VFS to wrap.
    static let registered: Bool = {
        guard let real = sqlite3_vfs_find(nil) else { return false }
        wrapped = real
        let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
        methods.initialize(to: ioMethods())
        pacedMethods = UnsafePointer(methods)
        // A copy of the default VFS: its other entry points (delete, access, full path name, time…) take
        // the VFS only for its settings, which the copy keeps. Only files differ: each is ours, with the
        // real one after it.
        let vfs = UnsafeMutablePointer<sqlite3_vfs>.allocate(capacity: 1)
        vfs.initialize(to: real.pointee)
        vfs.pointee.zName = UnsafePointer(strdup(name))
        vfs.pointee.szOsFile = Int32(MemoryLayout<llmp_paced_file>.stride) + real.pointee.szOsFile
        vfs.pointee.pNext = nil
        vfs.pointee.xOpen = { _, zName, file, flags, outFlags in
            guard let file, let wrapped = PacedVFS.wrapped else { return SQLITE_CANTOPEN }
            let paced = UnsafeMutableRawPointer(file).assumingMemoryBound(to: llmp_paced_file.self)
            let real = (UnsafeMutableRawPointer(file) + MemoryLayout<llmp_paced_file>.stride).assumingMemoryBound(to: sqlite3_file.self)
            paced.pointee.real = real
            paced.pointee.writeback_fd = -1
            paced.pointee.written_bytes = 0
            let rc = wrapped.pointee.xOpen(wrapped, zName, real, flags, outFlags)
            if rc == SQLITE_OK, let zName, flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL) != 0 {
                // A descriptor of its own for `sync_file_range` (any descriptor of the file reaches its pages).
                paced.pointee.writeback_fd = open(zName, O_RDONLY | O_CLOEXEC)
            }
            // SQLite calls no method of a file whose open failed, and only xClose of one that opened.
            paced.pointee.base.pMethods = rc == SQLITE_OK && real.pointee.pMethods != nil ? PacedVFS.pacedMethods : nil
            return rc
        }
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()

    /// Bytes written to a file after which its write-out starts (64 pages of 4 KiB).
    static let writebackBytes: Int64 = 256 * 1024

    nonisolated(unsafe) private static var wrapped: UnsafeMutablePointer<sqlite3_vfs>?
    nonisolated(unsafe) private static var pacedMethods: UnsafePointer<sqlite3_io_methods>?

    private static func paced(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<llmp_paced_file> {
        UnsafeMutableRawPointer(file!).assumingMemoryBound(to: llmp_paced_file.self)
    }

    private static func real(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<sqlite3_file> {
        paced(file).pointee.real
    }

    /// Notes a write; starts the write-out of what was written once it reaches `writebackBytes`.
    private static func wrote(_ f: UnsafeMutablePointer<llmp_paced_file>, at offset: Int64, count: Int64) {
        guard f.pointee.writeback_fd >= 0 else { return }
        if f.pointee.written_bytes == 0 {
            f.pointee.written_from = offset
            f.pointee.written_to = offset + count
        } else {
            f.pointee.written_from = min(f.pointee.written_from, offset)
            f.pointee.written_to = max(f.pointee.written_to, offset + count)
        }
        f.pointee.written_bytes += count
        if f.pointee.written_bytes >= writebackBytes { startWriteback(f) }
    }

    /// Starts the kernel's write-out of the span written since the last start (no wait: a later sync
    /// waits for it). Best effort: a failure leaves the work to the sync, as without this VFS.
    private static func startWriteback(_ f: UnsafeMutablePointer<llmp_paced_file>) {
        guard f.pointee.writeback_fd >= 0, f.pointee.written_bytes > 0 else { return }
        _ = sync_file_range(
            f.pointee.writeback_fd, Int(f.pointee.written_from), Int(f.pointee.written_to - f.pointee.written_from),
            UInt32(LLMP_SYNC_FILE_RANGE_WRITE))
        f.pointee.written_bytes = 0
    }

    private static func methods(_ real: UnsafeMutablePointer<sqlite3_file>) -> sqlite3_io_methods {
        real.pointee.pMethods.pointee
    }

    /// Every method forwards to the real file's; reads, writes and syncs first pass a pace point.
    private static func ioMethods() -> sqlite3_io_methods {
        var m = sqlite3_io_methods()
        m.iVersion = 3
        m.xClose = { f in
            let p = PacedVFS.paced(f)
            if p.pointee.writeback_fd >= 0 { close(p.pointee.writeback_fd) }
            let r = p.pointee.real!
            return PacedVFS.methods(r).xClose(r)
        }
        m.xRead = { f, buf, n, off in
            WritePacing.point()
            let r = PacedVFS.real(f); return PacedVFS.methods(r).xRead(r, buf, n, off)
        }
        m.xWrite = { f, buf, n, off in
            WritePacing.point()
            let r = PacedVFS.real(f)
            let rc = PacedVFS.methods(r).xWrite(r, buf, n, off)
            if rc == SQLITE_OK { PacedVFS.wrote(PacedVFS.paced(f), at: off, count: Int64(n)) }
            return rc
        }
        m.xTruncate = { f, size in let r = PacedVFS.real(f); return PacedVFS.methods(r).xTruncate(r, size) }
        m.xSync = { f, flags in
            PacedVFS.startWriteback(PacedVFS.paced(f))
            WritePacing.point()
            let r = PacedVFS.real(f); return PacedVFS.methods(r).xSync(r, flags)
        }
        m.xFileSize = { f, size in let r = PacedVFS.real(f); return PacedVFS.methods(r).xFileSize(r, size) }
        m.xLock = { f, lock in let r = PacedVFS.real(f); return PacedVFS.methods(r).xLock(r, lock) }
        m.xUnlock = { f, lock in let r = PacedVFS.real(f); return PacedVFS.methods(r).xUnlock(r, lock) }
        m.xCheckReservedLock = { f, out in let r = PacedVFS.real(f); return PacedVFS.methods(r).xCheckReservedLock(r, out) }
        m.xFileControl = { f, op, arg in let r = PacedVFS.real(f); return PacedVFS.methods(r).xFileControl(r, op, arg) }
        m.xSectorSize = { f in let r = PacedVFS.real(f); return PacedVFS.methods(r).xSectorSize(r) }
        m.xDeviceCharacteristics = { f in let r = PacedVFS.real(f); return PacedVFS.methods(r).xDeviceCharacteristics(r) }
        // Version 2 (shared memory for the WAL index) and 3 (memory-mapped pages): forwarded when the real
        // file has them; SQLite checks the version before calling them.
        m.xShmMap = { f, region, size, extend, out in
            let r = PacedVFS.real(f)
            guard PacedVFS.methods(r).iVersion >= 2, let call = PacedVFS.methods(r).xShmMap else { return SQLITE_IOERR }
            return call(r, region, size, extend, out)
        }
        m.xShmLock = { f, offset, n, flags in
            let r = PacedVFS.real(f)
            guard PacedVFS.methods(r).iVersion >= 2, let call = PacedVFS.methods(r).xShmLock else { return SQLITE_IOERR }
            return call(r, offset, n, flags)
        }
        m.xShmBarrier = { f in
            let r = PacedVFS.real(f)
            if PacedVFS.methods(r).iVersion >= 2, let call = PacedVFS.methods(r).xShmBarrier { call(r) }
        }
        m.xShmUnmap = { f, delete in
            let r = PacedVFS.real(f)
            guard PacedVFS.methods(r).iVersion >= 2, let call = PacedVFS.methods(r).xShmUnmap else { return SQLITE_OK }
            return call(r, delete)
        }
        m.xFetch = { f, off, n, out in
            let r = PacedVFS.real(f)
            guard PacedVFS.methods(r).iVersion >= 3, let call = PacedVFS.methods(r).xFetch else { out?.pointee = nil; return SQLITE_OK }
            return call(r, off, n, out)
        }
        m.xUnfetch = { f, off, p in
            let r = PacedVFS.real(f)
            guard PacedVFS.methods(r).iVersion >= 3, let call = PacedVFS.methods(r).xUnfetch else { return SQLITE_OK }
            return call(r, off, p)
        }
        return m
    }
}
