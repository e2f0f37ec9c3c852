import Glibc

/// A named option. Without `valueName` it is a boolean flag.
public struct OptionSpec: Sendable {
    public var name: String
    public var valueName: String?
    public var env: String?
    public var defaultValue: String?
    public var help: String

    public init(_ name: String, value valueName: String? = nil, env: String? = nil, default defaultValue: String? = nil, help: String) {
        self.name = name
        self.valueName = valueName
        self.env = env
        self.defaultValue = defaultValue
        self.help = help
    }

    public var isFlag: Bool { valueName == nil }
}

public struct PositionalSpec: Sendable {
    public var name: String
    public var help: String
    public init(_ name: String, help: String) {
        self.name = name
        self.help = help
    }
}

/// A command in the shape of swift-argument-parser: options, positionals, subcommands, and a `run`.
/// Options of every command on the path (root included) are accepted anywhere after it, so global
/// options work before or after the subcommand.
public struct CommandSpec: Sendable {
    public typealias Run = @Sendable (ParsedCommand) async throws -> Int32

    public var name: String
    public var summary: String
    public var discussion: String?
    public var options: [OptionSpec]
    public var positionals: [PositionalSpec]
    public var subcommands: [CommandSpec]
    public var run: Run?

    public init(name: String, summary: String, discussion: String? = nil, options: [OptionSpec] = [],
                positionals: [PositionalSpec] = [], subcommands: [CommandSpec] = [], run: Run? = nil) {
        self.name = name
        self.summary = summary
        self.discussion = discussion
        self.options = options
        self.positionals = positionals
        self.subcommands = subcommands
        self.run = run
    }
}

/// A command-line mistake: printed with a hint and exit code 2.
public struct UsageError: Error, CustomStringConvertible {
    public var message: String
    public var commandPath: [String]
    public init(_ message: String, commandPath: [String] = []) {
        self.message = message
        self.commandPath = commandPath
    }
    public var description: String { message }
}

/// The parsed command line for one command, with values looked up flag > environment > default.
public struct ParsedCommand: Sendable {
    public var path: [String]
    public var positionals: [String]
    var values: [String: String]
    var specs: [String: OptionSpec]
    public var environment: [String: String]

    /// The option's value: from the command line, then its environment variable, then its default.
    public func string(_ name: String) -> String? {
        if let v = values[name] { return v }
        guard let spec = specs[name] else { preconditionFailure("option --\(name) is not declared") }
        if let env = spec.env, let v = environment[env], !v.isEmpty { return v }
        return spec.defaultValue
    }

    /// Whether the option was given on the command line or in its environment variable.
    public func isSet(_ name: String) -> Bool {
        if values[name] != nil { return true }
        if let env = specs[name]?.env, let v = environment[env], !v.isEmpty { return true }
        return false
    }

    public func flag(_ name: String) -> Bool {
        guard let v = string(name) else { return false }
        return ["1", "true", "yes", "on"].contains(v.lowercased())
    }

    public func required(_ name: String) throws -> String {
        guard let v = string(name), !v.isEmpty else {
            throw UsageError("missing required option --\(name)", commandPath: path)
        }
        return v
    }

    public func int(_ name: String, min: Int? = nil) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let v = Int(text) else { throw UsageError("--\(name) expects a whole number, got \"\(text)\"", commandPath: path) }
        if let min, v < min { throw UsageError("--\(name) must be at least \(min), got \(v)", commandPath: path) }
        return v
    }

    public func double(_ name: String, min: Double? = nil) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let v = Double(text), v.isFinite else {
            throw UsageError("--\(name) expects a number, got \"\(text)\"", commandPath: path)
        }
        if let min, v < min { throw UsageError("--\(name) must be at least \(min), got \(text)", commandPath: path) }
        return v
    }

    /// A duration such as `250ms`, `10s`, `5m`, `1h` (a bare number is seconds), in nanoseconds.
    public func duration(_ name: String) throws -> UInt64? {
        guard let text = string(name) else { return nil }
        guard let ns = parseDuration(text) else {
            throw UsageError("--\(name) expects a duration like 500ms, 10s or 5m, got \"\(text)\"", commandPath: path)
        }
        return ns
    }
}

/// Parses `250ms`, `10s`, `1.5s`, `5m`, `2h`, `90d`, or a bare number of seconds, into nanoseconds; nil
/// for anything else, including durations past about 500 years (they would not fit).
public func parseDuration(_ text: String) -> UInt64? {
    let units: [(String, Double)] = [("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9), ("d", 86_400e9)]
    let (number, scale) = units.first { text.hasSuffix($0.0) }.map { (text.dropLast($0.0.count), $0.1) } ?? (Substring(text), 1e9)
    guard let v = Double(number), v >= 0, v.isFinite, v * scale < 1.6e19 else { return nil }
    return UInt64(v * scale)
}

public enum CLIParseResult {
    case run(CommandSpec, ParsedCommand)
    case help(String)
}

public enum CommandLineParser {
    /// Parses `arguments` (without the program name) against `root`.
    public static func parse(_ arguments: [String], root: CommandSpec, environment: [String: String]) throws -> CLIParseResult {
        var path = [root]
        var values: [String: String] = [:]
        var positionals: [String] = []
        var i = 0
        var onlyPositionals = false
        func known() -> [String: OptionSpec] {
            var all: [String: OptionSpec] = [:]
            for c in inheritedOptionSources(path) + [path.last!] { for o in c.options { all[o.name] = o } }
            return all
        }
        while i < arguments.count {
            let arg = arguments[i]
            i += 1
            if onlyPositionals {
                positionals.append(arg)
                continue
            }
            if arg == "--" { onlyPositionals = true; continue }
            if arg == "--help" || arg == "-h" {
                return .help(helpText(path))
            }
            if arg.hasPrefix("--") {
                var name = String(arg.dropFirst(2))
                var inline: String?
                if let eq = name.firstIndex(of: "=") {
                    inline = String(name[name.index(after: eq)...])
                    name = String(name[..<eq])
                }
                guard let spec = known()[name] else {
                    throw UsageError("unknown option --\(name) for '\(path.map(\.name).joined(separator: " "))'", commandPath: path.map(\.name))
                }
                if spec.isFlag {
                    if let inline {
                        guard ["true", "false", "1", "0", "yes", "no"].contains(inline.lowercased()) else {
                            throw UsageError("--\(name) is a flag and takes no value", commandPath: path.map(\.name))
                        }
                        values[name] = inline
                    } else {
                        values[name] = "true"
                    }
                } else if let inline {
                    values[name] = inline
                } else {
                    guard i < arguments.count else {
                        throw UsageError("--\(name) needs a value (\(spec.valueName!))", commandPath: path.map(\.name))
                    }
                    values[name] = arguments[i]
                    i += 1
                }
                continue
            }
            if arg.hasPrefix("-") && arg.count > 1 && Double(arg) == nil {
                throw UsageError("unknown option \(arg) for '\(path.map(\.name).joined(separator: " "))'", commandPath: path.map(\.name))
            }
            let current = path.last!
            if !current.subcommands.isEmpty && positionals.isEmpty {
                guard let sub = current.subcommands.first(where: { $0.name == arg }) else {
                    let names = current.subcommands.map(\.name).joined(separator: ", ")
                    throw UsageError("unknown command '\(arg)' for '\(path.map(\.name).joined(separator: " "))' (expected one of: \(names))",
                                     commandPath: path.map(\.name))
                }
                path.append(sub)
                continue
            }
            positionals.append(arg)
        }
        let command = path.last!
        // An option given before a subcommand that does not take it (`usage --vkey k prune`).
        let applicable = known()
        if let stray = values.keys.sorted().first(where: { applicable[$0] == nil }) {
            throw UsageError("--\(stray) does not apply to '\(path.map(\.name).joined(separator: " "))'", commandPath: path.map(\.name))
        }
        guard command.run != nil else {
            if path.count == 1 && values.isEmpty { return .help(helpText(path)) }
            throw UsageError("'\(path.map(\.name).joined(separator: " "))' needs a subcommand", commandPath: path.map(\.name))
        }
        if positionals.count > command.positionals.count {
            throw UsageError("unexpected argument '\(positionals[command.positionals.count])'", commandPath: path.map(\.name))
        }
        if positionals.count < command.positionals.count {
            throw UsageError("missing argument <\(command.positionals[positionals.count].name)>", commandPath: path.map(\.name))
        }
        let parsed = ParsedCommand(path: path.map(\.name), positionals: positionals, values: values, specs: known(), environment: environment)
        return .run(command, parsed)
    }

    /// The `--help` text for the last command on `path`.
    public static func helpText(_ path: [CommandSpec]) -> String {
        let command = path.last!
        let fullName = path.map(\.name).joined(separator: " ")
        var out = "OVERVIEW: \(command.summary)\n"
        if let d = command.discussion { out += "\n\(d)\n" }
        var usage = "USAGE: \(fullName)"
        if !command.subcommands.isEmpty { usage += command.run == nil ? " <subcommand>" : " [<subcommand>]" }
        if !command.options.isEmpty || path.count > 1 { usage += " [options]" }
        for p in command.positionals { usage += " <\(p.name)>" }
        out += "\n\(usage)\n"
        if !command.positionals.isEmpty {
            out += "\nARGUMENTS:\n"
            for p in command.positionals { out += formatRow("<\(p.name)>", p.help) }
        }
        let own = command.options
        let inherited = inheritedOptionSources(path).flatMap(\.options)
        if !own.isEmpty {
            out += "\nOPTIONS:\n"
            for o in own { out += formatOption(o) }
        }
        if !inherited.isEmpty {
            out += "\nGLOBAL OPTIONS:\n"
            for o in inherited { out += formatOption(o) }
        }
        out += formatRow("-h, --help", "Show help for this command.")
        if !command.subcommands.isEmpty {
            out += "\nSUBCOMMANDS:\n"
            for s in command.subcommands { out += formatRow(s.name, s.summary) }
            out += "\n  See '\(fullName) <subcommand> --help' for details.\n"
        }
        return out
    }

    /// The commands on `path` before the last whose options the last one takes too: the groups (commands
    /// that only hold subcommands, like the root). A command that runs by itself (`usage`) keeps its options
    /// to itself, so `usage prune` does not take `usage`'s `--vkey`.
    static func inheritedOptionSources(_ path: [CommandSpec]) -> [CommandSpec] {
        path.dropLast().filter { $0.run == nil }
    }

    private static func formatOption(_ o: OptionSpec) -> String {
        var left = "--\(o.name)"
        if let v = o.valueName { left += " <\(v)>" }
        var help = o.help
        var extras: [String] = []
        if let env = o.env { extras.append("env: \(env)") }
        if let d = o.defaultValue { extras.append("default: \(d)") }
        if !extras.isEmpty { help += " (\(extras.joined(separator: ", ")))" }
        return formatRow(left, help)
    }

    private static func formatRow(_ left: String, _ right: String) -> String {
        let pad = 30
        if left.count + 2 >= pad { return "  \(left)\n" + String(repeating: " ", count: pad) + "\(right)\n" }
        return "  \(left)" + String(repeating: " ", count: pad - 2 - left.count) + "\(right)\n"
    }
}

/// The process environment as a dictionary.
public func processEnvironment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}
