import Access
import Foundation
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import Serving
import Synchronization

/// TLS on the listener: the certificate chain and key of `tls-certificate` / `tls-key`, read at
/// start (a server whose files cannot be used does not start) and read again at the first
/// handshake after either file changed, so a renewed certificate (cert-manager, certbot) is
/// served without a restart. A renewal that cannot be read is logged and the last good pair kept.
/// HTTPS and WSS share the port; plain HTTP sent to it fails the handshake.
final class ListenerTLS: Sendable {
    struct Pair {
        var chain: [NIOSSLCertificate]
        var key: NIOSSLPrivateKey
        var stamps: [FileStamp?]
    }
    let files: ServingConfiguration.TLSFiles
    private let pair: Mutex<Pair>
    private let logger: Logger

    init(_ files: ServingConfiguration.TLSFiles, logger: Logger) throws {
        self.files = files
        self.logger = logger
        pair = Mutex(try Self.load(files))
    }

    private static func load(_ files: ServingConfiguration.TLSFiles) throws -> Pair {
        let stamps = [FileStamp(path: files.certificate), FileStamp(path: files.key)]
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
            guard !chain.isEmpty else { throw ServingError(.badUserInput, "tls-certificate \(files.certificate) holds no certificate") }
            let key = try NIOSSLPrivateKey(file: files.key, format: .pem)
            return Pair(chain: chain, key: key, stamps: stamps)
        } catch let error as ServingError {
            throw error
        } catch {
            throw ServingError(.badUserInput, "tls-certificate \(files.certificate) / tls-key \(files.key) cannot be used: \(error)")
        }
    }

    /// The pair to serve now, read again when a file changed since it was read.
    func current() -> (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
        let stamps = [FileStamp(path: files.certificate), FileStamp(path: files.key)]
        let held = pair.withLock { $0 }
        guard held.stamps != stamps else { return (held.chain, held.key) }
        do {
            let fresh = try Self.load(files)
            pair.withLock { $0 = fresh }
            logger.info("tls certificate reloaded", metadata: ["certificate": "\(files.certificate)"])
            return (fresh.chain, fresh.key)
        } catch {
            // Half-written files during a renewal: try again at the next handshake.
            logger.warning("tls certificate not reloaded; serving the previous one", metadata: ["error": "\(error)"])
            return (held.chain, held.key)
        }
    }

    /// The server's TLS configuration: TLS 1.2 or later, HTTP/1.1 by ALPN, and every handshake
    /// served the current pair.
    func configuration() -> TLSConfiguration {
        let (chain, key) = current()
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        tls.sslContextCallback = { [self] _, promise in
            let (chain, key) = current()
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = chain.map { .certificate($0) }
            override.privateKey = .privateKey(key)
            promise.succeed(override)
        }
        return tls
    }

    /// `base` behind TLS.
    func server(_ base: HTTPServerBuilder) throws -> HTTPServerBuilder {
        try .tls(base, tlsConfiguration: configuration())
    }
}
