import Testing

@Test func placeholderNixCoreTests() { #expect(true) }
