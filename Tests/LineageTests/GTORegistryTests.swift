import Foundation
import GitStore
import Lineage
import Testing

struct GTORegistryTests {
    func tag(_ name: String, _ commit: String, at time: Double = 0, annotated: Bool = true) -> TagInfo {
        let tagger = Signature(name: "t", email: "t@example.com", date: Date(timeIntervalSince1970: time), offsetMinutes: 0)
        return TagInfo(name: name, commit: commit, tagger: annotated ? tagger : nil, message: nil)
    }

    @Test func versionsAndStagesFollowGTORules() {
        let registry = GTORegistry(tags: [
            tag("m@v1.0.0", "c1"), tag("m@v1.10.0", "c3"), tag("m@v1.2.0", "c2"), tag("m@v1.2.0!", "c2"),
            tag("m#prod#1", "c1", at: 1), tag("m#prod#3", "c3", at: 3), tag("m#staging#2", "c2", at: 2),
            tag("m#staging!#4", "c2", at: 4), tag("m@v9.0.0", "c9", annotated: false),
            tag("sub=n@v0.1.0", "c5"),
        ])
        #expect(registry.versions(of: "m").map(\.name) == ["v1.10.0", "v1.0.0"])
        #expect(registry.stages(of: "m") == ["prod"])
        #expect(registry.stage("prod", of: "m") == "c3")
        #expect(registry.stage("staging", of: "m") == nil)
        #expect(registry.version("v0.1.0", of: "sub:n")?.commit == "c5")
    }

    @Test func theNextTagsAreTheOnesGTOWrites() {
        let registry = GTORegistry(tags: [
            tag("m@v1.0.0", "c1"), tag("m#prod#1", "c1"), tag("m#staging!#4", "c1"), tag("other#prod#9", "c2"), tag("sub=n#dev#2", "c3"),
        ])
        #expect(GTORegistry.registrationTag(model: "sub:n", version: "v1.0.0").name == "sub=n@v1.0.0")
        #expect(GTORegistry.registrationTag(model: "m", version: "v2.0.0").message == "Registering artifact m version v2.0.0")
        let assignment = registry.assignmentTag(model: "m", stage: "prod", version: "v1.0.0")
        #expect(assignment?.name == "m#prod#5")
        #expect(assignment?.message == "Assigning stage prod to artifact m version v1.0.0")
        #expect(registry.assignmentTag(model: "sub:n", stage: "prod", version: "v1.0.0")?.name == "sub=n#prod#3")
        #expect(registry.assignmentTag(model: "new", stage: "prod", version: "v0.0.1")?.name == "new#prod#1")
        // A planted tag at the largest number: no next number, no trap.
        let full = GTORegistry(tags: [tag("m#prod#\(Int.max)", "c1")])
        #expect(full.assignmentTag(model: "m", stage: "dev", version: "v1.0.0") == nil)
    }
}
