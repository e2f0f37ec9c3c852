import Glibc

/// A pthread mutex guarding a value that is not `Sendable` (closures, jobs).
///
/// `@unchecked Sendable`: `value` is only reachable inside `withLock`, under the mutex.
public final class LockedBox<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    @inline(__always)
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

/// Runs `body` on the global executor and blocks the calling thread until it returns. For `main` only.
public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let result = LockedBox<T?>(nil)
    var sem = sem_t()
    sem_init(&sem, 0, 0)
    defer { sem_destroy(&sem) }
    withUnsafeMutablePointer(to: &sem) { semPointer in
        let sendable = UncheckedSendablePointer(semPointer)
        Task.detached {
            let value = await body()
            result.withLock { $0 = value }
            sem_post(sendable.pointer)
        }
        while sem_wait(semPointer) != 0 {}
    }
    return result.withLock { $0! }
}

/// A pointer handed to a task that the sending thread keeps alive until the task is done.
struct UncheckedSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
