import Foundation
import Testing

@testable import Tokenizer

/// Locates `Tests/Fixtures` from this file, so tests run in any clone without /work/shared.
enum Fixtures {
    static let root: URL = {
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("Fixtures")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("tokenizer").path) {
                return candidate
            }
            dir = dir.deletingLastPathComponent()
        }
        fatalError("Tests/Fixtures not found above \(#filePath)")
    }()

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    static func json(_ relative: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: url(relative)))
    }
}
