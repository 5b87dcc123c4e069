import ArgumentParser
import Dispatch
import Foundation
import NixTransport

/// `nix-bridge-bench ssh-cat`: SSHChannelStream (libssh2) beside OpenSSH's client against
/// the same sshd: connect + auth + exec latency, and `cat` throughput over one channel.
///
/// Needs an ssh_config whose host block logs in with an ed25519/ECDSA key, e.g. the one the
/// test harness writes (Sources/PeerFixtures/Fleet.swift: `<fleet dir>/ssh_config`), or any
/// loopback sshd set up the same way (see the real-nix notes):
///
///     swift build -c release --product nix-bridge-bench
///     .build/release/nix-bridge-bench ssh-cat --ssh-config /tmp/fleet/ssh_config --host builder1
struct SSHBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh-cat",
        abstract: "SSH connect latency and cat throughput: libssh2 SSHChannelStream vs OpenSSH ssh."
    )

    @Option(help: "ssh_config file with the host block.") var sshConfig: String
    @Option(help: "Host alias in the ssh_config.") var host = "builder1"
    @Option(help: "MiB pushed through cat per run.") var mebibytes = 200
    @Option(help: "Throughput runs (the median is reported).") var runs = 3
    @Option(help: "Connect measurements (the median is reported).") var connects = 10
    @Flag(help: "Skip the OpenSSH client comparison.") var skipOpenSSH = false

    func run() throws {
        let box = ResultBox()
        let sem = DispatchSemaphore(value: 0)
        let me = self
        Task {
            do { try await me.measure() } catch { box.error = error }
            sem.signal()
        }
        sem.wait()
        if let error = box.error { throw error }
    }

    final class ResultBox: @unchecked Sendable { var error: Error? }

    func measure() async throws {
        let options = try SSHConfig.load(path: sshConfig).resolve(host: host)
        let target = options.target()
        let bytes = mebibytes << 20
        print("libssh2 \(SSHLibrary.version)")
        print("target \(target.peerDescription) user \(target.user); \(mebibytes) MiB per run; \(runs) runs; \(connects) connects")

        var ours: [Double] = []
        for _ in 0..<connects {
            let t = try await time {
                let s = try await SSHChannelStream.connect(to: target, command: "echo x")
                _ = try await s.read(maxLength: 1)
                await s.close()
            }
            ours.append(t)
        }
        print(String(format: "connect+auth+exec+first byte  SSHChannelStream: median %.1f ms (min %.1f)", median(ours) * 1000, ours.min()! * 1000))
        if !skipOpenSSH {
            var theirs: [Double] = []
            for _ in 0..<connects {
                theirs.append(try await time {
                    let p = try ProcessStream(["ssh", "-F", sshConfig, host, "echo x"])
                    _ = try await p.read(maxLength: 1)
                    await p.close()
                })
            }
            print(String(format: "connect+auth+exec+first byte  ssh -F:            median %.1f ms (min %.1f)", median(theirs) * 1000, theirs.min()! * 1000))
        }

        var rates: [Double] = []
        var algorithms = ("?", "?")
        for _ in 0..<runs {
            let s = try await SSHChannelStream.connect(to: target, command: "cat")
            algorithms = s.algorithms
            rates.append(try await catThroughput(s, bytes: bytes))
            await s.close()
        }
        print(String(format: "cat %d MiB  SSHChannelStream (%@, %@): median %.0f MiB/s (best %.0f)",
                     mebibytes, algorithms.0, algorithms.1, median(rates), rates.max()!))
        if !skipOpenSSH {
            var theirs: [Double] = []
            for _ in 0..<runs {
                let p = try ProcessStream(["ssh", "-F", sshConfig, host, "cat"])
                theirs.append(try await catThroughput(p, bytes: bytes))
                await p.close()
            }
            print(String(format: "cat %d MiB  ssh -F (default cipher):            median %.0f MiB/s (best %.0f)",
                         mebibytes, median(theirs), theirs.max()!))
        }

        // Download only, the shape of NarFromPath: the remote writes, we read.
        let download = "head -c \(bytes) /dev/zero"
        var down: [Double] = []
        for _ in 0..<runs {
            let s = try await SSHChannelStream.connect(to: target, command: "read x; echo; " + download)
            down.append(try await downloadThroughput(s, bytes: bytes))
            await s.close()
        }
        print(String(format: "download %d MiB  SSHChannelStream: median %.0f MiB/s (best %.0f)", mebibytes, median(down), down.max()!))
        if !skipOpenSSH {
            var theirs: [Double] = []
            for _ in 0..<runs {
                let p = try ProcessStream(["ssh", "-F", sshConfig, host, "read x; echo; " + download])
                theirs.append(try await downloadThroughput(p, bytes: bytes))
                await p.close()
            }
            print(String(format: "download %d MiB  ssh -F (default cipher): median %.0f MiB/s (best %.0f)",
                         mebibytes, median(theirs), theirs.max()!))
        }
    }

    /// MiB/s of reading `bytes` after a go-ahead line (so connection set-up is excluded).
    func downloadThroughput(_ s: some ByteStream, bytes: Int) async throws -> Double {
        try await s.write(Array("go\n".utf8))
        _ = try await s.read(exactly: 1)
        return Double(bytes) / 1_048_576 / (try await time {
            var got = 0
            while got < bytes {
                let b = try await s.read(maxLength: 1 << 20)
                if b.isEmpty { break }
                got += b.count
            }
            guard got == bytes else { throw ValidationError("read \(got) of \(bytes) bytes") }
        })
    }

    /// MiB/s of `bytes` through `cat`, timed after a first echo so connection set-up is excluded.
    func catThroughput(_ s: some ByteStream, bytes: Int) async throws -> Double {
        try await s.write([0x2a])
        _ = try await s.read(exactly: 1)
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        let seconds = try await time {
            let writer = Task {
                var left = bytes
                while left > 0 {
                    let n = min(left, chunk.count)
                    try await s.write(n == chunk.count ? chunk : Array(chunk[..<n]))
                    left -= n
                }
                await s.closeWrite()
            }
            var got = 0
            while true {
                let b = try await s.read(maxLength: 1 << 20)
                if b.isEmpty { break }
                got += b.count
            }
            try await writer.value
            guard got == bytes else { throw ValidationError("cat returned \(got) of \(bytes) bytes") }
        }
        return Double(bytes) / 1_048_576 / seconds
    }

    func time(_ body: () async throws -> Void) async throws -> Double {
        let start = ContinuousClock.now
        try await body()
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
}
