import Logging
import NIOCore
import NIOHTTPTypes

/// Disconnects an HTTP client that stops reading: once a response part handed to the
/// connection has waited `limit` with nothing written to the client, the connection is
/// closed, so the response's body fails and its NAR transfer ends (the builder's connection
/// is closed with it). The body goes out in pieces of at most `BodyWriterBox.piece`, so a
/// client counts as reading while it takes one in `limit`. Waiting for the builder is not
/// the client's stall: with nothing queued for the client, nothing is timed here.
final class StalledClientHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limit: Duration
    let logger: Logger
    /// The store path a request is for, when it is a NAR's (for the log line).
    let describe: @Sendable (String) -> String?
    /// Writes handed on and not yet completed.
    private var unwritten = 0
    /// When a write last completed, or the first of `unwritten` was handed on.
    private var lastProgress = NIODeadline.now()
    private var check: Scheduled<Void>?
    private var request = ""

    init(limit: Duration, logger: Logger, describe: @escaping @Sendable (String) -> String?) {
        self.limit = limit
        self.logger = logger
        self.describe = describe
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case let .head(head) = unwrapInboundIn(data) { request = head.path ?? "" }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if unwritten == 0 { lastProgress = .now() }
        unwritten += 1
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.assumeIsolated().whenComplete { _ in
            self.unwritten -= 1
            self.lastProgress = .now()
        }
        context.write(data, promise: written)
        scheduleCheck(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    private func scheduleCheck(_ context: ChannelHandlerContext) {
        guard check == nil, context.channel.isActive else { return }
        // A few looks per limit: the cut comes at most a quarter of it late.
        let every = TimeAmount.nanoseconds(max(TimeAmount(limit).nanoseconds / 4, 10_000_000))
        check = context.eventLoop.assumeIsolated().scheduleTask(in: every) {
            self.check = nil
            guard self.unwritten > 0 else { return }
            guard NIODeadline.now() - self.lastProgress >= TimeAmount(self.limit) else { return self.scheduleCheck(context) }
            let client = context.channel.remoteAddress.map { "\($0)" } ?? "?"
            let what = self.describe(self.request).map { "the NAR of '\($0)'" } ?? "'\(self.request)'"
            self.logger.warning("client \(client) read nothing of \(what) for \(self.limit.components.seconds) s (stalled-download-timeout): disconnected")
            context.close(promise: nil)
        }
    }
}
