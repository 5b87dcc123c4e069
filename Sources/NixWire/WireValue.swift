import NixCore

/// A value with one worker-protocol form per version (Nix's `WorkerProto::Serialise<T>`):
/// the one place its bytes are read and written.
public protocol WireValue {
    static func read(from r: inout WireReader, _ ctx: WireContext) throws(WireError) -> Self
    func write(to w: inout WireWriter, _ ctx: WireContext) throws(WireError)
}

extension WireContext {
    /// The context path infos travel in inside AddToStoreNar and AddMultipleToStore: every
    /// field at every version, as Nix writes them there with the version pinned at 1.16.
    var addedPathInfo: WireContext {
        var c = self
        c.version = WorkerProtocolVersion(minor: 16)
        return c
    }
}

extension BuildResult: WireValue {}
extension KeyedBuildResult: WireValue {}
extension DerivedPath: WireValue {}
extension ClientHandshakeInfo: WireValue {}
extension DrvOutputPath: WireValue {}
extension UnkeyedRealisation: WireValue {}
extension KeyedRealisation: WireValue {}

extension WireReader {
    /// A count, then that many values.
    public mutating func readValues<T: WireValue>(_ what: @autoclosure () -> String, _ ctx: WireContext) throws(WireError) -> [T] {
        try readList(what()) { (r: inout WireReader) throws(WireError) in try T.read(from: &r, ctx) }
    }
}

extension WireWriter {
    /// A count, then each value.
    public mutating func writeValues<T: WireValue>(_ values: [T], _ ctx: WireContext) throws(WireError) {
        writeU64(UInt64(values.count))
        for v in values { try v.write(to: &self, ctx) }
    }
}
