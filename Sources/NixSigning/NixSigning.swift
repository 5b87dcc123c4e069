// The NixSigning layer: see Docs/Architecture.md.
