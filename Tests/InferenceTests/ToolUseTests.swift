import Foundation
import Testing

@testable import Inference

/// Tools as the engine takes them: checked where they enter (names, the choice, each schema's
/// keywords), recorded in a form that decodes to the same value (a replay renders the same
/// prompt), and offered to llama.cpp's chat code as OpenAI's tool choice means.
@Suite struct ToolUseTests {
    static let weather = ToolFunction(
        name: "get_weather", description: "The weather", parameters: #"{"type":"object","properties":{"city":{"type":"string"}}}"#)

    @Test(arguments: [
        ToolUse(functions: []), ToolUse(functions: [ToolFunction(name: "bad name", parameters: "{}")]),
        ToolUse(functions: [weather, weather]), ToolUse(functions: [ToolFunction(name: "f", parameters: "[1]")]),
        ToolUse(functions: [ToolFunction(name: "f", parameters: #"{"type":"object","not":{}}"#)]),
        ToolUse(functions: [weather], choice: .function("missing")),
        ToolUse(functions: Array(repeating: weather, count: ToolUse.maxFunctions + 1)),
    ])
    func badToolsAreBadInput(tools: ToolUse) {
        #expect(throws: InferenceError.self) { try tools.checked() }
    }

    @Test func aConstrainedAnswerOrStopSequencesCannotAlsoCall() throws {
        var parameters = SamplingParameters(stop: ["\n"])
        parameters.tools = ToolUse(functions: [Self.weather])
        #expect(throws: InferenceError.self) { try parameters.validated(maxTokensLimit: 1024) }
        parameters.tools?.choice = .none
        _ = try parameters.validated(maxTokensLimit: 1024)
    }

    @Test(arguments: [ToolUse.Choice.auto, .none, .required, .function("get_weather")])
    func theRecordDecodesToTheSameTools(choice: ToolUse.Choice) throws {
        let tools = ToolUse(functions: [Self.weather], choice: choice, parallel: false, date: 1_700_000_000)
        let decoded = try JSONDecoder().decode(ToolUse.self, from: JSONEncoder().encode(tools))
        #expect(decoded == tools)
    }

    @Test func aNamedFunctionIsTheOnlyToolOfferedAndRequired() {
        let other = ToolFunction(name: "add", parameters: "{}")
        let offered = ToolUse(functions: [Self.weather, other], choice: .function("add")).offered
        #expect(offered.functions == [other] && offered.choice == "required")
        #expect(ToolUse(functions: [Self.weather], choice: .none).callsPossible == false)
    }

    @Test func plainChatsKeepTheBuiltInRenderingAndToolChatsNeedJinja() {
        let plain = [ChatMessage(role: "user", content: "hi")]
        #expect(!LlamaModel.needsJinja(plain, tools: nil))
        #expect(LlamaModel.needsJinja(plain, tools: ToolUse(functions: [Self.weather])))
        #expect(LlamaModel.needsJinja(plain + [ChatMessage(role: "tool", content: "21", toolCallID: "call_1")], tools: nil))
        // A recorded plain message encodes as before (no empty tool fields).
        let json = String(decoding: try! JSONEncoder().encode(plain[0]), as: UTF8.self)
        #expect(!json.contains("tool"))
    }

    @Test func orderedJSONKeepsTheKeysInTheOrderSent() {
        let body = #"{"tools":[{"function":{"parameters":{"type":"object","required":["b"],"properties":{"b":{},"a":{}}}}}]}"#
        #expect(
            OrderedJSON.text(at: ["tools", "0", "function", "parameters"], in: body)
                == #"{"type":"object","required":["b"],"properties":{"b":{},"a":{}}}"#)
        #expect(OrderedJSON.text(at: ["tools", "1"], in: body) == nil)
        #expect(OrderedJSON.text(at: ["tools"], in: "not json") == nil)
    }
}
