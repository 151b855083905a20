/// A load-time failure, naming the file and the JSON path (e.g. `pre_tokenizer.pretokenizers[1].type`)
/// at fault, so a user with a broken or exotic checkpoint knows exactly what to look at.
public struct TokenizerError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or caller-provided source name) the problem is in.
    public let file: String
    /// JSON path of the offending field; empty when the problem is with the file as a whole.
    public let path: String
    public let message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}
