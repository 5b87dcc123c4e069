import Foundation
import NixCore

/// A fake `nix-daemon --stdio` that lies, run as a builder's `remote-program` behind its
/// real sshd: no real part misbehaves like this on purpose. It speaks worker protocol 1.34,
/// answers QueryValidPaths and QueryPathInfo from a file of path infos (so that a copy
/// looks signed by a trusted key), and breaks its promise in the chosen way:
///
/// - `endless-nar`: NarFromPath sends a NAR whose one file declares 2^62 bytes, then zeros
///   for as long as anyone reads (it records how many bytes it got out).
/// - `garbage-after-last`: QueryValidPaths' answer is followed by bytes nobody asked for.
/// - `oversized-list`: QueryValidPaths answers a list that claims 2^40 entries.
/// - `extra-paths`: QueryValidPaths also answers paths that were not asked for, and
///   QueryPathInfo answers for them too.
enum MaliciousDaemon {
    /// One path the fake claims to hold, as it serves it.
    struct Info: Encodable {
        var path: String
        var narHash: String // base16, no algorithm prefix
        var narSize: UInt64
        var references: [String]
        var sigs: [String]
    }

    static var python: String? {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : nil
    }

    /// Writes the program and its infos into `dir`; returns the program's path.
    static func install(in dir: URL, mode: String, infos: [Info], extra: [String] = []) throws -> String {
        let data = try JSONEncoder().encode(["infos": infos.map { AnyEncodable($0) }, "extra": extra.map { AnyEncodable($0) }])
        let infoFile = dir.appendingPathComponent("fake-\(mode).json").path
        try data.write(to: URL(fileURLWithPath: infoFile))
        let program = dir.appendingPathComponent("fake-\(mode).py").path
        let text = "#!\(python ?? "/usr/bin/python3")\n" + script
            .replacingOccurrences(of: "@MODE@", with: mode)
            .replacingOccurrences(of: "@INFOS@", with: infoFile)
            .replacingOccurrences(of: "@LOG@", with: dir.appendingPathComponent("fake-\(mode).log").path)
        try text.write(toFile: program, atomically: true, encoding: .utf8)
        chmod(program, 0o755)
        return program
    }

    /// What the fake recorded (`sent N` once it could write no more).
    static func log(in dir: URL, mode: String) -> String {
        (try? String(contentsOfFile: dir.appendingPathComponent("fake-\(mode).log").path, encoding: .utf8)) ?? ""
    }

    struct AnyEncodable: Encodable {
        let value: any Encodable
        init(_ v: any Encodable) { value = v }
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }

    static let script = #"""
json, struct, sys = (__import__(m) for m in ("json", "struct", "sys"))
MODE = "@MODE@"
data = json.load(open("@INFOS@"))
infos = {i["path"]: i for i in data["infos"]}
extra = data["extra"]
log = open("@LOG@", "a")
inp, out = sys.stdin.buffer, sys.stdout.buffer
sent = 0

def w(b):
    global sent
    out.write(b); sent += len(b)
def u64(n): w(struct.pack("<Q", n))
def s(b):
    if isinstance(b, str): b = b.encode()
    u64(len(b)); w(b); w(b"\0" * ((8 - len(b) % 8) % 8))
def strings(l):
    u64(len(l))
    for x in l: s(x)
def ru64():
    b = inp.read(8)
    if len(b) < 8: sys.exit(0)
    return struct.unpack("<Q", b)[0]
def rs():
    n = ru64(); b = inp.read(n); inp.read((8 - n % 8) % 8); return b.decode()
def rstrings(): return [rs() for _ in range(ru64())]
LAST = 0x616c7473

assert ru64() == 0x6e697863
u64(0x6478696f); u64((1 << 8) | 34); out.flush()
client = ru64()
if (client & 0xff) >= 14:
    if ru64(): ru64()
if (client & 0xff) >= 11: ru64()
s("2.8.0"); u64(LAST); out.flush()

def info(p):
    i = infos[p]
    u64(1); s(""); s(i["narHash"]); strings(i["references"]); u64(0); u64(i["narSize"]); u64(0); strings(i["sigs"]); s("")

try:
    while True:
        op = ru64()
        if op == 31:  # QueryValidPaths
            asked = rstrings(); ru64()
            u64(LAST)
            if MODE == "oversized-list":
                u64(1 << 40); s(asked[0] if asked else "x")
            elif MODE == "extra-paths":
                strings([p for p in asked if p in infos] + extra)
            else:
                strings([p for p in asked if p in infos])
            if MODE == "garbage-after-last":
                w(b"\xde\xad\xbe\xef" * 1024)
        elif op == 26:  # QueryPathInfo
            p = rs(); u64(LAST)
            if p in infos: info(p)
            else: u64(0)
        elif op == 1:  # IsValidPath
            p = rs(); u64(LAST); u64(1 if p in infos else 0)
        elif op == 38:  # NarFromPath
            p = rs(); u64(LAST)
            if MODE == "endless-nar":
                s("nix-archive-1"); s("("); s("type"); s("regular"); s("contents"); u64(1 << 62)
                zeros = b"\0" * 65536
                while True: w(zeros); out.flush()
        else:
            log.write("unexpected op %d\n" % op); sys.exit(1)
        out.flush()
except (BrokenPipeError, ConnectionResetError, OSError):
    pass
finally:
    log.write("sent %d\n" % sent); log.flush()
"""#
}
