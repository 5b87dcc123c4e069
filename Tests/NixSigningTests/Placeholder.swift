import Testing

@Test func placeholderNixSigningTests() { #expect(true) }
