import Foundation
import Glibc

/// Finds executables built next to the test bundle (`llm-proxy`, `mock-provider`).
public enum BuiltProducts {
    public static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["LLM_PROXY_BIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }

    public static func path(_ name: String) -> String { directory + "/" + name }
}

/// Secrets the tests handle (master, admin, provider and virtual keys). Every `llm-proxy serve` started
/// by a test has its whole output checked for them when it ends: a leak stops the test run.
public enum TestSecrets {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var values: Set<String> = []

    public static func register(_ secret: String) {
        guard secret.count >= 8 else { return }
        lock.lock()
        values.insert(secret)
        lock.unlock()
    }

    static var all: Set<String> {
        lock.lock()
        defer { lock.unlock() }
        return values
    }
}

/// Output a child writes, read to its end by one thread per stream (blocking reads: no dispatch source,
/// whose handler on Linux can be called with no data before the end — see swift-corelibs-foundation#3224).
final class OutputCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var combined = Data()
    private var standardOutput = Data()
    private var openStreams = 0

    /// Reads `handle` until every writer has closed it. `isStandardOutput` also keeps a copy apart.
    func read(_ handle: FileHandle, isStandardOutput: Bool) {
        lock.lock()
        openStreams += 1
        lock.unlock()
        let thread = Thread { [self] in
            let fd = handle.fileDescriptor
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                lock.lock()
                combined.append(buffer, count: n)
                if isStandardOutput { standardOutput.append(buffer, count: n) }
                lock.unlock()
            }
            lock.lock()
            openStreams -= 1
            lock.unlock()
            withExtendedLifetime(handle) {}
        }
        thread.start()
    }

    var text: String { lock.withLock { String(decoding: combined, as: UTF8.self) } }
    var standardOutputText: String { lock.withLock { String(decoding: standardOutput, as: UTF8.self) } }
    var ended: Bool { lock.withLock { openStreams == 0 } }
}

/// A child process with captured output, stopped with SIGTERM and then SIGKILL after a deadline.
public final class ChildProcess: @unchecked Sendable {
    /// Whether this process's output is checked for `TestSecrets` when it ends (on for `serve`).
    public var auditsSecrets: Bool
    private var audited = false
    public let process = Process()
    private let capture = OutputCapture()

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        auditsSecrets = arguments.first == "serve"
        for (k, v) in environment where k.hasSuffix("_KEY") { TestSecrets.register(v) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        capture.read(out.fileHandleForReading, isStandardOutput: true)
        capture.read(err.fileHandleForReading, isStandardOutput: false)
    }

    /// Everything the child wrote so far (standard output and standard error, each in order; how the two
    /// interleave is only as exact as the reads that saw them).
    public var outputText: String { capture.text }

    /// Only what the child wrote on standard output (a command's result, without diagnostics).
    public var standardOutputText: String { capture.standardOutputText }

    /// Waits until the reader has seen the end of the output (after the process exited, its last bytes may
    /// still be on their way to the reader), or `timeout` (a daemon the child started may hold the pipe).
    public func waitForOutputEnd(timeout: TimeInterval = 5) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if capture.ended { return }
            usleep(2_000)
        }
    }

    /// Waits until the output contains `text`.
    public func waitForOutput(containing text: String, timeout: TimeInterval = 10) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let out = outputText
            if out.contains(text) { return out }
            if !process.isRunning { break }
            usleep(10_000)
        }
        throw ChildError(description: "timed out waiting for \"\(text)\"; output so far:\n\(outputText)")
    }

    /// Reads the port from the node's `listening` log line.
    public func waitForListeningPort(timeout: TimeInterval = 10) throws -> UInt16 {
        let out = try waitForOutput(containing: "\"msg\":\"listening\"", timeout: timeout)
        guard let r = out.range(of: "\"port\":"),
              let port = UInt16(out[r.upperBound...].prefix(while: { $0.isNumber })) else {
            throw ChildError(description: "no port in: \(out)")
        }
        return port
    }

    public func signal(_ signo: Int32) { kill(process.processIdentifier, signo) }

    /// Sends SIGTERM and waits; SIGKILL after `timeout`. Returns the exit status.
    @discardableResult
    public func stop(timeout: TimeInterval = 10) -> Int32 {
        if process.isRunning { signal(SIGTERM) }
        return waitForExit(timeout: timeout)
    }

    @discardableResult
    public func waitForExit(timeout: TimeInterval = 10) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            signal(SIGKILL)
            process.waitUntilExit()
        }
        process.waitUntilExit()
        auditOutput()
        return process.terminationStatus
    }

    /// Stops the test run if a registered secret appears anywhere in this process's output.
    private func auditOutput() {
        guard auditsSecrets, !audited else { return }
        audited = true
        waitForOutputEnd(timeout: 2)
        let text = outputText
        for secret in TestSecrets.all where text.contains(secret) {
            fatalError("a secret (\(secret.prefix(6))…) reached the output of \(process.executableURL?.lastPathComponent ?? "?") \(process.arguments?.first ?? "")")
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        auditOutput()
    }
}

public struct ChildError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// A finished command: its exit status, everything it printed, and its standard output alone (where a
/// command's JSON result is — diagnostics on standard error must not break parsing it).
public struct CommandResult: Sendable {
    public var status: Int32
    public var output: String
    public var stdout: String
}

/// Runs a command to completion.
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       timeout: TimeInterval = 30) throws -> CommandResult {
    let child = try ChildProcess(executable, arguments, environment: environment)
    let status = child.waitForExit(timeout: timeout)
    child.waitForOutputEnd()
    return CommandResult(status: status, output: child.outputText, stdout: child.standardOutputText)
}
