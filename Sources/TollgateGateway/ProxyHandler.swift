import Foundation
import Logging
import NIOCore
import NIOHTTP1
import TollgateCore

/// What every proxy handler shares: the directory it decides from, where usage goes, settings.
struct ProxyContext: Sendable {
    let directory: GatewayDirectory
    let recorder: UsageRecorder
    let quotas: QuotaLedger
    let configuration: GatewayConfiguration
    let localRoutes: LocalRoutes
    let logger: Logger
}

/// One proxied call in flight.
final class ProxiedCall {
    let consumer: Consumer
    let route: ProductRoute
    /// The billed endpoint's identifier; nil for an unlisted endpoint.
    let endpoint: String?
    /// Whether the call is billed (its endpoint is listed): its answer waits for its usage to be durable.
    let billable: Bool
    let method: String
    /// The path as metered (see `Forward.meteredPath`).
    let path: String
    /// Sent upstream as `X-Request-ID`: the client's own, or the event id.
    let requestID: String
    /// The usage event's id: always Tollgate's, so a client cannot make two calls one event.
    let eventID: String
    let startedAt = NIODeadline.now()
    let occurredAt: Date
    let clientKeepAlive: Bool
    let clientVersion: HTTPVersion
    /// The request is a `HEAD`: its answer has no body.
    let isHead: Bool

    /// The upstream connection; nil while it is being opened.
    var upstream: UpstreamHandler?
    /// The head sent upstream, as bytes (`UpstreamRequest.write`).
    var upstreamHead = ByteBuffer()
    /// The request body goes upstream chunked.
    var upstreamChunked = false
    /// Request body parts (and its end) that arrived while the connection was being opened.
    var waitingParts: [HTTPClientRequestPart] = []
    var requestDone = false
    var responseHeadSent = false
    var responseStatus: Int?
    /// True from the upstream's answer until its usage event is durable (billable calls only).
    var awaitingDurability = false
    /// The answer's bytes (head and framed body) held until its usage is durable.
    var held: ByteBuffer?
    /// The upstream's answer ended while it was held.
    var heldEnd = false
    /// Body bytes held for durability; past `maxHeldBytes` the upstream is not read further.
    var heldBytes = 0
    /// The upstream's answer has ended: anything more it sends is not part of this call.
    var responseEnded = false
    /// The upstream closed before the end of an answer that was held for durability.
    var endedEarly = false
    var upstreamReusable = true
    /// Set while the call went out on a reused connection and has no body: it may be sent once more.
    var retryable = false
    /// Whether the request has no body (such a call may be retried on a fresh connection).
    var bodyless = false
    /// The rate-limit headers of the call's prepaid quotas, added to its answer.
    var quotaHeaders: [(name: String, value: String)] = []
    /// The quota counters the call was counted in, given back when Tollgate answers it itself.
    var counted: QuotaLedger.Counted?
    var requestBytes = 0
    var responseBytes = 0
    /// When the upstream's silence ends the call (504): set while an answer is awaited,
    /// moved on by every part of it.
    var readDeadline: NIODeadline?
    /// When a pause in the request body ends the call (408): set while the body is read,
    /// moved on by every body part.
    var bodyDeadline = NIODeadline.distantFuture

    init(
        consumer: Consumer, route: ProductRoute, endpoint: String?, method: String, path: String, requestID: String?,
        clientKeepAlive: Bool, clientVersion: HTTPVersion, isHead: Bool
    ) {
        let now = Date()
        let eventID = RandomID.timeOrdered("req", at: now)
        self.occurredAt = now
        self.eventID = eventID
        self.requestID = requestID ?? eventID
        self.consumer = consumer
        self.route = route
        self.endpoint = endpoint
        self.billable = endpoint != nil
        self.method = method
        self.path = path
        self.clientKeepAlive = clientKeepAlive
        self.clientVersion = clientVersion
        self.isHead = isHead
    }

    var upstreamKey: UpstreamKey { route.upstreamKey }

    /// How much of an answer is held in memory while its usage is made durable before the
    /// upstream is no longer read (back-pressure). Most answers arrive whole long before.
    static let maxHeldBytes = 64 * 1024

    /// Whether a method may be sent a second time when a pooled connection turns out closed
    /// (RFC 9110 §9.2.2); any other is sent once at most.
    static func isIdempotent(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "OPTIONS", "PUT", "DELETE": true
        default: false
        }
    }
}

/// The proxy port's decision and forwarding handler: route, authenticate and forward each
/// request to a pooled upstream connection, streaming parts both ways with back-pressure, and
/// record its usage. Everything it decides from is in memory; it runs on its channel's event loop.
///
/// It reads requests from the connection's bytes (`ClientRequestDecoder`) and writes its answers
/// as bytes (`ResponseHead`): the client side of the pipeline has no HTTP codec.
final class ProxyHandler: ChannelDuplexHandler, DeadlineWatcher {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case idle
        /// Tollgate answered itself; the rest of the request body is dropped.
        case discarding
        case forwarding(ProxiedCall)
        /// A request to one of the port's own paths (`LocalRoutes`), its body being read.
        case local(LocalCall)
        /// A local request read in full, its answer being made.
        case answeringLocally
    }

    private let shared: ProxyContext
    private let pool: UpstreamPool
    private let ticker: DeadlineTicker
    private var context: ChannelHandlerContext?
    /// The connection's head limits, told when a request starts and when its answer ends.
    private var connectionGuard: ConnectionGuard?
    private var state = State.idle
    private var clientAddress = ""
    private var closeAfterResponse = false
    private var readsPaused = false
    private var pendingRead = false
    private var decoder = ClientRequestDecoder()
    /// Bytes that came and were not read yet: the start of a head, or requests that came while
    /// an earlier answer was still being made (HTTP/1.1 pipelining), read in order once it ends.
    /// Reading the connection stops while they wait.
    private var received = ByteBuffer()
    /// `readRequests` is running (an answer it makes must not start it again).
    private var readingRequests = false
    /// A graceful shutdown asked the connection to end after its current request.
    private var quiescing = false
    /// The current request is a `HEAD`: Tollgate's own answer to it has no body.
    private var answeringHead = false
    /// How the body of the answer being written is framed.
    private var responseFraming = BodyFraming.raw
    /// An answer's head was written and its end not yet: a decoding error can no longer be
    /// answered with a 400.
    private var responseOpen = false
    /// The last call's head sent upstream and last answer written: their storage is reused for
    /// the next ones once nothing else holds it (`reusedBuffer`), an allocation less per head.
    private var spareUpstreamHead: ByteBuffer?
    private var spareAnswer: ByteBuffer?
    /// The hash of the token this connection presented last (`RecentTokenHash`).
    private var recentToken = RecentTokenHash()
    /// The quota limits of this connection's last call, reused while they hold.
    private var recentLimits = RecentQuotaLimits()
    /// The largest spare kept (an answer held with its body may have grown far beyond a head).
    private static let reusedBufferLimit = 4096

    init(shared: ProxyContext, pool: UpstreamPool, ticker: DeadlineTicker) {
        self.shared = shared
        self.pool = pool
        self.ticker = ticker
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        ticker.add(self)
        clientAddress = context.channel.remoteAddress?.ipAddress ?? ""
        connectionGuard = try? context.pipeline.syncOperations.handler(type: ConnectionGuard.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        ticker.remove(self)
        self.context = nil
    }

    // MARK: Client side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received.readableBytes == 0 {
            received = bytes
        } else {
            received.writeBuffer(&bytes)
        }
        readRequests(context: context)
    }

    /// Whether the current request was read whole and its answer has not ended yet.
    private var awaitsAnswerEnd: Bool {
        switch state {
        case .forwarding(let call): call.requestDone
        case .answeringLocally: true
        case .idle, .discarding, .local: false
        }
    }

    /// Whether reading the connection waits: for Tollgate (`pauseClientReads`), or because a
    /// pipelined request came before the answer to the one before it has ended.
    private var holdsReads: Bool {
        readsPaused || awaitsAnswerEnd && received.readableBytes > 0
    }

    /// Reads and handles the parts of requests that came, until one of them waits for its
    /// answer: the bytes after it wait, unread, until that answer has ended.
    private func readRequests(context: ChannelHandlerContext) {
        guard !readingRequests else { return }
        readingRequests = true
        defer { readingRequests = false }
        while self.context != nil, !awaitsAnswerEnd {
            // Nothing after a request whose answer ends the connection is read.
            if closeAfterResponse, decoder.isBetweenRequests {
                received = ByteBuffer()
                return
            }
            let part: ClientRequestPart
            do {
                guard let next = try decoder.next(from: &received) else { break }
                part = next
            } catch {
                refuseUnreadable(error, context: context)
                return
            }
            handle(part, context: context)
        }
        if received.readableBytes == 0 { received = ByteBuffer() }
    }

    /// A request that cannot be read is answered 400 unless an answer is under way; the
    /// connection ends either way, since what follows on it can no longer be told apart.
    private func refuseUnreadable(_ error: HTTPReadError, context: ChannelHandlerContext) {
        received = ByteBuffer()
        closeAfterResponse = true
        let refusal = ProxyRefusal.badRequest("Bad request: \(error.reason)")
        switch state {
        case .forwarding(let call):
            // Its body could not be read: the call fails as a refusal (its quota given back).
            failCall(call, with: refusal)
        case .idle, .discarding, .local:
            if responseOpen {
                context.close(promise: nil)
                return
            }
            shared.recorder.countRefusal(status: Int(refusal.status.code))
            state = .discarding
            answer(refusal, version: .http1_1, context: context)
        case .answeringLocally:
            context.close(promise: nil)
        }
    }

    private func handle(_ part: ClientRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            receivedHead(head, context: context)
        case .body(var buffer):
            if case .local(let call) = state {
                guard call.body.readableBytes + buffer.readableBytes <= shared.localRoutes.maxBodyBytes else {
                    closeAfterResponse = true
                    state = .discarding
                    answer(.payloadTooLarge, version: call.head.version, context: context)
                    return
                }
                call.body.writeBuffer(&buffer)
                return
            }
            guard case .forwarding(let call) = state else { return }
            call.requestBytes += buffer.readableBytes
            sendUpstream(.body(.byteBuffer(buffer)), call: call)
            armBodyTimeout(call)
        case .end:
            switch state {
            case .idle, .answeringLocally:
                break
            case .local(let call):
                answerLocally(call, context: context)
            case .discarding:
                state = .idle
                if quiescing {
                    // The answer went out before the shutdown asked for the connection to end.
                    context.close(promise: nil)
                } else if !closeAfterResponse {
                    connectionGuard?.requestFinished()
                }
            case .forwarding(let call):
                call.requestDone = true
                stopBodyTimeout(call)
                sendUpstream(.end(nil), call: call)
                call.upstream?.flush()
                if call.upstream != nil && call.responseStatus == nil { armTimeout(call) }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding(let call) = state { call.upstream?.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if holdsReads {
            pendingRead = true
        } else {
            context.read()
        }
    }

    /// Stops reading the client while the call waits (for a connection, a quota lease or the
    /// upstream's back-pressure); the body timeout does not run meanwhile.
    private func pauseClientReads() {
        readsPaused = true
        if case .forwarding(let call) = state { stopBodyTimeout(call) }
    }

    private func resumeClientReads() {
        guard readsPaused else { return }
        readsPaused = false
        if case .forwarding(let call) = state { armBodyTimeout(call) }
        if pendingRead, !holdsReads, let context {
            pendingRead = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, case .forwarding(let call) = state, !call.awaitingDurability {
            call.upstream?.resumeReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        ticker.remove(self)
        if case .forwarding(let call) = state {
            call.readDeadline = nil
            stopBodyTimeout(call)
            call.upstream?.close()
            call.upstream = nil
        }
        state = .idle
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Deciding

    private func receivedHead(_ head: ClientRequestHead, context: ChannelHandlerContext) {
        connectionGuard?.requestStarted()
        answeringHead = head.method == .HEAD
        // After an upgrade request the connection would no longer be HTTP: its answer is the last.
        closeAfterResponse = !head.isKeepAlive || head.method == .CONNECT || head.upgrade != nil
        if !shared.localRoutes.isEmpty, Decision.unacceptable(head) == nil,
           let responder = shared.localRoutes.responder(forTarget: head.target)
        {
            state = .local(LocalCall(head: head.nioHead, responder: responder, allocator: context.channel.allocator))
            return
        }
        switch Decision.make(head: head, directory: shared.directory, tokens: &recentToken) {
        case .refuse(let refusal, let recordAs):
            if let recordAs {
                recordRefusal(refusal, method: head.method.rawValue, path: recordAs.path, consumer: recordAs.consumer)
            } else {
                shared.recorder.countRefusal(status: Int(refusal.status.code))
            }
            refuseBeforeForwarding(refusal, head: head, context: context)
        case .forward(let forward):
            forwardCall(forward, head: head, context: context)
        }
    }

    /// Answers a request Tollgate refuses before forwarding it. Its body, if one follows, is not
    /// read: the connection ends with the answer.
    private func refuseBeforeForwarding(
        _ refusal: ProxyRefusal, head: ClientRequestHead, context: ChannelHandlerContext, extra: [(name: String, value: String)] = []
    ) {
        if head.hasBody { closeAfterResponse = true }
        state = .discarding
        answer(refusal, version: head.version, context: context, extra: extra)
    }

    private func forwardCall(_ forward: Forward, head: ClientRequestHead, context: ChannelHandlerContext) {
        // A billable call whose usage could not be queued is refused before it reaches anything.
        if forward.endpoint != nil, !shared.recorder.acceptsBillable {
            shared.recorder.countRefusal(status: Int(ProxyRefusal.overloaded.status.code))
            refuseBeforeForwarding(.overloaded, head: head, context: context)
            return
        }
        let call = ProxiedCall(
            consumer: forward.consumer, route: forward.route, endpoint: forward.endpoint, method: forward.method,
            path: forward.meteredPath, requestID: head.value(of: "x-request-id"),
            clientKeepAlive: head.isKeepAlive, clientVersion: head.version, isHead: head.method == .HEAD)
        // Quotas come last in the order of checks: a refused call reaches nothing and costs nothing.
        var leaseWait: EventLoopFuture<Void>?
        var sharedLease: EventLoopFuture<QuotaLedger.Admission>?
        if let plan = shared.directory.quotaPlan(forward.consumer.plan) {
            let now = Date()
            let limits = recentLimits.limits(plan: plan, anchor: forward.consumer.startedAt, endpoint: forward.endpoint, at: now)
            switch shared.quotas.admit(
                limits, consumer: forward.consumer, plan: plan, endpoint: forward.endpoint, at: now,
                eventLoop: context.eventLoop)
            {
            case .notCovered:
                break
            case .refused(let retryAfter, let states):
                let refusal = ProxyRefusal.rateLimited(retryAfter: retryAfter)
                recordRefusal(refusal, call: call)
                announceRefusal(call, states: states, at: now)
                refuseBeforeForwarding(refusal, head: head, context: context, extra: QuotaHeaders.fields(states, at: now))
                return
            case .admitted(let states, let wait, let exhausted, let counted):
                countAdmitted(call, states: states, exhausted: exhausted, counted: counted, at: now)
                leaseWait = wait
            case .pending(let decision):
                sharedLease = decision
            }
        }
        state = .forwarding(call)
        if head.expectsContinue {
            var buffer = context.channel.allocator.buffer(capacity: 32)
            ResponseHead.writeStatusLine(version: head.version, status: .continue, into: &buffer)
            buffer.writeStaticString("\r\n")
            context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        }
        call.bodyless = !head.hasBody
        var upstreamHead = reusedBuffer(&spareUpstreamHead, capacity: 1024, context: context)
        call.upstreamChunked = UpstreamRequest.write(
            for: head, forward: forward, requestID: call.requestID, clientAddress: clientAddress,
            edge: shared.configuration.edge, overTLS: shared.configuration.tls != nil, into: &upstreamHead)
        call.upstreamHead = upstreamHead
        // Nothing changes a head once written: the next call's may reuse its storage when this
        // one's has been sent and let go.
        spareUpstreamHead = upstreamHead
        if head.hasBody { armBodyTimeout(call) }
        if let sharedLease {
            // This node is taking a lease of a quota it shares with other nodes: the call is
            // decided when it is back.
            pauseClientReads()
            sharedLease.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                guard case .forwarding(let current) = state, current === call, let context = self.context else { return }
                let now = Date()
                switch result {
                case .success(.admitted(let states, _, let exhausted, let counted)):
                    countAdmitted(call, states: states, exhausted: exhausted, counted: counted, at: now)
                    dispatch(call, context: context)
                case .success(.refused(let retryAfter, let states)):
                    resumeClientReads()
                    announceRefusal(call, states: states, at: now)
                    refuseWaitingCall(call, .rateLimited(retryAfter: retryAfter), extra: QuotaHeaders.fields(states, at: now))
                case .success(.notCovered), .success(.pending):
                    dispatch(call, context: context)
                case .failure:
                    resumeClientReads()
                    failCall(call, with: .usageNotRecorded)
                }
            }
        } else if let leaseWait {
            // The quota lease covering this call is being written: wait for it before forwarding.
            pauseClientReads()
            leaseWait.hop(to: context.eventLoop).assumeIsolated().whenComplete { [self] result in
                guard case .forwarding(let current) = state, current === call, let context = self.context else { return }
                switch result {
                case .success: dispatch(call, context: context)
                case .failure:
                    resumeClientReads()
                    failCall(call, with: .usageNotRecorded)
                }
            }
        } else {
            dispatch(call, context: context)
        }
    }

    /// Counts an admitted call: its rate-limit headers, where to give it back, and the vendor's
    /// `quota.exhausted` webhook when this call used a limit up.
    private func countAdmitted(
        _ call: ProxiedCall, states: [LimitState], exhausted: [AppliedLimit], counted: QuotaLedger.Counted, at now: Date
    ) {
        call.quotaHeaders = QuotaHeaders.fields(states, at: now)
        call.counted = counted
        announceExhausted(exhausted, call: call, at: now)
    }

    /// A quota shared with other nodes is surely used up once a call is refused by it (a node
    /// may not see the very call that used it up elsewhere): the vendor is told then. The
    /// event's id is the counter's, so the outbox keeps one per window however many refusals.
    private func announceRefusal(_ call: ProxiedCall, states: [LimitState], at now: Date) {
        guard shared.quotas.isShared, let plan = shared.directory.quotaPlan(call.consumer.plan) else { return }
        announceExhausted(shared.quotas.exhaustionToAnnounce(states, consumer: call.consumer, plan: plan), call: call, at: now)
    }

    private func announceExhausted(_ limits: [AppliedLimit], call: ProxiedCall, at now: Date) {
        guard !limits.isEmpty, let target = call.route.product.webhook else { return }
        shared.recorder.enqueueWebhooks(limits.map { QuotaExhaustion.webhook($0, consumer: call.consumer, target: target, at: now) })
    }

    /// Refuses a call that waited for a decision before reaching the upstream (nothing counted).
    private func refuseWaitingCall(_ call: ProxiedCall, _ refusal: ProxyRefusal, extra: [(name: String, value: String)]) {
        guard let context else { return }
        stopBodyTimeout(call)
        recordRefusal(refusal, call: call)
        if !call.requestDone { closeAfterResponse = true }
        state = call.requestDone ? .idle : .discarding
        answer(refusal, version: call.clientVersion, context: context, extra: extra)
    }

    /// Sends the call on a pooled connection, or opens one.
    private func dispatch(_ call: ProxiedCall, context: ChannelHandlerContext) {
        guard let connection = pool.takeIdle(call.upstreamKey) else {
            openConnection(for: call, context: context)
            return
        }
        // A pooled connection may have been closed by the upstream a moment ago; an idempotent
        // call without a body can then be sent again on a new connection. Any other is sent once.
        if call.bodyless, ProxiedCall.isIdempotent(call.method) {
            call.retryable = true
        }
        attach(connection, to: call)
    }

    /// Connects to the call's upstream and sends what waited for the connection.
    private func openConnection(for call: ProxiedCall, context: ChannelHandlerContext) {
        pauseClientReads()
        pool.connect(call.upstreamKey, tls: call.route.tls).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                guard case .forwarding(let current) = state, current === call,
                      let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                    channel.close(promise: nil)
                    return
                }
                attach(connection, to: call)
            case .failure(let error):
                guard case .forwarding(let current) = state, current === call else { return }
                resumeClientReads()
                failCall(call, with: error is UpstreamConnectionLimitReached ? .upstreamBusy : .badGateway, because: error)
            }
        }
    }

    /// Gives the call its connection and sends what waited for it.
    private func attach(_ connection: UpstreamHandler, to call: ProxiedCall) {
        connection.owner = self
        call.upstream = connection
        connection.sendHead(call.upstreamHead, isHead: call.isHead, chunked: call.upstreamChunked)
        for part in call.waitingParts { connection.send(part) }
        call.waitingParts = []
        connection.flush()
        if call.requestDone { armTimeout(call) }
        if connection.isWritable { resumeClientReads() }
    }

    private func sendUpstream(_ part: HTTPClientRequestPart, call: ProxiedCall) {
        guard let upstream = call.upstream else {
            if call.responseStatus == nil {
                call.waitingParts.append(part)
                pauseClientReads()
            }
            return
        }
        upstream.send(part)
        if !upstream.isWritable { pauseClientReads() }
    }

    /// Moves the body deadline of a call whose request is still being read (not while reads
    /// are paused: the call is then waiting for Tollgate, not for the client).
    private func armBodyTimeout(_ call: ProxiedCall) {
        guard !call.requestDone, !readsPaused else { return }
        call.bodyDeadline = (context?.eventLoop.now ?? .now()) + shared.configuration.edge.bodyTimeout
    }

    private func stopBodyTimeout(_ call: ProxiedCall) {
        call.bodyDeadline = .distantFuture
    }

    private func armTimeout(_ call: ProxiedCall) {
        call.readDeadline = (context?.eventLoop.now ?? .now()) + shared.configuration.readTimeout
    }

    /// The ticker's look at the call in flight: a body paused too long (408, and the connection
    /// ends, as the rest of the request will not come), an upstream silent too long (504).
    func deadlinesDue(at now: NIODeadline) {
        guard case .forwarding(let call) = state else { return }
        if call.bodyDeadline <= now, !call.requestDone, !readsPaused {
            closeAfterResponse = true
            failCall(call, with: .requestTimeout)
        } else if let deadline = call.readDeadline, deadline <= now {
            failCall(call, with: .gatewayTimeout)
        }
    }

    /// Ends a call that went wrong: answers 502/503/504/408 when nothing was sent yet,
    /// otherwise cuts the client connection (a half-sent answer cannot be repaired). A call the
    /// upstream never answered gives its quota back: Tollgate's own failures cost nothing.
    private func failCall(_ call: ProxiedCall, with refusal: ProxyRefusal, because reason: (any Error)? = nil) {
        call.readDeadline = nil
        stopBodyTimeout(call)
        call.upstream?.close()
        call.upstream = nil
        if call.responseStatus == nil, let counted = call.counted {
            call.counted = nil
            shared.quotas.giveBack(counted)
        }
        var metadata: Logger.Metadata = [
            "request_id": "\(call.requestID)", "product": "\(call.consumer.product)", "status": "\(refusal.status.code)",
            "answered": "\(call.responseHeadSent || call.awaitingDurability)",
        ]
        // Connection and TLS errors name the failure (a refused connection, a certificate that
        // does not verify), never a header or the upstream's secret.
        if let reason { metadata["reason"] = "\(reason)" }
        shared.logger.info("call failed", metadata: metadata)
        guard let context else { return }
        if call.responseHeadSent || call.awaitingDurability {
            context.close(promise: nil)
            return
        }
        recordRefusal(refusal, call: call)
        if !call.requestDone { closeAfterResponse = true }
        state = call.requestDone ? .idle : .discarding
        // No rate-limit headers: the call was given back, so they would count it.
        answer(refusal, version: call.clientVersion, context: context)
    }

    private func answer(
        _ refusal: ProxyRefusal, version: HTTPVersion, context: ChannelHandlerContext, extra: [(name: String, value: String)] = []
    ) {
        let body = refusal.body
        var buffer = context.channel.allocator.buffer(capacity: 256 + body.utf8.count)
        ResponseHead.writeStatusLine(version: version, status: refusal.status, into: &buffer)
        for field in extra { ResponseHead.writeField(field.name, field.value, into: &buffer) }
        buffer.writeStaticString("Content-Type: application/json; charset=utf-8\r\nContent-Length: ")
        ResponseHead.writeDecimal(body.utf8.count, into: &buffer)
        buffer.writeStaticString("\r\n")
        for (name, value) in refusal.extraHeaders { ResponseHead.writeField(name, value, into: &buffer) }
        ResponseHead.writeConnection(closeAfter: closeAfterResponse, version: version, into: &buffer)
        buffer.writeStaticString("\r\n")
        if !answeringHead { buffer.writeString(body) }
        responseFraming = .raw
        finishResponse(context: context, last: buffer)
    }

    /// Ends the answer being written: `last` (what is left of it), the end of a chunked body,
    /// one flush; then the connection closes, or the next pipelined request is handled.
    private func finishResponse(context: ChannelHandlerContext, last: ByteBuffer? = nil) {
        var bytes = last ?? context.channel.allocator.buffer(capacity: responseFraming == .chunked ? 5 : 0)
        responseFraming.appendEnd(to: &bytes)
        responseFraming = .raw
        responseOpen = false
        if !closeAfterResponse, case .idle = state { connectionGuard?.requestFinished() }
        if closeAfterResponse {
            received = ByteBuffer()
            context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
            // Written (or queued to be): the next answer reuses its storage once it was sent,
            // unless it grew large (a held body).
            if bytes.capacity <= Self.reusedBufferLimit { spareAnswer = bytes }
            if received.readableBytes > 0 { readRequests(context: context) }
            if pendingRead, !holdsReads {
                pendingRead = false
                context.read()
            }
        }
    }

    /// A graceful shutdown: an idle connection closes now, a busy one after its answer.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        if case .idle = state, received.readableBytes == 0 {
            context.close(promise: nil)
        } else {
            closeAfterResponse = true
        }
    }

    /// An empty buffer: `spare`'s storage when nothing else holds it any more (it was sent),
    /// else new storage.
    private func reusedBuffer(_ spare: inout ByteBuffer?, capacity: Int, context: ChannelHandlerContext) -> ByteBuffer {
        guard var buffer = spare.take() else { return context.channel.allocator.buffer(capacity: capacity) }
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    // MARK: Local paths

    /// Hands a local request, read in full, to its responder and writes the answer. Reads stop
    /// meanwhile, so a pipelined request waits for it.
    private func answerLocally(_ call: LocalCall, context: ChannelHandlerContext) {
        state = .answeringLocally
        pauseClientReads()
        let request = LocalRequest(
            head: call.head, body: call.body,
            clientAddress: UpstreamRequest.ClientAddresses(
                peer: clientAddress, forwardedFor: call.head.headers["X-Forwarded-For"],
                trusted: shared.configuration.edge.trustedProxies).client,
            isTLS: shared.configuration.tls != nil)
        let responder = call.responder
        let loop = context.eventLoop
        let promise = loop.makePromise(of: LocalResponse.self)
        promise.completeWithTask { await responder.respond(to: request) }
        promise.futureResult.assumeIsolated().whenSuccess { [self] response in
            guard case .answeringLocally = state, let context = self.context else { return }
            state = .idle
            writeLocal(response, head: call.head, context: context)
            resumeClientReads()
        }
    }

    private func writeLocal(_ response: LocalResponse, head: HTTPRequestHead, context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: 256 + response.body.readableBytes)
        ResponseHead.writeOwn(
            version: head.version, status: response.status, headers: response.headers, body: response.body,
            closeAfter: closeAfterResponse, requestIsHead: head.method == .HEAD, into: &buffer)
        responseFraming = .raw
        finishResponse(context: context, last: buffer)
    }

    // MARK: Recording

    /// Records a refusal of a known consumer (for analytics, never billed).
    private func recordRefusal(_ refusal: ProxyRefusal, method: String, path: String, consumer: Consumer) {
        let event = UsageEvent(
            id: RandomID.timeOrdered("evt"), source: .gateway, occurredAt: Date(), timeFromSender: true,
            subscription: consumer.subscription, customer: consumer.customer, product: consumer.product, endpoint: nil,
            method: method, path: path, status: Int(refusal.status.code), latencyMicroseconds: 0,
            requestBytes: nil, responseBytes: nil, billable: false)
        shared.recorder.record(event, on: context?.eventLoop)
    }

    private func recordRefusal(_ refusal: ProxyRefusal, call: ProxiedCall) {
        shared.recorder.record(makeEvent(call, status: Int(refusal.status.code), billable: false), on: context?.eventLoop)
    }

    private func makeEvent(_ call: ProxiedCall, status: Int, billable: Bool) -> UsageEvent {
        UsageEvent(
            id: call.eventID, source: .gateway,
            occurredAt: call.occurredAt, timeFromSender: true, subscription: call.consumer.subscription, customer: call.consumer.customer,
            product: call.consumer.product, endpoint: call.endpoint, method: call.method, path: call.path,
            status: status, latencyMicroseconds: Int((NIODeadline.now() - call.startedAt).nanoseconds / 1000),
            requestBytes: call.requestBytes, responseBytes: call.responseBytes, billable: billable)
    }
}

// MARK: Upstream side

extension ProxyHandler: UpstreamOwner, UsageDurabilityObserver {
    func upstreamRead(_ part: UpstreamResponsePart) {
        guard case .forwarding(let call) = state, let context else { return }
        if call.responseEnded {
            // An upstream that talks after its answer ended is not reused.
            call.upstreamReusable = false
            return
        }
        switch part {
        case .head(let head):
            if head.status == .switchingProtocols {
                // Never asked for (upgrades are refused): the connection is no longer HTTP.
                call.upstreamReusable = false
                failCall(call, with: .badGateway)
                return
            }
            if head.status.code >= 100 && head.status.code < 200 { return }
            call.responseStatus = Int(head.status.code)
            call.upstreamReusable = head.isKeepAlive
            if let length = head.contentLength {
                call.responseBytes = length
            } else if call.clientVersion == .http1_0 {
                closeAfterResponse = true  // HTTP/1.0 has no chunked framing: the end is the close.
            }
            armTimeout(call)
            var clientHead = reusedBuffer(&spareAnswer, capacity: 512, context: context)
            responseFraming = ResponseHead.writeForwarded(
                head, clientVersion: call.clientVersion, closeAfter: closeAfterResponse, requestIsHead: call.isHead,
                extra: call.quotaHeaders, into: &clientHead)
            if call.billable {
                call.awaitingDurability = true
                call.held = clientHead
                shared.recorder.record(
                    makeEvent(call, status: Int(head.status.code), billable: true), observedBy: self, call: call,
                    quota: call.counted?.shared ?? [], on: context.eventLoop)
            } else {
                shared.recorder.record(
                    makeEvent(call, status: Int(head.status.code), billable: false), quota: call.counted?.shared ?? [],
                    on: context.eventLoop)
                call.responseHeadSent = true
                responseOpen = true
                context.write(wrapOutboundOut(clientHead), promise: nil)
            }
        case .body(let buffer):
            armTimeout(call)
            if call.awaitingDurability {
                if call.held != nil { responseFraming.append(buffer, to: &call.held!) }
                call.heldBytes += buffer.readableBytes
                if call.heldBytes > ProxiedCall.maxHeldBytes { call.upstream?.pauseReads() }
            } else {
                switch responseFraming {
                case .raw:
                    context.write(wrapOutboundOut(buffer), promise: nil)
                case .chunked:
                    var framed = context.channel.allocator.buffer(capacity: buffer.readableBytes + 16)
                    responseFraming.append(buffer, to: &framed)
                    if framed.readableBytes > 0 { context.write(wrapOutboundOut(framed), promise: nil) }
                case .suppressed:
                    break
                }
                if !context.channel.isWritable { call.upstream?.pauseReads() }
            }
        case .end:
            call.readDeadline = nil
            call.responseEnded = true
            if call.awaitingDurability {
                call.heldEnd = true
            } else {
                completeCall(call, context: context)
            }
        }
    }

    /// A billable call's usage is durable (its held answer goes out) or could not be written.
    func usageResolved(for resolved: AnyObject, _ result: Result<Void, any Error>) {
        guard case .forwarding(let call) = state, call === resolved, let context else { return }
        call.awaitingDurability = false
        switch result {
        case .failure:
            call.held = nil
            failCall(call, with: .usageNotRecorded)
        case .success:
            call.responseHeadSent = true
            let held = call.held ?? context.channel.allocator.buffer(capacity: 0)
            call.held = nil
            if call.heldEnd {
                // The whole answer goes in one write, with the end of its body.
                completeCall(call, context: context, last: held)
            } else if call.endedEarly {
                context.writeAndFlush(wrapOutboundOut(held)).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
            } else {
                responseOpen = true
                context.writeAndFlush(wrapOutboundOut(held), promise: nil)
                if context.channel.isWritable { call.upstream?.resumeReads() }
            }
        }
    }

    /// The upstream's answer is complete: end the client's answer and return the connection.
    private func completeCall(_ call: ProxiedCall, context: ChannelHandlerContext, last: ByteBuffer? = nil) {
        call.responseHeadSent = true
        if let upstream = call.upstream {
            upstream.resumeReads()
            call.upstream = nil
            if call.requestDone && call.upstreamReusable {
                pool.release(upstream, key: call.upstreamKey)
            } else {
                upstream.close()
            }
        }
        if !call.requestDone { closeAfterResponse = true }
        state = call.requestDone ? .idle : .discarding
        resumeClientReads()
        finishResponse(context: context, last: last)
    }

    func upstreamReadComplete() {
        guard case .forwarding(let call) = state, !call.awaitingDurability else { return }
        context?.flush()
    }

    func upstreamClosed(after error: (any Error)?) {
        guard case .forwarding(let call) = state else { return }
        call.upstream = nil
        if call.awaitingDurability {
            // The answer ended early while it waited for its usage to be durable: what came of
            // it is sent then, as it came, and the client connection is cut after it.
            call.readDeadline = nil
            call.endedEarly = true
            return
        }
        if call.retryable, call.responseStatus == nil, let context {
            call.retryable = false
            call.readDeadline = nil
            call.waitingParts = call.requestDone ? [.end(nil)] : []
            openConnection(for: call, context: context)
            return
        }
        failCall(call, with: .badGateway, because: error)
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeClientReads() }
    }
}
