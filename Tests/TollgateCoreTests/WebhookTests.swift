import Foundation
import Testing
import TollgateCore

/// The retry schedule, with an injected clock: no test sleeps.
@Suite("Webhook retry schedule")
struct WebhookScheduleTests {
    let start = Date(timeIntervalSince1970: 1_790_000_000)

    @Test(arguments: [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (12, 2048.0), (13, 3600.0), (40, 3600.0)])
    func delaysDoubleFromOneSecondUpToOneHour(attempts: Int, delay: Double) {
        #expect(WebhookRetrySchedule().delay(afterAttempts: attempts) == delay)
    }

    @Test func retryAfterWinsWhenItAsksForLonger() {
        let schedule = WebhookRetrySchedule()
        #expect(schedule.delay(afterAttempts: 1, retryAfter: 30) == 30)
        #expect(schedule.delay(afterAttempts: 5, retryAfter: 3) == 16)
    }

    @Test func deliveriesAreTriedForThreeDaysThenGivenUp() {
        let schedule = WebhookRetrySchedule()
        var now = start
        var attempts = 0
        while let next = schedule.nextAttempt(afterAttempts: attempts + 1, firstAttempt: start, now: now) {
            attempts += 1
            #expect(next > now)
            now = next
        }
        #expect(now.timeIntervalSince(start) <= 3 * 86_400)
        #expect(now.timeIntervalSince(start) > 3 * 86_400 - 3600)
        // 1+2+…+2048 s, then hourly until three days: about 84 attempts.
        #expect((80...90).contains(attempts))
    }
}

@Suite("Webhook signature")
struct WebhookSignatureTests {
    @Test func aKnownVector() {
        // HMAC-SHA256("whsec_123", "1700000000.{\"id\":\"evt_1\"}"), computed independently with Python's hmac module.
        let header = WebhookSignature.sign(body: Array(#"{"id":"evt_1"}"#.utf8), secret: "whsec_123", timestamp: 1_700_000_000)
        #expect(header == "t=1700000000,v1=86a47f98527773c7fb9ab08367816a6efa50cf8fa44c0e143c5e0d3c41f0a611")
    }

    @Test func verifyAcceptsTheSignedBodyOnlyWithinTolerance() {
        let body = Array(#"{"id":"evt_1","type":"subscription.created"}"#.utf8)
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let header = WebhookSignature.sign(body: body, secret: "s", timestamp: 1_700_000_000)
        #expect(WebhookSignature.verify(header: header, body: body, secret: "s", now: now))
        #expect(!WebhookSignature.verify(header: header, body: body + [0x20], secret: "s", now: now))
        #expect(!WebhookSignature.verify(header: header, body: body, secret: "other", now: now))
        #expect(!WebhookSignature.verify(header: header, body: body, secret: "s", now: now.addingTimeInterval(301)))
        #expect(!WebhookSignature.verify(header: "t=1700000000", body: body, secret: "s", now: now))
    }
}
