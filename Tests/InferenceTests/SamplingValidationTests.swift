import Testing

@testable import Inference

/// Sampling values are checked where they enter: each out-of-range value is `badInput`, never a
/// trap further down (the sampler converts to Int32 and Float).
@Suite struct SamplingValidationTests {
    @Test(arguments: [
        SamplingParameters(topK: Int(Int32.max) + 1), SamplingParameters(topK: -1), SamplingParameters(topK: Int.max),
        SamplingParameters(temperature: .nan), SamplingParameters(temperature: 11), SamplingParameters(topP: 0),
        SamplingParameters(topP: .nan), SamplingParameters(minP: 2), SamplingParameters(repeatPenalty: .infinity),
        SamplingParameters(repeatPenalty: 0), SamplingParameters(maxTokens: 0), SamplingParameters(maxTokens: 1_000_000),
        SamplingParameters(stop: Array(repeating: "x", count: 9)), SamplingParameters(stop: [""]),
    ])
    func outOfRangeValuesAreBadInput(parameters: SamplingParameters) {
        #expect {
            _ = try parameters.validated(maxTokensLimit: 1024)
        } throws: { error in
            if case .badInput = error as? InferenceError { return true }
            return false
        }
    }

    @Test func valuesAtTheirBoundsPass() throws {
        _ = try SamplingParameters(temperature: 0, topK: 1_000_000, topP: 1, minP: 0, maxTokens: 1024).validated(maxTokensLimit: 1024)
        _ = try SamplingParameters(temperature: 10, topK: 0, minP: 1, maxTokens: 1).validated(maxTokensLimit: 1024)
    }

    @Test(arguments: [Int64(-1), Int64(UInt32.max), Int64.max, Int64.min])
    func seedsOutsideTheirRangeAreBadInput(seed: Int64) {
        #expect(throws: InferenceError.self) { try SamplingParameters.seed(seed) }
    }
}
