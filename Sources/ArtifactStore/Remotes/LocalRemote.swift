import Foundation

#if canImport(Glibc)
    import Glibc
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    import Darwin
    private let systemRead = Darwin.read
#endif

/// A DVC remote that is a folder on this machine (`url = /path` or `file:///path`).
public struct LocalRemote: ObjectRemote {
    public let name: String
    public let root: String

    public init(name: String, root: String) {
        self.name = name
        self.root = root
    }

    public func read(_ key: String, into sink: ObjectSink) async throws {
        let path = root + "/" + key
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            let reason = String(cString: strerror(code))
            throw RemoteFailure(code == ENOENT || code == ENOTDIR ? .notFound : .refused, "\(key): \(reason)")
        }
        defer { close(descriptor) }
        let chunkSize = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            try Task.checkCancellation()
            let count = systemRead(descriptor, buffer.baseAddress, chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw RemoteFailure(.transient, "\(key): \(String(cString: strerror(errno)))")
            }
            if count == 0 { return }
            try sink.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }
}
