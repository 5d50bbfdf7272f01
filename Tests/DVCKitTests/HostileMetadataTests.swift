import Foundation
import Testing

@testable import DVCKit

/// Limits checked before the work they bound: nesting before parsing, matrix size before
/// building, one pass over a TOML text however its values span lines.
struct HostileMetadataTests {
    private func kind(_ body: () throws -> Void) -> DVCError.Kind? {
        do {
            try body()
            return nil
        } catch let error as DVCError {
            return error.kind
        } catch {
            return nil
        }
    }

    @Test(arguments: [
        String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000),
        "a: " + String(repeating: "{b: ", count: 3_000) + "1" + String(repeating: "}", count: 3_000),
        (0..<400).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1",
        String(repeating: "- ", count: 3_000) + "x",
        // An apostrophe inside a plain scalar opens no quote: the brackets after it still count.
        "a: it's\nb: " + String(repeating: "[", count: 5_000),
    ])
    func yamlNestedTooDeeplyIsRefusedBeforeParsing(text: String) {
        #expect(kind { _ = try YAMLLoader.load(Data(text.utf8), file: "params.yaml") } == .tooLarge)
    }

    @Test func yamlBoundNeverUndercountsAndIgnoresQuotedBrackets() throws {
        #expect(YAMLLoader.nestingBound("a:\n  b:\n    c: [1, {d: 2}]\n") >= 4)
        #expect(YAMLLoader.nestingBound(#"a: "[[[[[[[[[[" # [[[[[[[["# + "\nb: '[[[[''[[[['\n") < 4)
        let nested = try YAMLLoader.load(Data("a: 'x''s [[['\nb: [[1]]\n# {{{{{{\n".utf8), file: "p.yaml")
        #expect(nested["a"]?.string == "x's [[[")
        #expect(nested["b"]?.yamlText == "[[1]]")
    }

    @Test func matrixSizeIsCheckedBeforeItIsBuilt() {
        let axis = "[" + (0..<100).map(String.init).joined(separator: ", ") + "]"
        let yaml = "stages:\n  s:\n    matrix:\n      a: \(axis)\n      b: \(axis)\n      c: \(axis)\n      d: \(axis)\n    cmd: echo\n"
        // 10^8 combinations: refused from the product of the axes' lengths.
        #expect(kind { _ = try PipelineFile(path: "dvc.yaml", data: Data(yaml.utf8)) { _ in nil } } == .tooLarge)
    }

    @Test func tomlIsReadInOnePass() throws {
        let values = (0..<20_000).map { "  \($0)," }.joined(separator: "\n")
        let long = try TOMLLoader.load(Data("[train]\nlayers = [\n\(values)\n]\nlr = 0.1\n".utf8), file: "p.toml")
        #expect(long.lookup(dotted: "train.layers")?.sequence?.count == 20_000)
        #expect(long.lookup(dotted: "train.lr")?.string == "0.1")
        // Unterminated: an error naming the line the value started on.
        do {
            _ = try TOMLLoader.load(Data("a = 1\nb = [\n\(values)\n".utf8), file: "p.toml")
            Issue.record("no error")
        } catch let error as DVCError {
            #expect(error.description.contains("line 2") && error.description.contains("unterminated"), "\(error)")
        }
        let deep = "a = " + String(repeating: "[", count: 1_000) + String(repeating: "]", count: 1_000) + "\n"
        #expect(kind { _ = try TOMLLoader.load(Data(deep.utf8), file: "p.toml") } == .malformed)
        // Comments, CRLF line ends and a value after a multi-line array still read.
        let mixed = try TOMLLoader.load(Data("# c\r\nx = [1, # one\r\n 2]\r\ny = 'z' # end\r\n".utf8), file: "p.toml")
        #expect(mixed["x"]?.yamlText == "[1, 2]" && mixed["y"]?.string == "z")
    }
}
