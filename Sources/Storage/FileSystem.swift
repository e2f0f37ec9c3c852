import Glibc

/// `mkdir -p`.
func makeDirectories(_ path: String) throws {
    var current = path.hasPrefix("/") ? "/" : ""
    for part in path.split(separator: "/") {
        current += (current.isEmpty || current.hasSuffix("/") ? "" : "/") + part
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw StoreError(.unavailable, "cannot create directory \(current): \(String(cString: strerror(errno)))")
        }
    }
}

/// Reads a small file, or nil if it does not exist.
public func readSmallFile(_ path: String) throws -> String? {
    guard let f = fopen(path, "r") else {
        if errno == ENOENT { return nil }
        throw StoreError(.unavailable, "cannot read \(path): \(String(cString: strerror(errno)))")
    }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        bytes += buf[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Creates `path` with mode 0600 and writes `text`; fails if the file already exists.
public func writeNewPrivateFile(_ path: String, _ text: String) throws {
    if let slash = path.lastIndex(of: "/") {
        let dir = String(path[..<slash])
        if !dir.isEmpty { try makeDirectories(dir) }
    }
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw StoreError(.unavailable, "cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
        throw StoreError(.unavailable, "cannot write \(path): \(String(cString: strerror(errno)))")
    }
}

@discardableResult
public func unlinkIfExists(_ path: String) -> Bool { unlink(path) == 0 }

public func renameFile(_ from: String, _ to: String) throws {
    guard rename(from, to) == 0 else {
        throw StoreError(.unavailable, "cannot rename \(from) to \(to): \(String(cString: strerror(errno)))")
    }
}
