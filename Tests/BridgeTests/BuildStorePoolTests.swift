import Foundation
import NixCore
import NixStore
import Synchronization
import Testing
@testable import Bridge

/// The destination's connections are bounded: a build waits for one to come back rather
/// than opening one more (a run of many parallel builds once held 16 local daemons).
@Suite("StorePool limits", .timeLimit(.minutes(1)))
struct BuildStorePoolTests {
    let uri = try! StoreURI(parsing: "local?root=/nonexistent/nb-pool-test")

    @Test func aTakerWaitsAtTheLimitUntilOneComesBack() async throws {
        let pool = StorePool(opener: StoreOpener(), limits: [uri: 2])
        let a = try await pool.take(uri)
        let b = try await pool.take(uri)
        let taken = Atomic<Bool>(false)
        let third = Task {
            let s = try await pool.take(uri)
            taken.store(true, ordering: .sequentiallyConsistent)
            return s
        }
        try await Task.sleep(for: .milliseconds(200))
        let early = taken.load(ordering: .sequentiallyConsistent)
        #expect(!early)
        await pool.giveBack(a)
        let c = try await third.value
        #expect(c.store === a.store)
        #expect(c.reused)
        // A discarded connection frees its place for a new one.
        let fourth = Task { try await pool.take(uri) }
        await pool.discard(b)
        let d = try await fourth.value
        #expect(d.store !== b.store && d.store !== a.store)
        #expect(!d.reused)
        await pool.closeAll()
    }

    @Test func storesWithoutALimitAreNotBounded() async throws {
        let pool = StorePool(opener: StoreOpener())
        var stores: [PooledStore] = []
        for _ in 0..<8 { stores.append(try await pool.take(uri)) }
        #expect(Set(stores.map { ObjectIdentifier($0.store) }).count == 8)
        await pool.closeAll()
    }
}
