// The NixWire layer: see Docs/Architecture.md.
//
// Nix's worker protocol (1.21 to 1.38) as pure code over byte buffers:
// - WireWriter / WireReader: u64, strings padded to 8, lists; a reader that waits for more
//   bytes without consuming and bounds every length (WireLimits). FramedStream for NAR data.
// - Values per version (WireValue): NixCore's PathInfo, BasicDerivation, DerivedPath and
//   ContentAddress, and BuildResult, Realisation...
// - ClientHandshake / ServerHandshake state machines; StderrMessage (logs, DaemonError).
// - WorkerRequest / WorkerResponse codecs for both sides, and WorkerConnection, a pipelining
//   client state machine (`start`, `send`, `receive` -> events). NarFromPath's unframed NAR is
//   delimited by a NARBoundaryDetector supplied by the caller.
