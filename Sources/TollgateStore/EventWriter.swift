import Synchronization

/// Writes usage events with group commit: a batch that arrives while another transaction is
/// being written waits, and every batch waiting when that transaction ends goes into the next
/// one. Concurrent collectors and gateway nodes thus share commits, and pages that several
/// batches touch (the id index, the aggregates) are written to the log once per transaction.
///
/// SQLite has one writer, so one transaction is written at a time. PostgreSQL takes
/// `postgresTransactions` at once on connections of their own: while one commits (the log's
/// fsync) or its results come back, the next one's rows are already being copied. Their
/// events may overlap (a retried batch): the database's unique key stores each once (a `COPY`
/// that meets a stored event runs again with inserts that skip it, `eventTransaction`), and
/// should two of them wait for each other, the one PostgreSQL aborts is written again batch
/// by batch (`commit`), its events then found stored.
final class EventWriter: Sendable {
    /// The most events one transaction takes from waiting batches (a batch is never split).
    static let eventsPerTransaction = 20_000
    /// How many transactions are written at once on PostgreSQL.
    static let postgresTransactions = 2

    typealias Prepared = TollgateStore.PreparedEvents

    /// What a waiting batch is told: its outcome, or that it writes the next transaction.
    private enum Turn {
        case done(Result<EventInsertion, any Error>)
        case lead
    }

    private struct Waiter {
        var events: Prepared
        var continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        /// Transactions being written.
        var writing = 0
        var waiting: [Waiter] = []
    }

    private let backend: any SQLBackend
    private let state = Mutex(State())
    /// How many transactions may be written at once.
    private let writers: Int

    init(backend: any SQLBackend) {
        self.backend = backend
        self.writers = backend.kind == .sqlite ? 1 : Self.postgresTransactions
    }

    /// Writes `events`, in the next transaction or in one that takes them with other batches.
    /// It waits near the writer, so that a batch told to lead goes on without another hop.
    func write(_ events: Prepared) async throws -> EventInsertion {
        try await backend.nearWriter { try await self.writeInTurn(events) }
    }

    private func writeInTurn(_ events: Prepared) async throws -> EventInsertion {
        let turn: Turn = await withCheckedContinuation { continuation in
            let writers = writers
            let leads = state.withLock { state in
                if state.writing >= writers {
                    state.waiting.append(Waiter(events: events, continuation: continuation))
                    return false
                }
                state.writing += 1
                return true
            }
            if leads { continuation.resume(returning: .lead) }
        }
        if case .done(let result) = turn { return try result.get() }
        let joined = state.withLock { state in
            var count = events.events.count
            let taken = state.waiting.prefix { waiter in
                count += waiter.events.events.count
                return count <= Self.eventsPerTransaction
            }
            state.waiting.removeFirst(taken.count)
            return Array(taken)
        }
        let results = await commit([events] + joined.map(\.events))
        // The first batch still waiting writes the next transaction.
        let next = state.withLock { state -> Waiter? in
            guard !state.waiting.isEmpty else {
                state.writing -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: .lead)
        for (waiter, result) in zip(joined, results.dropFirst()) { waiter.continuation.resume(returning: .done(result)) }
        return try results[0].get()
    }

    /// Writes the batches in one transaction; if it fails, each batch alone, so that one bad
    /// batch fails only its own request (on PostgreSQL a lone batch too: it may have been the
    /// one aborted of two transactions waiting for each other).
    private func commit(_ batches: [Prepared]) async -> [Result<EventInsertion, any Error>] {
        do {
            return try await write(together: batches).map { .success($0) }
        } catch {
            guard batches.count > 1 || writers > 1 else { return [.failure(error)] }
            var results: [Result<EventInsertion, any Error>] = []
            for batch in batches {
                do {
                    results.append(.success(try await write(together: [batch])[0]))
                } catch {
                    results.append(.failure(error))
                }
            }
            return results
        }
    }

    /// Writes the batches in one transaction.
    private func write(together batches: [Prepared]) async throws -> [EventInsertion] {
        if let written = try await backend.withUsageLog({ log in try log.transaction { try batches.map { try log.write($0) } } }) {
            return written
        }
        return try await TollgateStore.eventTransaction(backend) { database, mode in
            try await TollgateStore.writePostgres(batches, mode: mode, to: database)
        }
    }
}
