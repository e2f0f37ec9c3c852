import CHiredis

/// A Redis reply, copied out of hiredis' reply object.
public enum RESPValue: Sendable, Equatable, CustomStringConvertible {
    case simpleString(String)
    /// A server error reply (`-ERR …`): a value until the caller decides it is a failure.
    case error(String)
    case integer(Int64)
    case bulkString([UInt8])
    case array([RESPValue])
    case null

    /// Copies a `redisReply*` (hiredis frees the original).
    init(reply: UnsafeMutablePointer<redisReply>) {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STATUS: self = .simpleString(Self.text(r))
        case REDIS_REPLY_ERROR: self = .error(Self.text(r))
        case REDIS_REPLY_INTEGER: self = .integer(Int64(r.integer))
        case REDIS_REPLY_STRING: self = .bulkString(r.str == nil ? [] : Array(UnsafeRawBufferPointer(start: r.str, count: r.len)))
        case REDIS_REPLY_ARRAY:
            var items: [RESPValue] = []
            items.reserveCapacity(r.elements)
            for i in 0..<r.elements {
                if let e = r.element[i] { items.append(RESPValue(reply: e)) } else { items.append(.null) }
            }
            self = .array(items)
        default: self = .null
        }
    }

    private static func text(_ r: redisReply) -> String {
        r.str == nil ? "" : String(decoding: UnsafeRawBufferPointer(start: r.str, count: r.len), as: UTF8.self)
    }

    public var string: String? {
        switch self {
        case .simpleString(let s): s
        case .bulkString(let b): String(decoding: b, as: UTF8.self)
        case .integer(let i): String(i)
        default: nil
        }
    }

    public var int: Int64? {
        switch self {
        case .integer(let i): i
        case .bulkString, .simpleString: string.flatMap { Int64($0) }
        default: nil
        }
    }

    public var array: [RESPValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var errorMessage: String? {
        if case .error(let e) = self { return e }
        return nil
    }

    public var description: String {
        switch self {
        case .simpleString(let s): "+\(s)"
        case .error(let e): "-\(e)"
        case .integer(let i): ":\(i)"
        case .bulkString(let b): "\"\(String(decoding: b, as: UTF8.self))\""
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .null: "(nil)"
        }
    }
}

/// Encodes a command as a RESP array of bulk strings.
enum RESPEncoder {
    static func encode(_ args: [[UInt8]], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        out.append(contentsOf: String(args.count).utf8)
        out.append(contentsOf: [0x0D, 0x0A])
        for a in args {
            out.append(UInt8(ascii: "$"))
            out.append(contentsOf: String(a.count).utf8)
            out.append(contentsOf: [0x0D, 0x0A])
            out.append(contentsOf: a)
            out.append(contentsOf: [0x0D, 0x0A])
        }
    }
}

/// Owns one hiredis `redisReader*`: bytes in, replies out.
final class RESPReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() { reader = redisReaderCreate() }
    deinit { redisReaderFree(reader) }

    func feed(_ bytes: UnsafeRawBufferPointer) {
        bytes.withMemoryRebound(to: CChar.self) { p in _ = redisReaderFeed(reader, p.baseAddress, p.count) }
    }

    /// The next complete reply, nil if more bytes are needed; throws on a protocol error.
    func next() throws(RedisError) -> RESPValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw RedisError(.protocolError, "invalid reply from Redis: \(String(cString: llmp_reader_errstr(reader)))")
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RESPValue(reply: raw.assumingMemoryBound(to: redisReply.self))
    }
}
