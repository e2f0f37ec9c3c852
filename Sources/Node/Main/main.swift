import Glibc
import Node

// Take the signal mask before any other thread exists; every thread inherits it. The main thread then
// only waits: it never runs dispatch_main, which would unblock the termination signals again.
Signals.takeOverAtStartup()
let arguments = Array(CommandLine.arguments.dropFirst())
let status = runBlocking { await RootCommand.main(arguments: arguments) }
Logger.flushAll()
exit(status)
