import NIOCore

/// Something with deadlines that a `DeadlineTicker` looks at.
protocol DeadlineWatcher: AnyObject {
    /// Called on the ticker's event loop at every tick, with the time of the tick.
    func deadlinesDue(at now: NIODeadline)
}

/// One repeating timer per event loop for every deadline of its connections (head, idle, body
/// and upstream timeouts): a connection only writes down when its current phase ends, and the
/// ticker finds the phases that ended, `resolution` late at most. No call schedules or cancels
/// a timer of its own. The timer runs only while a watcher is registered.
final class DeadlineTicker {
    private let eventLoop: any EventLoop
    let resolution: TimeAmount
    private var watchers: [ObjectIdentifier: any DeadlineWatcher] = [:]
    private var timer: Scheduled<Void>?

    init(eventLoop: any EventLoop, resolution: TimeAmount) {
        self.eventLoop = eventLoop
        self.resolution = resolution
    }

    /// Watches `watcher` until `remove`; on the ticker's event loop.
    func add(_ watcher: any DeadlineWatcher) {
        watchers[ObjectIdentifier(watcher)] = watcher
        if timer == nil { scheduleTick() }
    }

    private func scheduleTick() {
        timer = eventLoop.assumeIsolated().scheduleTask(in: resolution) { [self] in
            timer = nil
            tick()
            // A watcher added during the tick may have started the next one already.
            if timer == nil && !watchers.isEmpty { scheduleTick() }
        }
    }

    func remove(_ watcher: any DeadlineWatcher) {
        watchers.removeValue(forKey: ObjectIdentifier(watcher))
        if watchers.isEmpty {
            timer?.cancel()
            timer = nil
        }
    }

    /// How many watchers are registered.
    var watcherCount: Int { watchers.count }

    private func tick() {
        let now = eventLoop.now
        // A watcher may close its connection, and so leave, while it is told.
        for watcher in Array(watchers.values) { watcher.deadlinesDue(at: now) }
    }
}

extension EdgePolicy {
    /// How late a deadline may be noticed: a third of the shortest limit, between 10 ms and
    /// 100 ms.
    func deadlineResolution(readTimeout: TimeAmount) -> TimeAmount {
        let shortest = [requestHeadTimeout, idleTimeout, bodyTimeout, readTimeout].min() ?? .milliseconds(300)
        return .nanoseconds(min(max(shortest.nanoseconds / 3, 10_000_000), 100_000_000))
    }
}
