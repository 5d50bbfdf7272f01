import ArgumentParser
import ArtifactStore
import Foundation
import Serving

/// Prints a service error with its code and exits non-zero, instead of a stack of Swift types.
func orExit<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        throw report(error)
    }
}

/// The synchronous form of `orExit`.
func orExit<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch {
        throw report(error)
    }
}

private func report(_ error: any Error) -> ExitCode {
    let (code, message) = ErrorCode.classify(error)
    FileHandle.standardError.write(Data("error: \(code.rawValue): \(message)\n".utf8))
    return ExitCode(code == .internalError ? 70 : 1)
}

func encodeJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}
