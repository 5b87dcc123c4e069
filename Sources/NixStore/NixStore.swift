// The NixStore layer: see Docs/Architecture.md.
