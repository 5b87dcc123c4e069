// The NixWire layer: see Docs/Architecture.md.
