import Glibc

/// Reads one short text field out of a `multipart/form-data` body (RFC 7578) without building the parts: the
/// proxy needs a transcription's `model` (its allowed-models check, an Azure deployment, the usage record)
/// and nothing else, and the file beside it may be megabytes. Malformed input gives nil, never a crash (it
/// is fuzzed).
public enum MultipartForm {
    /// The boundary of a `multipart/form-data` content type (`multipart/form-data; boundary=XyZ`, quoted or
    /// not); nil for any other type, or a boundary RFC 2046 does not allow (1–70 characters).
    public static func boundary(contentType: Substring) -> Substring? {
        let parts = contentType.split(separator: ";")
        guard let type = parts.first, type.trimmingOWS().lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() {
            let p = parameter.trimmingOWS()
            guard p.count > 9, p.prefix(9).lowercased() == "boundary=" else { continue }
            var value = p.dropFirst(9)
            if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
            guard (1...70).contains(value.utf8.count), !value.utf8.contains(where: { $0 < 0x20 || $0 > 0x7E }) else { return nil }
            return value
        }
        return nil
    }

    /// The value of the first part named `name` whose value is at most `maxValueBytes` long and valid UTF-8,
    /// or nil. Parts with a `filename` (files) are never read as values.
    public static func field(named name: String, in body: [UInt8], boundary: Substring, maxValueBytes: Int = 256) -> String? {
        let delimiter = Array("--".utf8) + Array(boundary.utf8)
        let partEnd = crlf + delimiter
        return body.withUnsafeBufferPointer { b -> String? in
            // The first delimiter opens the body (a preamble before it is allowed); each part ends at CRLF and
            // the next delimiter.
            guard var at = find(delimiter, in: b, from: 0, lineStart: true) else { return nil }
            while true {
                at += delimiter.count
                // `--` after a delimiter closes the body.
                if at + 1 < b.count, b[at] == 0x2D, b[at + 1] == 0x2D { return nil }
                guard let headersStart = find(crlf, in: b, from: at, lineStart: false).map({ $0 + 2 }) else { return nil }
                guard let headersEnd = find(blankLine, in: b, from: headersStart - 2, lineStart: false) else { return nil }
                let contentStart = headersEnd + 4
                let next = find(partEnd, in: b, from: contentStart, lineStart: false)
                let headers = String(decoding: UnsafeBufferPointer(rebasing: b[headersStart..<max(headersStart, headersEnd)]), as: UTF8.self)
                if partName(headers) == name, let end = next, end - contentStart <= maxValueBytes {
                    let value = UnsafeBufferPointer(rebasing: b[contentStart..<end])
                    if let text = String(validating: value, as: UTF8.self) { return text }
                }
                guard let end = next else { return nil }
                at = end + 2
            }
        }
    }

    /// The `name` of a part's `Content-Disposition: form-data; name="…"`, when it has no `filename`.
    static func partName(_ headers: String) -> String? {
        for line in headers.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":"), line[..<colon].trimmingOWS().lowercased() == "content-disposition" else { continue }
            var name: String?
            for parameter in line[line.index(after: colon)...].split(separator: ";").dropFirst() {
                let p = parameter.trimmingOWS()
                guard let eq = p.firstIndex(of: "=") else { continue }
                let key = p[..<eq].trimmingOWS().lowercased()
                var value = p[p.index(after: eq)...].trimmingOWS()
                if value.count >= 2, value.first == "\"", value.last == "\"" { value = value.dropFirst().dropLast() }
                if key == "filename" || key == "filename*" { return nil }
                if key == "name" { name = String(value) }
            }
            return name
        }
        return nil
    }

    private static let crlf = Array("\r\n".utf8)
    private static let blankLine = Array("\r\n\r\n".utf8)

    /// The first index at or after `from` where `needle` starts — with `lineStart`, only at the body's start or
    /// right after CR LF.
    private static func find(_ needle: [UInt8], in b: UnsafeBufferPointer<UInt8>, from: Int, lineStart: Bool) -> Int? {
        guard let base = b.baseAddress, !needle.isEmpty else { return nil }
        var i = max(0, from)
        while i + needle.count <= b.count {
            guard let p = memchr(base + i, Int32(needle[0]), b.count - needle.count + 1 - i) else { return nil }
            let at = base.distance(to: p.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + at, needle, needle.count) == 0, !lineStart || at == 0 || (at >= 2 && b[at - 2] == 0x0D && b[at - 1] == 0x0A) {
                return at
            }
            i = at + 1
        }
        return nil
    }
}
