/// Everything that can be wrong with a checkpoint or a request, each naming the file, field or
/// tensor at fault so a user can fix it without a debugger.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case io(file: String, reason: String)
    case missingFile(String, hint: String)
    case badSafetensors(file: String, reason: String)
    case badJSON(file: String, reason: String)
    case missingConfigField(file: String, field: String)
    case badConfigField(file: String, field: String, reason: String)
    case unsupportedArchitecture(file: String, found: String, supported: [String])
    case missingTensor(name: String, directory: String)
    case tensorShape(name: String, expected: [Int], found: [Int])
    case tensorDType(name: String, found: String, supported: [String])
    /// Prompt plus tokens to generate (`generate` may be 0) against the context length.
    case promptTooLong(prompt: Int, generate: Int, limit: Int)
    case invalidRequest(String)

    public var description: String {
        switch self {
        case let .io(file, reason): return "\(file): \(reason)"
        case let .missingFile(file, hint): return "\(file): no such file (\(hint))"
        case let .badSafetensors(file, reason): return "\(file): invalid safetensors file: \(reason)"
        case let .badJSON(file, reason): return "\(file): invalid JSON: \(reason)"
        case let .missingConfigField(file, field):
            return "\(file): required field '\(field)' is missing (it changes the model's math, so Shoal will not guess it)"
        case let .badConfigField(file, field, reason): return "\(file): field '\(field)': \(reason)"
        case let .unsupportedArchitecture(file, found, supported):
            return "\(file): architecture '\(found)' is not supported; supported: \(supported.joined(separator: ", "))"
        case let .missingTensor(name, directory): return "\(directory): tensor '\(name)' not found in the checkpoint"
        case let .tensorShape(name, expected, found):
            return "tensor '\(name)' has shape \(found), expected \(expected)"
        case let .tensorDType(name, found, supported):
            return "tensor '\(name)' has dtype \(found); supported: \(supported.joined(separator: ", "))"
        case let .promptTooLong(prompt, generate, limit):
            if generate == 0 { return "\(prompt) positions exceed the model's context of \(limit) tokens (max_position_embeddings)" }
            return "a prompt of \(prompt) tokens plus \(generate) to generate exceeds the model's context of \(limit) tokens (max_position_embeddings); shorten the prompt or lower --max-tokens"
        case let .invalidRequest(reason): return reason
        }
    }
}
