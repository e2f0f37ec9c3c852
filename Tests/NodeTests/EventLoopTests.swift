import Glibc
import Synchronization
import Testing
@testable import Node

@Suite struct EventLoopTests {
    @Test func timerHeapFiresInDeadlineOrderAndSkipsCancelled() {
        var heap = TimerHeap()
        var fired: [Int] = []
        nonisolated(unsafe) var sink: [Int] = []
        _ = heap.schedule(at: 30) { sink.append(3) }
        let cancelled = heap.schedule(at: 10) { sink.append(1) }
        _ = heap.schedule(at: 20) { sink.append(2) }
        _ = heap.schedule(at: 5) { sink.append(0) }
        heap.cancel(cancelled)
        #expect(heap.nextDeadline() == 5)
        for a in heap.popExpired(now: 25) { a() }
        fired = sink
        #expect(fired == [0, 2])
        #expect(heap.nextDeadline() == 30)
        #expect(heap.count == 1)
    }

    @Test func cancelledTimersDoNotPileUpInTheHeap() {
        var heap = TimerHeap()
        nonisolated(unsafe) var fired: [UInt64] = []
        // Like requests: each schedules a far deadline and cancels it soon after; a few stay live.
        for i in 0..<100_000 {
            let id = heap.schedule(at: 1_000_000 + UInt64(i)) {}
            if i % 1000 != 0 { heap.cancel(id) }
        }
        #expect(heap.count == 100)
        #expect(heap.storedEntries <= 2 * 100 + 64 + 1)
        for i in 0..<10 {
            let d = UInt64(500 + i)
            _ = heap.schedule(at: d) { fired.append(d) }
        }
        for a in heap.popExpired(now: 600) { a() }
        #expect(fired == (0..<10).map { UInt64(500 + $0) })  // still in deadline order after rebuilds
        #expect(heap.nextDeadline() == 1_000_000)
    }

    @Test func executeRunsWorkOnTheLoopThread() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let onLoop = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            loop.execute { c.resume(returning: loop.inEventLoop) }
        }
        #expect(onLoop)
        #expect(!loop.inEventLoop)
    }

    /// Deferred work that logs its name, then does `then`.
    final class Step: LoopDeferred, @unchecked Sendable {
        let name: String
        let log: LockedBox<[String]>
        let then: (() -> Void)?
        init(_ name: String, _ log: LockedBox<[String]>, then: (() -> Void)? = nil) { self.name = name; self.log = log; self.then = then }
        func runDeferred() {
            log.withLock { $0.append(name) }
            then?()
        }
    }

    /// Runs `body` on a new loop's thread; returns the log as it is when `body`'s work calls `done`.
    func logOnALoop(_ body: @escaping @Sendable (EventLoop, LockedBox<[String]>, _ done: @escaping @Sendable () -> Void) -> Void) async throws -> [String] {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let log = LockedBox<[String]>([])
        return await withCheckedContinuation { (c: CheckedContinuation<[String], Never>) in
            loop.execute { body(loop, log) { c.resume(returning: log.withLock { $0 }) } }
        }
    }

    @Test func deferredWorkRunsLaterInTheIterationInOrder() async throws {
        let seen = try await logOnALoop { loop, log, done in
            loop.enqueueLocal(Step("object 1", log))
            loop.enqueueLocal { log.withLock { $0.append("closure") } }
            loop.enqueueLocal(Step("object 2", log))
            log.withLock { $0.append("now") }
            // Queued from deferred work: still this iteration, after what was queued before it.
            loop.enqueueLocal { loop.enqueueLocal { done() } }
        }
        #expect(seen == ["now", "object 1", "closure", "object 2"])
    }

    /// Flushes run last in the iteration, after local work queued before or after them; one queued by a
    /// flush runs on the next turn, which comes without waiting for an event.
    @Test func flushesRunAfterTheIterationsLocalWork() async throws {
        let seen = try await logOnALoop { loop, log, done in
            let last = Step("next turn", log, then: done)
            loop.enqueueFlush(Step("flush 1", log) { loop.enqueueFlush(last) })
            loop.enqueueLocal(Step("local", log))
            loop.enqueueFlush(Step("flush 2", log))
            loop.enqueueLocal { loop.enqueueLocal(Step("local from local", log)) }
        }
        #expect(seen == ["local", "local from local", "flush 1", "flush 2", "next turn"])
    }

    @Test func timersFireAfterTheirDelay() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let start = monotonicNanos()
        let elapsed = await withCheckedContinuation { (c: CheckedContinuation<UInt64, Never>) in
            loop.execute {
                loop.schedule(afterNanos: 30_000_000) { c.resume(returning: monotonicNanos() - start) }
            }
        }
        #expect(elapsed >= 30_000_000)
    }

    @Test func tasksWithLoopPreferenceStayOnTheLoop() async throws {
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let results = await Task(executorPreference: loop) { () -> [Bool] in
            var seen: [Bool] = [loop.inEventLoop]
            for _ in 0..<5 {
                await Task.yield()
                try? await Task.sleep(for: .milliseconds(1))
                seen.append(loop.inEventLoop)
            }
            return seen
        }.value
        #expect(results.allSatisfy { $0 })
    }

    @Test func workFromManyThreadsAllRuns() async throws {
        let group = try EventLoopGroup(loopCount: 2)
        defer { group.shutdown() }
        let counter = LockedBox(0)
        await withTaskGroup(of: Void.self) { tg in
            for i in 0..<8 {
                tg.addTask { [group, counter] in
                    for _ in 0..<1000 {
                        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                            group.loops[i % 2].execute {
                                counter.withLock { $0 += 1 }
                                c.resume()
                            }
                        }
                    }
                }
            }
        }
        #expect(counter.withLock { $0 } == 8000)
    }

    /// A signal watcher closed by its own callback reads nothing more: its descriptor's number may already
    /// belong to something else (here a pipe full of bytes no signal has, which used to crash the node
    /// when SIGTERM arrived while another thread was opening files).
    @Test func aSignalWatcherClosedByItsCallbackReadsNoMore() async throws {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGHUP)
        pthread_sigmask(SIG_BLOCK, &set, nil)  // the loop thread inherits the mask
        let group = try EventLoopGroup(loopCount: 1)
        defer { group.shutdown() }
        let loop = group.loops[0]
        let (signo, pipeFDs) = await withCheckedContinuation { (c: CheckedContinuation<(Int32, [Int32]), Never>) in
            loop.execute {
                var watcher: SignalWatcher?
                watcher = try! SignalWatcher(loop: loop) { signo in
                    watcher?.close()
                    watcher = nil
                    var fds: [Int32] = [0, 0]
                    _ = pipe(&fds)  // takes the lowest free number: the watcher's
                    let junk = [UInt8](repeating: 0xFF, count: 512)
                    _ = write(fds[1], junk, junk.count)
                    c.resume(returning: (signo, fds))
                }
                pthread_kill(pthread_self(), SIGHUP)
            }
        }
        #expect(signo == SIGHUP)
        for fd in pipeFDs { close(fd) }
    }
}
