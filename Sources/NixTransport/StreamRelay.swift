/// Copies bytes both ways between two streams, as `nix-bridge --stdio` does when it hands its
/// client to the long-running service: what one side sends, the other receives unchanged.
public enum StreamRelay {
    /// Relays until `b` ends (the service hung up, or answered the client's end of input),
    /// passing the end of `a`'s input on as a half close. Returns why it ended, if by an error.
    public static func run(_ a: any ByteStream, _ b: any ByteStream, chunk: Int = 256 << 10) async -> String? {
        let forward = Task {
            do {
                while true {
                    let bytes = try await a.read(maxLength: chunk)
                    if bytes.isEmpty { break }
                    try await b.write(bytes)
                }
            } catch {}
            await b.closeWrite()
        }
        defer { forward.cancel() }
        do {
            while true {
                let bytes = try await b.read(maxLength: chunk)
                if bytes.isEmpty { break }
                try await a.write(bytes)
            }
            await a.closeWrite()
            return nil
        } catch {
            return "\(error)"
        }
    }
}
