import Glibc
import Storage

/// The `llm-proxy` command tree and its entry point.
public enum RootCommand {
    public static var spec: CommandSpec {
        CommandSpec(
            name: "llm-proxy",
            summary: "A distributed LLM gateway: virtual keys, per-key request and token limits, one API for many providers.",
            options: [OptionSpec("version", help: "Print the version and exit."), StoreAccess.databaseURL, AdminCommands.output,
                      AdminCommands.server, AdminCommands.adminKey],
            subcommands: [ServeCommand.spec] + AdminCommands.all + [StoreCommands.migrate, StoreCommands.rotateMasterKey, HealthcheckCommand.spec],
            run: nil
        )
    }

    /// Parses the command line, runs the command, and returns the process exit code.
    public static func main(arguments: [String]) async -> Int32 {
        let env = processEnvironment()
        MongoDriverLog.releaseSharedCounters()
        // Commands print their results on standard output; the driver's warnings and errors go to standard
        // error (`serve` routes them into its JSON log instead).
        MongoDriverLog.route { level, domain, message in
            guard level == .error || level == .warning else { return }
            writeStderr("mongodb driver \(level): \(domain): \(message)\n")
        }
        if arguments.first == "--version" || arguments == ["version"] {
            print("llm-proxy \(LLMProxyVersion.current)")
            return 0
        }
        do {
            switch try CommandLineParser.parse(arguments, root: spec, environment: env) {
            case .help(let text):
                print(text, terminator: "")
                return 0
            case .run(let command, let parsed):
                if command.name != "serve" { Signals.exitOnTermination() }
                return try await command.run!(parsed)
            }
        } catch let e as StoreError {
            writeStderr("error: \(e.message)\n")
            return 1
        } catch let e as UsageError {
            let hint = e.commandPath.isEmpty ? "llm-proxy" : e.commandPath.joined(separator: " ")
            writeStderr("error: \(e.message)\nRun '\(hint) --help' for usage.\n")
            return 2
        } catch {
            writeStderr("error: \(error)\n")
            return 1
        }
    }
}

public func writeStderr(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
}
