import NixCore
import NixSigning

extension Lookup {
    /// The answer with every location whose verdict came from the narinfo cache verified
    /// again against the current `trusted-public-keys`. A cached verdict is only as safe as
    /// the cache file, so whatever enters a store, is served or is signed is checked in this
    /// process first (about 50 µs per signature); the cache still saves the round trips.
    public func rechecked(_ answer: LookupAnswer) -> LookupAnswer {
        var answer = answer
        var memo: [VerificationMemo.Key: PathVerification] = [:]
        for i in answer.locations.indices where answer.locations[i].fromCache {
            let info = answer.locations[i].info
            let key = VerificationMemo.Key(info)
            if let known = memo[key] {
                answer.locations[i].verification = known
                continue
            }
            let v = trustedKeys.verify(info, sigsNeeded: sigsNeeded, storeDir: storeDir)
            memo[key] = v
            answer.locations[i].verification = v
        }
        return answer
    }

    /// `rechecked` for each answer.
    public func rechecked(_ answers: [LookupAnswer]) -> [LookupAnswer] { answers.map(rechecked) }
}
