import Testing
@testable import Node

@Suite struct CommandLineParserTests {
    static let root = CommandSpec(
        name: "tool", summary: "A tool.",
        options: [OptionSpec("server", value: "url", env: "TOOL_SERVER", help: "Server.")],
        subcommands: [
            CommandSpec(name: "thing", summary: "Things.", subcommands: [
                CommandSpec(name: "add", summary: "Add a thing.",
                            options: [OptionSpec("name", value: "name", help: "Name."),
                                      OptionSpec("count", value: "n", env: "TOOL_COUNT", default: "3", help: "Count."),
                                      OptionSpec("force", help: "Force.")],
                            run: { _ in 0 }),
                CommandSpec(name: "rm", summary: "Remove.", positionals: [PositionalSpec("id", help: "Id.")], run: { _ in 0 }),
            ]),
            // Runs by itself and has a subcommand: its options are its own.
            CommandSpec(name: "report", summary: "Report.", options: [OptionSpec("since", value: "when", help: "Since.")],
                        subcommands: [CommandSpec(name: "purge", summary: "Purge.", options: [OptionSpec("before", value: "when", help: "Before.")],
                                                  run: { _ in 0 })],
                        run: { _ in 0 }),
        ])

    func parse(_ args: [String], env: [String: String] = [:]) throws -> ParsedCommand {
        guard case .run(_, let p) = try CommandLineParser.parse(args, root: Self.root, environment: env) else {
            throw UsageError("help shown")
        }
        return p
    }

    @Test func flagBeatsEnvironmentBeatsDefault() throws {
        #expect(try parse(["thing", "add"]).string("count") == "3")
        #expect(try parse(["thing", "add"], env: ["TOOL_COUNT": "5"]).string("count") == "5")
        #expect(try parse(["thing", "add", "--count", "7"], env: ["TOOL_COUNT": "5"]).string("count") == "7")
        #expect(try parse(["thing", "add", "--count=8"]).string("count") == "8")
    }

    @Test func globalOptionsWorkBeforeOrAfterTheSubcommand() throws {
        #expect(try parse(["--server", "http://a", "thing", "add"]).string("server") == "http://a")
        #expect(try parse(["thing", "add", "--server", "http://b"]).string("server") == "http://b")
    }

    @Test func aCommandThatRunsByItselfKeepsItsOptionsFromItsSubcommands() throws {
        #expect(try parse(["report", "--since", "1d"]).string("since") == "1d")
        #expect(try parse(["report", "purge", "--before", "1d", "--server", "http://a"]).string("before") == "1d")
        #expect(throws: UsageError.self) { try parse(["report", "purge", "--before", "1d", "--since", "1d"]) }
        #expect(throws: UsageError.self) { try parse(["report", "--since", "1d", "purge", "--before", "1d"]) }
        guard case .help(let text) = try CommandLineParser.parse(["report", "purge", "--help"], root: Self.root, environment: [:]) else {
            Issue.record("expected help")
            return
        }
        #expect(text.contains("--server") && text.contains("--before") && !text.contains("--since"))
        guard case .help(let parent) = try CommandLineParser.parse(["report", "--help"], root: Self.root, environment: [:]) else {
            Issue.record("expected help")
            return
        }
        #expect(parent.contains("USAGE: tool report [<subcommand>] [options]"))
    }

    @Test func booleanFlags() throws {
        #expect(try parse(["thing", "add", "--force"]).flag("force"))
        #expect(try !parse(["thing", "add"]).flag("force"))
        #expect(try !parse(["thing", "add", "--force=false"]).flag("force"))
    }

    @Test func unknownOptionIsAUsageError() {
        #expect(throws: UsageError.self) { try parse(["thing", "add", "--bogus"]) }
        #expect(throws: UsageError.self) { try parse(["thing", "add", "-x"]) }
    }

    @Test func unknownSubcommandIsAUsageError() {
        #expect(throws: UsageError.self) { try parse(["thing", "frob"]) }
    }

    @Test func missingValueIsAUsageError() {
        #expect(throws: UsageError.self) { try parse(["thing", "add", "--name"]) }
    }

    @Test func positionalsAreCounted() throws {
        #expect(try parse(["thing", "rm", "abc"]).positionals == ["abc"])
        #expect(throws: UsageError.self) { try parse(["thing", "rm"]) }
        #expect(throws: UsageError.self) { try parse(["thing", "rm", "a", "b"]) }
    }

    @Test func groupWithoutSubcommandIsAUsageError() {
        #expect(throws: UsageError.self) { try parse(["thing"]) }
    }

    @Test func helpListsOptionsWithEnvironmentAndDefault() throws {
        guard case .help(let text) = try CommandLineParser.parse(["thing", "add", "--help"], root: Self.root, environment: [:]) else {
            Issue.record("no help"); return
        }
        #expect(text.contains("--count <n>"))
        #expect(text.contains("env: TOOL_COUNT, default: 3"))
        #expect(text.contains("GLOBAL OPTIONS"))
        #expect(text.contains("--server <url>"))
    }

    @Test func typedAccessorsValidate() throws {
        let p = try parse(["thing", "add", "--count", "x"])
        #expect(throws: UsageError.self) { try p.int("count") }
        let q = try parse(["thing", "add", "--count", "-2"])
        #expect(throws: UsageError.self) { try q.int("count", min: 0) }
        #expect(try parse(["thing", "add", "--count", "4"]).int("count") == 4)
    }

    @Test func durations() {
        #expect(parseDuration("250ms") == 250_000_000)
        #expect(parseDuration("10s") == 10_000_000_000)
        #expect(parseDuration("1.5s") == 1_500_000_000)
        #expect(parseDuration("2m") == 120_000_000_000)
        #expect(parseDuration("3") == 3_000_000_000)
        #expect(parseDuration("abc") == nil)
        #expect(parseDuration("-1s") == nil)
        #expect(parseDuration("90d") == 90 * 86_400 * 1_000_000_000)
        #expect(parseDuration("1e300h") == nil)  // too long to hold: an error, not a crash
        #expect(parseDuration("600000d") == nil)
    }

    @Test func hostPortParsing() {
        #expect(HostPort(parsing: "0.0.0.0:8132") == HostPort(host: "0.0.0.0", port: 8132))
        #expect(HostPort(parsing: "[::1]:80") == HostPort(host: "::1", port: 80))
        #expect(HostPort(parsing: "localhost:0") == HostPort(host: "localhost", port: 0))
        #expect(HostPort(parsing: "8132") == nil)
        #expect(HostPort(parsing: "host:99999") == nil)
        #expect(HostPort(parsing: "::1:80") == nil)
    }
}

@Suite struct TimeArgumentTests {
    /// Found by schemathesis: a huge duration overflowed Int64 and crashed the node.
    @Test func hugeDurationsAreRefusedNotACrash() {
        #expect(parseTime("354161136320143535s", future: true) == nil)
        #expect(parseTime("889407689278477.39m", future: false) == nil)
        #expect(parseTime("1e300d", future: true) == nil)
    }

    @Test func millisecondTimesRoundTripExactly() {
        #expect(isoTimeMillis(1_798_718_400_000) == "2026-12-31T12:00:00.000Z")
        #expect(isoTimeMillis(1_798_718_400_007) == "2026-12-31T12:00:00.007Z")
        #expect(isoTimeMillis(0) == "1970-01-01T00:00:00.000Z")
        #expect(isoTimeMillis(-1) == "1969-12-31T23:59:59.999Z")
        for ms: Int64 in [1_700_000_000_123, 1_798_718_400_999, 86_400_001] {
            #expect(parseTime(isoTimeMillis(ms), future: false) == ms)
        }
    }

    @Test func datesDurationsAndDateTimes() {
        #expect(parseTime("2026-12-31", future: true) == 1_798_675_200_000)
        #expect(parseTime("2026-12-31T12:00:00Z", future: true) == 1_798_718_400_000)
        #expect(parseTime("2026-12-31t12:00:00z", future: true) == 1_798_718_400_000)
        #expect(parseTime("2026-12-31T12:00:00.5Z", future: true) == 1_798_718_400_500)
        let now = nowMillisForTest()
        #expect(abs((parseTime("1h", future: true) ?? 0) - (now + 3_600_000)) < 5000)
        #expect(parseTime("yesterday", future: false) == nil)
        #expect(parseTime("", future: false) == nil)
    }

    func nowMillisForTest() -> Int64 { Int64(wallClockSeconds() * 1000) }
}
