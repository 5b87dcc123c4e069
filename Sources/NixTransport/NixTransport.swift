// The NixTransport layer: see Docs/Architecture.md.
