import NIOCore
import NIOPosix

#if os(Linux)
import Glibc
#endif

/// Where the collector reads and prepares event batches: two threads per core, at a lower CPU
/// priority (nice +10, on Linux) than the rest of Tollgate.
///
/// The priority: on SQLite every batch goes through one writer thread; while parsing competed
/// with it as an equal, the writer waited in the run queue ~19 % of an ingest run
/// (`/proc/PID/task/TID/schedstat`), and every batch waited with it; at nice +10, 8 %. The
/// writer, and the proxy's threads, run first; parsing takes the CPU they leave.
///
/// Two threads per core: a batch waits for the database several times on its way (attribution,
/// late invoices, its transaction). With one thread per core each of its resumptions queued
/// behind other batches being parsed whole, and PostgreSQL sat idle meanwhile (PostgreSQL
/// ingest, traced builds back to back: 70,872 → 86,436 events/s).
final class IngestExecutor: TaskExecutor {
    static let shared = IngestExecutor()

    private let pool = NIOThreadPool(numberOfThreads: System.coreCount * 2)
    /// Set on each of the pool's threads once its priority is lowered.
    private let lowered = ThreadSpecificVariable<Lowered>()
    private final class Lowered: Sendable {}

    private init() {
        pool.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        pool.submit { _ in
            if self.lowered.currentValue == nil {
                self.lowered.currentValue = Lowered()
                Self.lowerThisThreadsPriority()
            }
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// On Linux a thread has a nice value of its own (`who` 0 is the calling thread); raising
    /// it needs no privilege. Elsewhere the call would apply to the whole process: left alone.
    private static func lowerThisThreadsPriority() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }
}
