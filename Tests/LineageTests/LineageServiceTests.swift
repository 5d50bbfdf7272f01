import Foundation
import GitStore
import TestSupport
import Testing

@testable import Lineage

/// Resolutions are cached, failed ones too, until the next refresh.
struct LineageServiceTests {
    @Test func failedResolutionsAreCachedUntilRefresh() async throws {
        let source = try GitFixture()
        try source.write("README.md", "no models here\n")
        try source.commit("first")
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("pedigree-lineage-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: cache) }
        let service = LineageService(repository: try GitRepository.mirror(source: source.path, into: cache))

        for spec in ["nope", "nope@main", "nope@v9.9.9", "@@", "0123456789abcdef0123456789abcdef01234567"] {
            let before = service.resolutionsComputed
            #expect(throws: LineageError.self) { try service.resolve(spec) }
            #expect(throws: LineageError.self) { try service.resolve(spec) }
            #expect(service.resolutionsComputed == before + 1, "\(spec) was resolved twice")
            #expect(service.cachedLineage(spec) == nil)
        }
        try await service.refresh()
        let before = service.resolutionsComputed
        #expect(throws: LineageError.self) { try service.resolve("nope") }
        #expect(service.resolutionsComputed == before + 1)
    }
}
