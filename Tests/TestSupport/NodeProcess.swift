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

/// A child process with captured output, stopped with SIGTERM and then SIGKILL after a deadline.
public final class ChildProcess: @unchecked Sendable {
    /// Whether this process's output is checked for `TestSecrets` when it ends (on for `serve`).
    public var auditsSecrets: Bool
    private var audited = false
    public let process = Process()
    private let output = Pipe()
    private let lock = NSLock()
    private var captured = Data()
    /// The reader saw the end of the output (every writer closed it).
    private var outputEnded = false

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        auditsSecrets = arguments.first == "serve"
        for (k, v) in environment where k.hasSuffix("_KEY") { TestSecrets.register(v) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.standardOutput = output
        process.standardError = output
        output.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            guard let self else { return }
            self.lock.lock()
            if d.isEmpty { self.outputEnded = true } else { self.captured.append(d) }
            self.lock.unlock()
            if d.isEmpty { h.readabilityHandler = nil }
        }
        try process.run()
    }

    /// Everything the child wrote so far (stdout and stderr).
    public var outputText: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: captured, as: UTF8.self)
    }

    /// Waits until the reader has seen the end of the output (after the process exited, its last bytes may
    /// still be on their way to the reader), or `timeout` (a daemon the child started may hold the pipe).
    public func waitForOutputEnd(timeout: TimeInterval = 5) {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            lock.lock()
            let ended = outputEnded
            lock.unlock()
            if ended { return }
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
        output.fileHandleForReading.readabilityHandler = nil
    }
}

public struct ChildError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs a command to completion and returns its exit status and combined output.
public func runCommand(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                       timeout: TimeInterval = 30) throws -> (status: Int32, output: String) {
    let child = try ChildProcess(executable, arguments, environment: environment)
    let status = child.waitForExit(timeout: timeout)
    child.waitForOutputEnd()
    return (status, child.outputText)
}
