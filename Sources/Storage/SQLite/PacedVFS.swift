import CSQLite
import Glibc

/// A VFS over SQLite's default one (`unix`) whose reads, writes and syncs are pace points
/// (`WritePacing.driverPoint()`), so a paced usage write also pauses inside what no statement boundary splits:
/// a COMMIT writing its pages to the WAL (~100 `pwrite`s for a 500-row batch) and the checkpoint that
/// follows it (~200 page reads and writes, two `fdatasync`s), which held a shared core for 0.3–1 ms in one
/// go (`perf sched timehist`: the writer's runs over 0.8 ms, 18–20 a second under load, nearly all ending
/// in the checkpoint's `fdatasync`). Everything else is the default VFS's: the same files, locks and
/// shared memory, so other processes (the admin CLI, the sqlite3 shell) use the database as before.
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
            real.pointee.pMethods = nil
            let rc = wrapped.pointee.xOpen(wrapped, zName, real, flags, outFlags)
            guard rc == SQLITE_OK, real.pointee.pMethods != nil else {
                // SQLite wants no methods on a file whose open failed; a VFS that left some on its own
                // file wants that file closed all the same.
                if let close = real.pointee.pMethods?.pointee.xClose { _ = close(real) }
                paced.pointee.base.pMethods = nil
                return rc == SQLITE_OK ? SQLITE_CANTOPEN : rc
            }
            paced.pointee.base.pMethods = PacedVFS.pacedMethods
            return rc
        }
        return sqlite3_vfs_register(vfs, 0) == SQLITE_OK
    }()

    nonisolated(unsafe) private static var wrapped: UnsafeMutablePointer<sqlite3_vfs>?
    nonisolated(unsafe) private static var pacedMethods: UnsafePointer<sqlite3_io_methods>?

    private static func real(_ file: UnsafeMutablePointer<sqlite3_file>?) -> UnsafeMutablePointer<sqlite3_file> {
        UnsafeMutableRawPointer(file!).assumingMemoryBound(to: llmp_paced_file.self).pointee.real
    }

    private static func methods(_ real: UnsafeMutablePointer<sqlite3_file>) -> sqlite3_io_methods {
        real.pointee.pMethods.pointee
    }

    /// Every method forwards to the real file's; reads, writes and syncs first pass a pace point.
    private static func ioMethods() -> sqlite3_io_methods {
        var m = sqlite3_io_methods()
        m.iVersion = 3
        m.xClose = { f in let r = PacedVFS.real(f); return PacedVFS.methods(r).xClose(r) }
        m.xRead = { f, buf, n, off in
            WritePacing.driverPoint()
            let r = PacedVFS.real(f); return PacedVFS.methods(r).xRead(r, buf, n, off)
        }
        m.xWrite = { f, buf, n, off in
            WritePacing.driverPoint()
            let r = PacedVFS.real(f); return PacedVFS.methods(r).xWrite(r, buf, n, off)
        }
        m.xTruncate = { f, size in let r = PacedVFS.real(f); return PacedVFS.methods(r).xTruncate(r, size) }
        m.xSync = { f, flags in
            WritePacing.driverPoint()
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
