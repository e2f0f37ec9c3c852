import FoundationEssentials

/// Writes exported usage records to standard output: JSON lines (keys sorted) or CSV (RFC 4180, a header
/// row first), a page at a time.
final class UsageExportWriter {
    static let columns = ["id", "vkey_id", "connection_id", "model", "prompt_tokens", "completion_tokens", "total_tokens", "estimated",
                          "status", "latency_ms", "stream", "started_at", "ended_at", "node_id"]
    private let csv: Bool
    private let encoder = JSONEncoder()
    private var wroteHeader = false

    init(csv: Bool) {
        self.csv = csv
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    /// Throws, writing nothing of the page, if a record cannot be encoded: an export never drops a row quietly.
    func write(_ records: [UsageRecordView]) throws {
        var out = ""
        if csv, !wroteHeader {
            out += Self.columns.joined(separator: ",") + "\r\n"
            wroteHeader = true
        }
        for r in records {
            if csv {
                let cells: [String] = [r.id, r.vkey_id, r.connection_id, r.model, String(r.prompt_tokens), String(r.completion_tokens),
                                       String(r.total_tokens), String(r.estimated), String(r.status), String(r.latency_ms), String(r.stream),
                                       r.started_at, r.ended_at, r.node_id]
                out += cells.map(Self.csvField).joined(separator: ",") + "\r\n"
            } else {
                out += String(decoding: try encoder.encode(r), as: UTF8.self) + "\n"
            }
        }
        print(out, terminator: "")
    }

    /// A CSV header even when nothing was selected.
    func finish() throws { if csv && !wroteHeader { try write([]) } }

    /// Quoted when it holds a comma, quote, CR or LF (quotes doubled); as it is otherwise.
    static func csvField(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else { return s }
        return "\"" + s.replacing("\"", with: "\"\"") + "\""
    }
}
