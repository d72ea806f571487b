import Foundation
import NIOCore
import NIOPosix

/// A real nginx in front of several gateway nodes (round robin, keep-alive to each), as a
/// deployment puts a load balancer in front of them (docs/deploy.md). Debian's `nginx`.
public final class LoadBalancer: Sendable {
    public let port: Int
    private let process: Process
    public var url: String { "http://127.0.0.1:\(port)" }

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    /// The nginx binary: `TOLLGATE_TEST_NGINX`, or Debian's.
    static var executable: String {
        ProcessInfo.processInfo.environment["TOLLGATE_TEST_NGINX"] ?? "/usr/sbin/nginx"
    }

    /// Starts nginx on a free loopback port, balancing over `backends` (ports on 127.0.0.1).
    public static func start(backends: [Int]) async throws -> LoadBalancer {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestFailure("nginx not found at \(executable) (Debian: apt-get install nginx; scripts/test installs it as root)")
        }
        let directory = TemporaryDirectory.make()
        let port = try freePort()
        let servers = backends.map { "        server 127.0.0.1:\($0);" }.joined(separator: "\n")
        let root = getuid() == 0 ? "user root;\n" : ""
        let configuration = """
            \(root)daemon off;
            master_process on;
            worker_processes 1;
            pid \(directory.path)/nginx.pid;
            error_log \(directory.path)/error.log warn;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(directory.path)/body;
                proxy_temp_path \(directory.path)/proxy;
                fastcgi_temp_path \(directory.path)/fastcgi;
                uwsgi_temp_path \(directory.path)/uwsgi;
                scgi_temp_path \(directory.path)/scgi;
                upstream gateways {
            \(servers)
                    keepalive 16;
                }
                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        proxy_pass http://gateways;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_next_upstream off;
                    }
                }
            }
            """
        let file = directory.appendingPathComponent("nginx.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["-p", directory.path, "-c", file.path, "-e", directory.path + "/error.log"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let balancer = LoadBalancer(port: port, process: process)
        do {
            try await waitUntil("nginx to listen on \(port)") {
                guard process.isRunning else {
                    let log = (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
                    throw TestFailure("nginx exited: \(log)")
                }
                return (try? await TestHTTP.request("GET", "http://127.0.0.1:\(port)/_nothing", timeout: 2)) != nil
            }
        } catch {
            balancer.stop()
            throw error
        }
        return balancer
    }

    /// Stops nginx (TERM: master and workers).
    public func stop() {
        if process.isRunning { process.terminate() }
    }

    /// A port nothing listens on now (bound and released at once).
    private static func freePort() throws -> Int {
        let group = MultiThreadedEventLoopGroup.singleton
        let channel = try ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).wait()
        let port = channel.localAddress?.port ?? 0
        try channel.close().wait()
        return port
    }
}
