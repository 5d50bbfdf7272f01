import Testing

@testable import Lineage

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

    /// A version part with no core (`m@v`, a tag `m@v-`) once indexed an empty split and ended the
    /// process; every odd form is simply not a version.
    @Test(arguments: ["v", "v-", "v+", "v-1", "v+x", "v1.2", "v1.2.3.4", "v1..3", "vx.y.z", "v.1.2"])
    func oddVersionsAreNotSemver(text: String) {
        #expect(!RevisionSpec.isSemver(text))
    }

    @Test(arguments: ["v1.2.3", "v10.0.1-rc.1", "v1.2.3+build.5"])
    func versionsAreSemver(text: String) {
        #expect(RevisionSpec.isSemver(text))
    }
}
