import ArtifactStore
import Foundation
import Serving

/// Prints the progress of pulls to standard error: a redrawn bar on a terminal (bytes, rate,
/// ETA), a plain line every few seconds otherwise.
struct ProgressReporter {
    let progress: [TransferProgress]
    let isTerminal = isatty(2) == 1

    func run() async {
        let start = ContinuousClock.now
        var lastLine = start
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            let now = ContinuousClock.now
            let received = progress.reduce(0) { $0 + $1.receivedBytes }
            let expected = progress.reduce(0) { $0 + $1.expectedBytes }
            let seconds = max(0.001, (now - start) / .seconds(1))
            let rate = Double(received) / seconds
            if isTerminal {
                let fraction = expected > 0 ? min(1, Double(received) / Double(expected)) : 0
                let filled = Int(fraction * 30)
                let eta = rate > 0 && expected > received ? "\(Int(Double(expected - received) / rate))s" : "-"
                let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
                FileHandle.standardError.write(
                    Data("\r[\(bar)] \(Self.size(received)) / \(Self.size(expected))  \(Self.size(Int64(rate)))/s  ETA \(eta)   ".utf8))
            } else if now - lastLine >= .seconds(2) {
                lastLine = now
                FileHandle.standardError.write(Data("pull: \(received) of \(expected) bytes (\(Self.size(Int64(rate)))/s)\n".utf8))
            }
        }
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func size(_ bytes: Int64) -> String { ByteSize.describe(bytes) }
}
