import Lineage
import Testing

struct RevisionSpecTests {
    @Test(arguments: [
        ("smollm2-135m", "smollm2-135m", RevisionSpec.Selector.latest),
        ("smollm2-135m@main", "smollm2-135m", .revision("main")),
        ("smollm2-135m@v1.2.0", "smollm2-135m", .revision("v1.2.0")),
        ("smollm2-135m#prod", "smollm2-135m", .stage("prod")),
        ("sub/dir:model@feature/x", "sub/dir:model", .revision("feature/x")),
        ("tiny@abc1234", "tiny", .revision("abc1234")),
    ])
    func validSpecs(text: String, model: String, selector: RevisionSpec.Selector) throws {
        let spec = try RevisionSpec(parsing: text)
        #expect(spec.model == model)
        #expect(spec.selector == selector)
    }

    @Test func bareSHAHasNoModel() throws {
        let spec = try RevisionSpec(parsing: String(repeating: "a", count: 40))
        #expect(spec.model == nil)
    }

    @Test(arguments: [
        "; rm -rf /", "../..", "m@../..", "m@a..b", "m@$(id)", "m@`id`", "m@x y", "m@main\u{0}", "",
        "m@" + String(repeating: "a", count: 10_000), "m#pr od", "m@-x", "m@HEAD@{1}", "m@x.lock", "m@é",
    ])
    func malformedSpecsAreRejected(text: String) {
        #expect {
            try RevisionSpec(parsing: text)
        } throws: { error in
            if case .invalidRevision = error as? LineageError { return true }
            return false
        }
    }
}
