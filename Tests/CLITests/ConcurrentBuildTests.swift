import Foundation
import TestSupport
import Testing

/// `nix-bridge build` as several users run it at once, against a real one-machine fleet, and
/// its refusals next to real `nix-build -j0`'s.
@Suite("nix-bridge build: concurrency and -j0 refusals", .serialized,
       .tags(.realNix, .realSSHD), .enabled(if: TestSupport.hasNix && TestSupport.hasFleet, "needs nix (nix-bin), sshd (openssh-server) and root"),
       .tags(.builtCLI), .enabled(if: CLI.isBuilt, "needs the built nix-bridge executable"))
final class ConcurrentBuildTests {
    let env: Fleet

    init() throws {
        env = try Fleet(features: [[]], maxJobs: 1, label: "nb-build-cli")
    }

    /// Six derivations (PATH set: Nix sets none in a build), each writing `date +%s.%N` when it starts and when it ends (0.3 s
    /// apart), and one for a system no machine has.
    func expression() throws -> String {
        try env.write("concurrent.nix", """
            let
              timed = i: derivation {
                name = "slot-${toString i}";
                system = "\(env.system)";
                builder = "/bin/sh";
                PATH = "/usr/bin:/bin";
                args = [ "-c" "date +%s.%N > $out; sleep 0.3; date +%s.%N >> $out" ];
              };
            in {
              d1 = timed 1; d2 = timed 2; d3 = timed 3; d4 = timed 4; d5 = timed 5; d6 = timed 6;
              exotic = derivation {
                name = "exotic"; system = "riscv64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ];
              };
            }
            """)
    }

    @Test func sixConcurrentBuildsOnAOneSlotMachineNeverOverlap() throws {
        let file = try expression()
        let machines = env.machinesSpec
        let binary = try #require(CLI.binary)
        // Each client has its own local store: only the machine's slot is shared.
        let jobs = try (1...6).map { i -> (store: String, root: String, drv: String) in
            let store = env.newLocalStore("client-\(i)")
            return (store, env.work.appendingPathComponent("client-\(i)").path,
                    try env.instantiateFile(file, attribute: "d\(i)", store: store))
        }
        let outputs = try env.runConcurrently(jobs.map {
            [binary, "build", "-j0", "--builders", machines, "--store", $0.store, $0.drv]
        })
        var intervals: [(name: String, start: Double, end: Double)] = []
        for (i, (job, out)) in zip(jobs, outputs).enumerated() {
            #expect(out.status == 0, "client \(i + 1): \(out.stderr)")
            let path = out.trimmed
            #expect(path.hasPrefix("/nix/store/") && path.hasSuffix("-slot-\(i + 1)"), "client \(i + 1) printed: \(out.text)")
            guard out.status == 0, path.hasPrefix("/nix/store/") else { continue }
            let stamps = try String(contentsOfFile: job.root + path, encoding: .utf8)
                .split(separator: "\n").compactMap { Double($0) }
            try #require(stamps.count == 2, "\(path) holds \(stamps)")
            #expect(stamps[1] - stamps[0] >= 0.3)
            intervals.append((path, stamps[0], stamps[1]))
        }
        #expect(intervals.count == 6)
        intervals.sort { $0.start < $1.start }
        for (a, b) in zip(intervals, intervals.dropFirst()) {
            #expect(a.end <= b.start, "\(a.name) [\(a.start), \(a.end)] overlaps \(b.name) [\(b.start), \(b.end)]")
        }
    }

    @Test func noFittingMachinePrintsNixsText() throws {
        let file = try expression()
        let store = env.newLocalStore("refusal")
        let drv = try env.instantiateFile(file, attribute: "exotic", store: store)
        let machines = env.machinesSpec
        let ours = try env.bridge(["build", "-j0", "--builders", machines, "--store", store, drv])
        let theirs = try env.run(["nix-build", "-j0", "--no-out-link", "--builders", machines, "--store", store, drv], check: false)
        #expect(ours.status != 0)
        #expect(theirs.status != 0)
        #expect(ours.text.isEmpty, "no output path printed: \(ours.text)")
        let expected = refusalText(theirs.stderr)
        try #require(expected.hasPrefix("Failed to find a machine for remote build!"), "real Nix said: \(theirs.stderr)")
        #expect(refusalText(ours.stderr) == expected, "ours:\n\(ours.stderr)\nNix's:\n\(theirs.stderr)")
    }

    @Test func noMachinesAtAllPrintsNixsText() throws {
        let file = try expression()
        let store = env.newLocalStore("no-machines")
        let drv = try env.instantiateFile(file, attribute: "d1", store: store)
        let ours = try env.bridge(["build", "-j0", "--builders", "", "--store", store, drv])
        let theirs = try env.run(["nix-build", "-j0", "--no-out-link", "--builders", "", "--store", store, drv], check: false)
        #expect(ours.status != 0)
        #expect(theirs.status != 0)
        let expected = refusalText(theirs.stderr)
        try #require(expected.hasPrefix("error: unable to start any build; either increase '--max-jobs'"), "real Nix said: \(theirs.stderr)")
        #expect(refusalText(ours.stderr) == expected, "ours:\n\(ours.stderr)\nNix's:\n\(theirs.stderr)")
    }
}
