import Hummingbird
import Metrics
import NIOCore
import Prometheus

/// The process's metrics: one Prometheus registry behind swift-metrics, set up once however
/// many servers the process starts (tests start many), and its text for `GET /metrics`.
public enum TollgateMetrics {
    /// The registry every `Counter`, `Gauge` and `Timer` of the process reports to.
    public static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Commits take milliseconds; the default buckets start at 5 ms.
        factory.durationHistogramBuckets["tollgate_usage_commit_seconds"] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        factory.durationHistogramBuckets["tollgate_upstream_latency_seconds"] = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }()

    /// Makes `registry` the process's metrics backend, the first time only; later calls do nothing.
    public static func bootstrap() {
        _ = registry
    }

    /// Every metric in Prometheus' text exposition format.
    public static func text() -> String {
        registry.emitToString()
    }

    /// The Prometheus text exposition of every metric.
    static func response() -> Response {
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
