import ArgumentParser
import Foundation
import Logging
import SpeculaModels
import SpeculaServer

/// `specula serve`: the OpenAI-compatible HTTP server (flags spelled as llama-server's where it has them).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over HTTP with OpenAI's API (chat and completions, streaming), speculating exactly.",
        discussion: """
            Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics, \
            GET /props, POST /tokenize, POST /detokenize, GET /openapi.yaml. A request may carry \
            "speculative": {"mode": "auto"|"off"|"draft"|"ngram"|"suffix", "verifier": V, "tree": T, "n_max": K}; every \
            response carries a "specula" object (what ran, tokens per target pass, acceptance, α*, efficiency, time \
            split) and llama-server's "timings". See docs/server.md.
            """)

    @Option(name: [.customShort("m"), .long], help: "The target GGUF model.") var model: String
    @Option(
        name: [.customLong("md", withSingleDash: true), .long],
        help: "A draft GGUF model (same vocabulary as the target; served without it otherwise, with a warning).")
    var draft: String?
    @Option(
        name: .long,
        help:
            "Re-quantize the draft's layer matrices stored with more bits per weight to this format as it loads (q4_0; q4_0+output: the output matrix too): a cheaper draft, the same outputs."
    )
    var draftRequantize: String?
    @Option(name: .long, help: "Address to listen on (loopback by default).") var host = "127.0.0.1"
    @Option(name: .long, help: "Port to listen on.") var port = 8080
    @Option(
        name: [.customShort("c"), .customLong("ctx-size")],
        help: "Context in tokens, prompt and output together (default: the model's, at most 4096).")
    var ctxSize: Int?
    @Option(name: .long, help: "Require 'Authorization: Bearer KEY' (every route but /health).") var apiKey: String?
    @Option(
        name: [.customLong("np", withSingleDash: true), .customLong("parallel")],
        help: "Generations served at once, their passes batched together (the rest wait in the queue).")
    var parallel = 4
    @Option(
        name: .long,
        help: ArgumentHelp(
            "While other requests generate, a new prompt is fed in pieces sized so each shared pass takes about this "
                + "many milliseconds on this host (0: pieces of 64 tokens).", valueName: "ms"))
    var prefillPassMs = 250.0
    @Option(name: .long, help: "Requests that may wait while the slots are busy; more get 503 with Retry-After.")
    var queue = 16
    @Option(name: .long, help: "Seconds a request may take, queue and generation (0: no limit).") var timeout = 600.0
    @Option(name: .long, help: "The model name clients see (default: the target file's name).") var alias: String?
    @Flag(
        name: .long,
        help: "Each request's adaptive mode learns its costs alone (default: it starts from the last request's).")
    var noCostMemory = false

    func validate() throws {
        if !(1...65535).contains(port) { throw ValidationError("--port must be in 1…65535 (got \(port))") }
        if let ctxSize, ctxSize < 2 { throw ValidationError("--ctx-size must be ≥ 2 (got \(ctxSize))") }
        if !(1...64).contains(parallel) { throw ValidationError("--parallel must be in 1…64 (got \(parallel))") }
        if !(prefillPassMs >= 0 && prefillPassMs.isFinite) {
            throw ValidationError("--prefill-pass-ms must be ≥ 0 (got \(prefillPassMs))")
        }
        if queue < 0 { throw ValidationError("--queue must be ≥ 0 (got \(queue))") }
        if !(timeout >= 0 && timeout.isFinite) { throw ValidationError("--timeout must be ≥ 0 (got \(timeout))") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        if let draftRequantize {
            if draft == nil { throw ValidationError("--draft-requantize needs --draft") }
            _ = try RequantizeRequest(parsing: draftRequantize)
        }
        for path in [model] + (draft.map { [$0] } ?? []) where !FileManager.default.isReadableFile(atPath: path) {
            throw ValidationError("cannot read model file \(path)")
        }
    }

    func run() throws {
        var options = ServerOptions()
        options.host = host
        options.port = port
        options.context = ctxSize
        options.apiKey = apiKey
        options.queueLimit = queue
        options.parallel = parallel
        options.prefillPassSeconds = prefillPassMs == 0 ? nil : prefillPassMs / 1000
        options.timeout = timeout == 0 ? nil : timeout
        options.modelID = alias
        options.rememberCosts = !noCostMemory
        options.draftRequantization = try draftRequantize.map { try RequantizeRequest(parsing: $0).requantization }
        let server = SpeculaHTTPServer(options: options)
        let log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("specula serve: \($0)\n".utf8)) }
        var logger = Logger(label: "specula.serve")
        logger.logLevel = .warning
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        let address = "http://\(host):\(port)"
        Task {
            do {
                try await server.run(logger: logger) { log("listening on \(address) (loading the model)") }
            } catch {
                failure.set(error)
            }
            done.signal()
        }
        server.load(target: model, draft: draft, log: log)
        done.wait()
        if let error = failure.error { throw CommandError("the server stopped: \(error)") }
        log("stopped")
    }
}

/// An error handed from the server's task to the command's thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?
    func set(_ error: any Error) { lock.withLock { stored = error } }
    var error: (any Error)? { lock.withLock { stored } }
}
