import Glibc
import Node

// A stand-in LLM provider on the project's own HTTP server, for tests and benchmarks.
Signals.takeOverAtStartup()
let arguments = Array(CommandLine.arguments.dropFirst())
exit(runBlocking { await MockProviderCommand.main(arguments) })
