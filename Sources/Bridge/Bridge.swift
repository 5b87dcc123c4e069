// The Bridge layer: see Docs/Architecture.md.
