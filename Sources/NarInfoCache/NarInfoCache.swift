// The NarInfoCache layer: see Docs/Architecture.md.
