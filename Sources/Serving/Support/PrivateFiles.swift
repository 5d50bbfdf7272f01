import Access
public import Foundation
public import Logging

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What Pedigree writes holds prompts, outputs, keys and weights: readable by its own account
/// only. The process creates everything with mode 0600 (files) and 0700 (folders) by its umask,
/// set before anything is opened, so no file exists for a moment with a wider mode; at start the
/// files a server keeps are checked, and any that another account could read is narrowed (and
/// logged: it was made by something else, or by an older version).
public enum PrivateFiles {
    /// Files and folders created from now on are private to this account.
    public static func restrictNewFiles() { umask(0o077) }

    /// Narrows `paths` that exist (files to 0600, folders to 0700) where group or others have any
    /// access; returns the paths that were narrowed.
    @discardableResult
    public static func narrow(_ paths: [String], logger: Logger) -> [String] {
        var narrowed: [String] = []
        for path in paths {
            // The entry itself, not what a link points to (FileManager reads it with lstat).
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                let type = attributes[.type] as? FileAttributeType, let mode = (attributes[.posixPermissions] as? NSNumber)?.uint16Value
            else { continue }
            let isFolder = type == .typeDirectory
            guard type == .typeRegular || isFolder, mode & 0o077 != 0 else { continue }
            let wanted: mode_t = isFolder ? 0o700 : 0o600
            guard chmod(path, wanted) == 0 else {
                logger.warning("cannot narrow the mode of a private file", metadata: ["path": "\(path)", "errno": "\(errno)"])
                continue
            }
            logger.warning(
                "narrowed the mode of a private file (other accounts could read it)",
                metadata: ["path": "\(path)", "was": "\(String(mode & 0o777, radix: 8))", "now": "\(String(wanted, radix: 8))"])
            narrowed.append(path)
        }
        return narrowed
    }

    /// The files and folders a server or worker keeps under `configuration`.
    public static func kept(by configuration: ServingConfiguration) -> [String] {
        let cache = configuration.cache
        var paths = ["objects", "git", "trees"].map { cache.appendingPathComponent($0).path }
        paths.insert(cache.path, at: 0)
        paths.append(configuration.keys.url.path)
        paths.append(configuration.ledgerSaltFile ?? cache.appendingPathComponent("ledger-salt").path)
        paths.append(configuration.receiptKeyPath)
        if let tls = configuration.tls { paths.append(tls.key) }
        let ledger = configuration.ledgerURL
        if ledger.hasPrefix("sqlite:") {
            let file = String(ledger.dropFirst("sqlite:".count))
            paths += [file, file + "-wal", file + "-shm"]
        }
        return paths
    }
}
