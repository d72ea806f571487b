import Foundation
import NIOSSL

/// Certificates a test makes for itself with `openssl`: a private CA, and server certificates
/// for 127.0.0.1 (an IP address subject alternative name) signed by it.
public struct TestCertificates: Sendable {
    /// The folder holding every file.
    public let directory: String
    /// The CA's certificate (PEM): what clients trust.
    public var caPath: String { directory + "/ca.pem" }

    /// Makes a CA in a new temporary folder.
    public static func make() throws -> TestCertificates {
        let directory = TemporaryDirectory.make().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = TestCertificates(directory: directory)
        try certificates.openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Tollgate test CA",
            "-keyout", directory + "/ca.key", "-out", directory + "/ca.pem",
        ])
        return certificates
    }

    /// A server certificate for 127.0.0.1 named `name` (`name.pem`, `name.key`), signed by the CA;
    /// returns the certificate's and the key's paths.
    @discardableResult
    public func server(_ name: String) throws -> (certificate: String, key: String) {
        let key = "\(directory)/\(name).key", request = "\(directory)/\(name).csr", certificate = "\(directory)/\(name).pem"
        let extensions = "\(directory)/\(name).ext"
        try "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            .write(toFile: extensions, atomically: true, encoding: .utf8)
        try openssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", request])
        try openssl([
            "x509", "-req", "-in", request, "-CA", caPath, "-CAkey", directory + "/ca.key", "-CAcreateserial", "-days", "2",
            "-extfile", extensions, "-out", certificate,
        ])
        return (certificate, key)
    }

    /// A server context with the certificate `name` (made by `server(_:)`).
    public func serverContext(_ name: String) throws -> NIOSSLContext {
        let (certificate, key) = try server(name)
        return try NIOSSLContext(configuration: .makeServerConfiguration(
            certificateChain: NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
            privateKey: .privateKey(NIOSSLPrivateKey(file: key, format: .pem))))
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        let printed = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("openssl \(arguments.first ?? "") failed: \(String(decoding: printed, as: UTF8.self))")
        }
    }
}
