import FoundationEssentials
import Storage

/// `connection …`, `vkey …` and `usage`: the admin CLI on the store.
enum AdminCommands {
    static let output = OptionSpec("output", value: "format", env: "LLM_PROXY_OUTPUT", default: "table", help: "table or json.")

    static var all: [CommandSpec] { [connection, vkey, usage] }

    // MARK: Plumbing

    static let server = OptionSpec("server", value: "url", env: "LLM_PROXY_SERVER",
                                   help: "Run admin commands against this node's admin API instead of the store (needs --admin-key).")
    static let adminKey = OptionSpec("admin-key", value: "key", env: "LLM_PROXY_ADMIN_KEY", help: "The node's admin key (for --server).")

    /// Runs `body` with the store (`--database-url`) or, with `--server`, a node's admin API.
    static func withService(_ p: ParsedCommand, _ body: (any AdminBackend, OutputFormat) async throws -> Int32) async throws -> Int32 {
        let format = try OutputFormat.parse(p)
        if let server = p.string("server"), !server.isEmpty {
            guard server.hasPrefix("http://") || server.hasPrefix("https://") else {
                throw UsageError("--server expects an http:// or https:// URL, got \"\(server)\"", commandPath: p.path)
            }
            guard let key = p.string("admin-key"), !key.isEmpty else {
                throw UsageError("--server needs --admin-key (or LLM_PROXY_ADMIN_KEY)", commandPath: p.path)
            }
            return try await body(RemoteAdmin(baseURL: server, adminKey: key), format)
        }
        let opened = try await StoreAccess.open(p, poolSize: 1)
        let service = AdminService(store: opened.store, box: opened.box, actor: AuditActor("cli:\(currentUserName())"))
        do {
            let code = try await body(service, format)
            await opened.store.close()
            return code
        } catch {
            await opened.store.close()
            throw error
        }
    }

    static func limits(_ p: ParsedCommand) throws -> KeyLimits {
        var l = KeyLimits()
        l.tps = try p.double("tps", min: 0)
        l.burst = try p.double("burst", min: 0)
        l.tokensPerMinute = try p.int("tokens", min: 0).map(Int64.init)
        l.maxConcurrent = try p.int("max-concurrent", min: 0)
        if let e = p.string("expires") {
            guard let t = parseExpiry(e) else {
                throw UsageError("--expires expects a date (2026-12-31, 2026-12-31T12:00:00Z), a duration (30d, 12h) or never", commandPath: p.path)
            }
            l.expiresAt = t
        }
        if let m = p.string("models") {
            l.models = m.split(separator: ",").map { String($0).trimmingSpaces() }.filter { !$0.isEmpty }
        }
        return l
    }

    static let limitOptions = [
        OptionSpec("tps", value: "n", help: "Requests per second: a token bucket refilled at n/s (0 = unlimited; fractions such as 0.5 allowed)."),
        OptionSpec("burst", value: "n", help: "Requests the bucket holds, i.e. the largest burst (default max(1, tps))."),
        OptionSpec("tokens", value: "n", help: "Tokens per minute: a bucket of n refilled n/60 per second. Each request takes its estimate (prompt + max_tokens) up front; the difference is settled after the answer, possibly into debt that later requests wait out (0 = unlimited)."),
        OptionSpec("max-concurrent", value: "n", help: "In-flight requests at most (0 = unlimited)."),
        OptionSpec("expires", value: "when", help: "Expiry: a date, a duration from now (30d, 12h), or never."),
        OptionSpec("models", value: "a,b", help: "Models the key may use (empty = any)."),
    ]

    // MARK: connection

    static let connection = CommandSpec(
        name: "connection", summary: "Manage provider connections (the real provider keys, stored encrypted).",
        subcommands: [
            CommandSpec(name: "add", summary: "Add a connection.",
                        options: [OptionSpec("name", value: "name", help: "Unique name, e.g. OpenAI-Prod."),
                                  OptionSpec("provider", value: "p", help: "openai, azure or anthropic."),
                                  OptionSpec("endpoint", value: "url", help: "Base URL including the version prefix (default per provider)."),
                                  OptionSpec("api-key", value: "key", env: "LLM_PROXY_PROVIDER_API_KEY", help: "The provider's API key."),
                                  OptionSpec("api-version", value: "v", help: "Azure api-version (default 2024-10-21).")],
                        run: { p in
                            try await withService(p) { s, out in
                                let c = try await s.addConnection(name: try p.required("name"), provider: try p.required("provider"),
                                                                  endpoint: p.string("endpoint"), apiKey: try p.required("api-key"),
                                                                  apiVersion: p.string("api-version"))
                                out.print(c) { "created connection \($0.id) (\($0.name), \($0.provider), \($0.endpoint))" }
                                return 0
                            }
                        }),
            CommandSpec(name: "list", summary: "List connections.", run: { p in
                try await withService(p) { s, out in
                    let all = try await s.connections()
                    out.printTable(all, columns: ["ID", "NAME", "PROVIDER", "ENDPOINT"]) { [$0.id, $0.name, $0.provider, $0.endpoint] }
                    return 0
                }
            }),
            CommandSpec(name: "show", summary: "Show one connection.", positionals: [PositionalSpec("id", help: "Connection id.")], run: { p in
                try await withService(p) { s, out in
                    let c = try await s.connection(id: p.positionals[0])
                    out.print(c) { c in
                        "id: \(c.id)\nname: \(c.name)\nprovider: \(c.provider)\nendpoint: \(c.endpoint)\n"
                            + c.options.sorted(by: { $0.key < $1.key }).map { "\($0.key): \($0.value)\n" }.joined()
                            + "created: \(c.created_at)"
                    }
                    return 0
                }
            }),
            CommandSpec(name: "rm", summary: "Remove a connection (refused while keys use it, unless --force).",
                        options: [OptionSpec("force", help: "Also remove the virtual keys that use it.")],
                        positionals: [PositionalSpec("id", help: "Connection id.")], run: { p in
                try await withService(p) { s, out in
                    try await s.removeConnection(id: p.positionals[0], force: p.flag("force"))
                    out.print(["id": p.positionals[0], "deleted": "true"]) { _ in "removed connection \(p.positionals[0])" }
                    return 0
                }
            }),
        ])

    // MARK: vkey

    static let vkey = CommandSpec(
        name: "vkey", summary: "Manage virtual keys (what apps use instead of provider keys).",
        subcommands: [
            CommandSpec(name: "add", summary: "Create a virtual key; the key is shown once.",
                        options: [OptionSpec("name", value: "name", help: "Unique name, e.g. Intern-Key."),
                                  OptionSpec("conn-id", value: "id", help: "The connection it uses.")] + limitOptions,
                        run: { p in
                            try await withService(p) { s, out in
                                let (k, secret) = try await s.addKey(name: try p.required("name"), connectionID: try p.required("conn-id"), limits: try limits(p))
                                struct Created: Encodable { var id: String; var key: String; var name: String; var connection_id: String }
                                out.print(Created(id: k.id, key: secret, name: k.name, connection_id: k.connection_id)) { c in
                                    "created virtual key \(c.id) (\(c.name))\nkey: \(c.key)\nStore it now: it is not shown again."
                                }
                                return 0
                            }
                        }),
            CommandSpec(name: "list", summary: "List virtual keys.", run: { p in
                try await withService(p) { s, out in
                    let all = try await s.keys()
                    out.printTable(all, columns: ["ID", "NAME", "PREFIX", "CONNECTION", "TPS", "TOKENS/MIN", "STATE"]) {
                        [$0.id, $0.name, $0.key_prefix + "…", $0.connection_id, formatNumber($0.tps), String($0.tokens_per_minute), $0.disabled ? "disabled" : "active"]
                    }
                    return 0
                }
            }),
            CommandSpec(name: "show", summary: "Show a key's limits and usage.", positionals: [PositionalSpec("id", help: "Virtual key id.")], run: { p in
                try await withService(p) { s, out in
                    let k = try await s.key(id: p.positionals[0])
                    out.print(k) { k in
                        var text = "id: \(k.id)\nname: \(k.name)\nprefix: \(k.key_prefix)…\nconnection: \(k.connection_id)\n"
                        text += "tps: \(formatNumber(k.tps)) (burst \(formatNumber(k.burst)))\ntokens/min: \(k.tokens_per_minute)\n"
                        text += "max concurrent: \(k.max_concurrent)\nmodels: \(k.models.isEmpty ? "any" : k.models.joined(separator: ", "))\n"
                        text += "expires: \(k.expires_at ?? "never")\nstate: \(k.disabled ? "disabled" : "active")"
                        for u in k.usage ?? [] {
                            text += "\nusage \(u.model): \(u.requests) requests, \(u.prompt_tokens) prompt + \(u.completion_tokens) completion tokens"
                        }
                        return text
                    }
                    return 0
                }
            }),
            CommandSpec(name: "update", summary: "Change a key's limits, or disable/enable it.",
                        options: limitOptions + [OptionSpec("disable", help: "Stop the key working."), OptionSpec("enable", help: "Let the key work again.")],
                        positionals: [PositionalSpec("id", help: "Virtual key id.")], run: { p in
                var l = try limits(p)
                if p.flag("disable") && p.flag("enable") { throw UsageError("--disable and --enable contradict each other", commandPath: p.path) }
                if p.flag("disable") { l.disabled = true }
                if p.flag("enable") { l.disabled = false }
                guard l != KeyLimits() else { throw UsageError("nothing to change: give a limit flag, --disable or --enable", commandPath: p.path) }
                return try await withService(p) { s, out in
                    let k = try await s.updateKey(id: p.positionals[0], limits: l)
                    out.print(k) { "updated virtual key \($0.id)" }
                    return 0
                }
            }),
            CommandSpec(name: "rm", summary: "Remove a virtual key.", positionals: [PositionalSpec("id", help: "Virtual key id.")], run: { p in
                try await withService(p) { s, out in
                    try await s.removeKey(id: p.positionals[0])
                    out.print(["id": p.positionals[0], "deleted": "true"]) { _ in "removed virtual key \(p.positionals[0])" }
                    return 0
                }
            }),
        ])

    // MARK: usage

    static let usage = CommandSpec(
        name: "usage", summary: "Requests and tokens per key and model.",
        discussion: "Nodes delete records older than their --usage-retention (90d by default); 'usage prune' deletes older ones now.",
        options: usageFilters,
        subcommands: [usageExport, usagePrune],
        run: { p in
            let q = try usageQuery(p)
            return try await withService(p) { s, out in
                let rows = try await s.usage(q)
                out.printTable(rows, columns: ["VKEY", "MODEL", "REQUESTS", "PROMPT", "COMPLETION", "TOTAL"]) {
                    [$0.vkey_id, $0.model, String($0.requests), String($0.prompt_tokens), String($0.completion_tokens), String($0.total_tokens)]
                }
                return 0
            }
        })
}

extension AdminCommands {
    static let usageFilters = [OptionSpec("vkey", value: "id", help: "Only this virtual key."),
                               OptionSpec("since", value: "when", help: "From this time (a date, or a duration ago such as 24h or 7d)."),
                               OptionSpec("until", value: "when", help: "Up to this time (exclusive).")]

    /// `--vkey`, `--since`, `--until`.
    static func usageQuery(_ p: ParsedCommand) throws -> UsageQuery {
        try UsageQuery.parsing(vkey: p.string("vkey"), since: p.string("since"), until: p.string("until")) { name in
            UsageError("--\(name) expects a date (2026-12-31, 2026-12-31T12:00:00Z) or a duration ago (24h, 7d)", commandPath: p.path)
        }
    }

    static let usageExport = CommandSpec(
        name: "export", summary: "Write every usage record selected, oldest first, as JSON lines or CSV.",
        discussion: "Reads in pages of 5000 (keyset paging: nothing is skipped or repeated while nodes write). Export before records pass the nodes' --usage-retention.",
        options: usageFilters + [OptionSpec("format", value: "format", default: "jsonl", help: "jsonl (one JSON object per line) or csv.")],
        run: { p in
            let q = try usageQuery(p)
            let format = p.string("format") ?? "jsonl"
            guard format == "jsonl" || format == "csv" else {
                throw UsageError("--format expects jsonl or csv, got \"\(format)\"", commandPath: p.path)
            }
            return try await withService(p) { s, _ in
                let writer = UsageExportWriter(csv: format == "csv")
                var after: UsageCursor?
                repeat {
                    let page = try await s.usageRecords(q, after: after, limit: 5000)
                    try writer.write(page.records)
                    after = page.next.flatMap { UsageCursor(text: $0) }
                } while after != nil
                try writer.finish()
                return 0
            }
        })

    static let usagePrune = CommandSpec(
        name: "prune", summary: "Delete every key's usage records that started before a time.",
        discussion: "Deletes in batches of 5000 records, one short transaction each, so nodes keep writing usage meanwhile. Audited.",
        options: [OptionSpec("before", value: "when", help: "Delete records that started before this: a date (2026-01-31, RFC 3339) or a duration ago (90d, 12h).")],
        run: { p in
            let text = try p.required("before")
            guard let before = parseTime(text, future: false) else {
                throw UsageError("--before expects a date (2026-01-31, 2026-01-31T12:00:00Z) or a duration ago (90d, 12h), got \"\(text)\"", commandPath: p.path)
            }
            return try await withService(p) { s, out in
                let result = try await s.pruneUsage(before: before)
                out.print(result) { "deleted \($0.deleted) usage record(s) that started before \($0.before)" }
                return 0
            }
        })
}

/// `--output table|json`.
enum OutputFormat {
    case table, json

    static func parse(_ p: ParsedCommand) throws -> OutputFormat {
        switch p.string("output") ?? "table" {
        case "table": .table
        case "json": .json
        case let other: throw UsageError("--output expects table or json, got \"\(other)\"", commandPath: p.path)
        }
    }

    func print<T: Encodable>(_ value: T, text: (T) -> String) {
        switch self {
        case .json: Swift.print(jsonText(value))
        case .table: Swift.print(text(value))
        }
    }

    func printTable<T: Encodable>(_ rows: [T], columns: [String], cells: (T) -> [String]) {
        switch self {
        case .json:
            Swift.print(jsonText(rows))
        case .table:
            let body = rows.map(cells)
            var widths = columns.map(\.count)
            for r in body { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
            func line(_ cells: [String]) -> String {
                cells.enumerated().map { i, c in i == cells.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                    .joined(separator: "  ")
            }
            Swift.print(line(columns))
            for r in body { Swift.print(line(r)) }
            if body.isEmpty { Swift.print("(none)") }
        }
    }

    private func jsonText<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "null"
    }
}

func formatNumber(_ d: Double) -> String {
    d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
}

/// A date (`2026-12-31`, RFC 3339) or a duration (`30d`, `12h`, `90m`, `45s`) from now: ahead when
/// `future`, ago otherwise. Unix milliseconds.
func parseTime(_ text: String, future: Bool) -> Int64? {
    let units: [(String, Double)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
    for (u, ms) in units where text.hasSuffix(u) && !text.contains("-") {
        // At most about 3000 years either way: anything larger is a mistake, and would overflow.
        guard let n = Double(text.dropLast()), n >= 0, n.isFinite, n * ms < 1e14 else { return nil }
        let delta = Int64(n * ms)
        return future ? nowMillis() + delta : nowMillis() - delta
    }
    let full = text.count == 10 ? text + "T00:00:00Z" : text
    let styles: [Date.ISO8601FormatStyle] = [.iso8601, Date.ISO8601FormatStyle(includingFractionalSeconds: true)]
    for style in styles {
        if let date = try? Date(full, strategy: style) { return Int64(date.timeIntervalSince1970 * 1000) }
        if let date = try? Date(full.uppercased(), strategy: style) { return Int64(date.timeIntervalSince1970 * 1000) }
    }
    return nil
}

func currentUserName() -> String {
    processEnvironment()["USER"] ?? "unknown"
}
