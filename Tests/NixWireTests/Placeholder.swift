import Testing

@Test func placeholderNixWireTests() { #expect(true) }
