import NixCore

/// A request whose list argument may be long (QueryValidPaths of a million paths), read as
/// its bytes arrive: the list item by item, each consumed once read, then the fields after
/// it. Parsing it whole again on every chunk would cost the square of its size. The
/// message cap (`WireLimits.maxMessageLength`) counts every byte of it.
struct ListRequest: Sendable {
    /// The operations read this way: those whose argument is one list a client may make long.
    static let operations: Set<WorkerOp> = [
        .queryValidPaths, .querySubstitutablePaths, .queryMissing, .buildPaths, .buildPathsWithResults,
    ]

    let op: WorkerOp
    // One of the two, mutated in place (never copied with its items).
    private var paths: ListProgress<StorePath>?
    private var derived: ListProgress<DerivedPath>?

    /// After the operation code (8 bytes) was consumed.
    init(_ op: WorkerOp) {
        self.op = op
        switch op {
        case .queryValidPaths, .querySubstitutablePaths: paths = ListProgress(consumed: 8)
        default: derived = ListProgress(consumed: 8)
        }
    }

    /// Reads what has arrived; the request once it is complete.
    mutating func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> WorkerRequest? {
        let label = "\(op) arguments"
        if paths != nil {
            guard try paths!.read(from: &r, "paths", item: { (r: inout WireReader) throws(WireError) in
                try r.readStorePath("path", ctx)
            }) else { return nil }
            let items = Set(paths!.items)
            if op == .querySubstitutablePaths { return .querySubstitutablePaths(items) }
            guard ctx.version.atLeast(27) else { return .queryValidPaths(items, substitute: false) }
            guard let substitute = try paths!.readRest(from: &r, label, { (r: inout WireReader) throws(WireError) in
                try r.readBool("substitute")
            }) else { return nil }
            return .queryValidPaths(items, substitute: substitute)
        }
        guard try derived!.read(from: &r, "derived paths", item: { (r: inout WireReader) throws(WireError) in
            try DerivedPath.read(from: &r, ctx)
        }) else { return nil }
        let items = derived!.items
        if op == .queryMissing { return .queryMissing(items) }
        guard let mode = try derived!.readRest(from: &r, label, { (r: inout WireReader) throws(WireError) in
            try BuildMode.read(from: &r)
        }) else { return nil }
        return op == .buildPaths ? .buildPaths(items, mode) : .buildPathsWithResults(items, mode)
    }
}
