/// A string that is not valid in the encoding it claims to be in.
public enum EncodingError: Error, Equatable, Sendable, CustomStringConvertible {
    case badCharacter(encoding: String, input: String, character: Character)
    case badLength(encoding: String, input: String, expected: Int)
    case overflow(encoding: String, input: String)

    public var description: String {
        switch self {
        case let .badCharacter(enc, input, c):
            return "invalid character '\(c)' in \(enc) string '\(input)'"
        case let .badLength(enc, input, expected):
            return "\(enc) string '\(input)' has length \(input.utf8.count), expected \(expected)"
        case let .overflow(enc, input):
            return "\(enc) string '\(input)' does not fit its byte length (high bits set)"
        }
    }
}
