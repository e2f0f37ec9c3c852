/// Everything a store can report, with what a user needs to act on it.
public struct StoreError: Error, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, Equatable {
        /// A unique name (or key hash) already exists.
        case duplicate
        /// No object with that id.
        case notFound
        /// The change would break a reference (a connection still used by keys).
        case inUse
        /// Malformed input (URL, provider, limits).
        case invalid
        /// The store cannot be reached or failed mid-operation; retrying later may work.
        case unavailable
        /// Stored secrets do not open with this master key.
        case wrongMasterKey
        /// The database URL is not one we understand.
        case unsupportedURL
        /// The schema is newer than this binary.
        case schemaTooNew
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
