import Glibc
import Node

enum MockProviderCommand {
    static let spec = CommandSpec(
        name: "mock-provider",
        summary: "A mock OpenAI/Anthropic-style provider for tests and benchmarks.",
        options: [
            OptionSpec("listen", value: "host:port", default: "127.0.0.1:9001", help: "Address to listen on."),
            OptionSpec("event-loops", value: "n", default: "1", help: "Event-loop threads."),
            OptionSpec("bench", help: "Serve only the fixed chat completion, with no request bookkeeping (for benchmarks)."),
        ],
        run: { p in
            guard let listen = HostPort(parsing: try p.required("listen")) else { throw UsageError("bad --listen") }
            let group = try EventLoopGroup(loopCount: try p.int("event-loops", min: 1)!)
            let server = HTTPServer(group: group, configuration: HTTPServerConfiguration(listen: listen), handler: p.flag("bench") ? MockProvider.benchRouter() : MockProvider.router())
            try server.start()
            print("mock-provider listening on \(listen.host):\(server.port)")
            fflush(nil)
            let signo = await ServeSupport.waitForTermination(on: group.loops[0])
            _ = signo
            await server.shutdown(graceNanos: 1_000_000_000)
            group.shutdown()
            return 0
        })

    static func main(_ arguments: [String]) async -> Int32 {
        do {
            switch try CommandLineParser.parse(arguments, root: spec, environment: processEnvironment()) {
            case .help(let text):
                print(text, terminator: "")
                return 0
            case .run(let command, let parsed):
                return try await command.run!(parsed)
            }
        } catch {
            writeStderr("mock-provider: \(error)\n")
            return 2
        }
    }
}
