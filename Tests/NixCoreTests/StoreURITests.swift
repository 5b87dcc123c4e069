import NixCore
import Testing

@Suite struct StoreURITests {
    @Test func sshNGWithUserPortAndParameters() throws {
        let u = try StoreURI(parsing: "ssh-ng://nix@builder1:2222?ssh-key=/root/.ssh/id%20b&remote-program=/opt/nb")
        #expect(u.scheme == .sshNG)
        #expect(u.user == "nix")
        #expect(u.authority == "builder1")
        #expect(u.port == 2222)
        #expect(u[parameter: "ssh-key"] == "/root/.ssh/id b")
        #expect(u[parameter: "remote-program"] == "/opt/nb")
        #expect(u.sshHost == "nix@builder1")
        #expect(try StoreURI(parsing: u.description) == u)
    }

    @Test func bareWordsAndPaths() throws {
        #expect(try StoreURI(parsing: "daemon").scheme == .daemon)
        let local = try StoreURI(parsing: "local?root=/tmp/store")
        #expect(local.scheme == .local)
        #expect(local[parameter: "root"] == "/tmp/store")
        let path = try StoreURI(parsing: "/tmp/chroot")
        #expect(path.scheme == .local && path[parameter: "root"] == "/tmp/chroot")
        let unix = try StoreURI(parsing: "unix:///nix/var/nix/daemon-socket/socket")
        #expect(unix.scheme == .unix && unix.authority == "/nix/var/nix/daemon-socket/socket")
    }

    @Test func errorsNameTheURI() {
        #expect(throws: StoreURIError.unknownScheme("gopher://x", "gopher")) { try StoreURI(parsing: "gopher://x") }
        #expect(throws: StoreURIError.self) { try StoreURI(parsing: "ssh-ng://host:99999") }
        #expect(throws: StoreURIError.self) { try StoreURI(parsing: "ssh-ng://") }
        #expect(throws: StoreURIError.self) { try StoreURI(parsing: "ssh-ng://h?novalue") }
        let e = StoreURIError.unknownScheme("gopher://x", "gopher")
        #expect(e.description.contains("gopher://x"))
    }
}
