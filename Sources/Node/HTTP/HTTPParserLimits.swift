/// Bounds the request parser enforces. Defaults suit an LLM gateway: prompts with images can be large.
public struct HTTPParserLimits: Sendable, Equatable {
    /// Bytes from the request line through the blank line ending the head (also bounds trailers).
    public var maxHeaderBytes: Int = 64 * 1024
    public var maxHeaderCount: Int = 128
    public var maxBodyBytes: Int = 32 * 1024 * 1024
    /// Longest chunk-size line, including extensions.
    public var maxChunkLineBytes: Int = 4096

    public init() {}
    public init(maxHeaderBytes: Int, maxHeaderCount: Int, maxBodyBytes: Int) {
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxBodyBytes = maxBodyBytes
    }
}

/// Why a request was refused; each maps to one status code. After any of these the connection closes.
public struct HTTPParseError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case badRequest          // 400
        case headersTooLarge     // 431
        case bodyTooLarge        // 413
        case versionNotSupported // 505
        case notImplemented      // 501
        case expectationFailed   // 417
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var status: Int {
        switch kind {
        case .badRequest: 400
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        case .versionNotSupported: 505
        case .notImplemented: 501
        case .expectationFailed: 417
        }
    }

    public var description: String { "\(status): \(message)" }
}
