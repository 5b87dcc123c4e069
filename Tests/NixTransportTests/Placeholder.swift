import Testing

@Test func placeholderNixTransportTests() { #expect(true) }
