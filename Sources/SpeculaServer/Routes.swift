import Foundation
import Hummingbird
import NIOCore
import SpeculaEngine
import SpeculaModels

/// The routes: OpenAI's chat and completions, models; llama-server's health, props, tokenize, detokenize;
/// Prometheus metrics; the OpenAPI document.
struct Routes: Sendable {
    let state: ServerState

    /// Every route and the method it takes (another method on one of these paths is a 405).
    static let methods: [String: String] = {
        var methods: [String: String] = [
            "/health": "GET", "/v1/health": "GET", "/metrics": "GET", "/props": "GET", "/tokenize": "POST",
            "/detokenize": "POST", "/openapi.yaml": "GET", "/v1/specula/audit": "POST",
        ]
        for prefix in ["/v1", ""] {
            methods[prefix + "/chat/completions"] = "POST"
            methods[prefix + "/completions"] = "POST"
            methods[prefix + "/models"] = "GET"
        }
        return methods
    }()

    func register(on router: Router<BasicRequestContext>) {
        for prefix in ["/v1", ""] {
            router.post("\(prefix)/chat/completions") { request, _ in try await complete(request, kind: .chat) }
            router.post("\(prefix)/completions") { request, _ in try await complete(request, kind: .completion) }
            router.get("\(prefix)/models") { _, _ in try models() }
        }
        router.post("/v1/specula/audit") { request, _ in try await audit(request) }
        router.get("/health") { _, _ in try health() }
        router.get("/v1/health") { _, _ in try health() }
        router.get("/metrics") { _, _ in metrics() }
        router.get("/props") { _, _ in try props() }
        router.post("/tokenize") { request, _ in try await tokenize(request) }
        router.post("/detokenize") { request, _ in try await detokenize(request) }
        router.get("/openapi.yaml") { _, _ in
            let (models, _, context) = try state.require()
            let yaml = OpenAPIDocument.yaml(vocabulary: models.target.transformer.vocabularySize, context: context)
            return Response(
                status: .ok, headers: [.contentType: "application/yaml"],
                body: .init(byteBuffer: ByteBuffer(string: yaml)))
        }
    }

    // MARK: - Generation

    func complete(_ request: Request, kind: GenerationRequest.Kind) async throws -> Response {
        let arrival = ContinuousClock.now
        let (models, worker, context) = try state.require()
        var request = request
        let body = try await readObject(&request)
        let prepared = try PreparedGeneration(
            kind: kind, body: body, target: models.target, hasDraft: models.usableDraft != nil, context: context)
        let (parsed, prompt, plan) = (prepared.request, prepared.prompt, prepared.plan)
        let (job, stream) = try worker.submit(prompt: prompt, plan: plan, logprobs: parsed.logprobs)
        job.continuation.onTermination = { _ in job.cancel() }
        let reply = Reply(
            kind: kind, plan: plan, model: models.id, tokenizer: models.target.tokenizer, logprobs: parsed.logprobs,
            includeUsage: parsed.includeUsage, arrival: arrival, metrics: state.metrics)
        if parsed.stream {
            let request = request
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
                body: ResponseBody { writer in
                    do {
                        try await request.body.consumeWithInboundCloseHandler { _ in
                            try await reply.stream(stream, to: &writer)
                        } onInboundClosed: {
                            job.cancel()
                        }
                    } catch {
                        job.cancel()
                        throw error
                    }
                    try await writer.finish(nil)
                })
        }
        let data = try await request.body.consumeWithInboundCloseHandler { _ in
            try await reply.whole(stream)
        } onInboundClosed: {
            job.cancel()
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Speculation off and on for the request's own prompt (``AuditReport``).
    func audit(_ request: Request) async throws -> Response {
        let (models, worker, context) = try state.require()
        var request = request
        let body = try await readObject(&request)
        let kind: GenerationRequest.Kind = (body["messages"] ?? .null) != .null ? .chat : .completion
        var fields = body
        fields["stream"] = nil
        let samplesField = fields.removeValue(forKey: "samples")
        let parsed = try GenerationRequest(
            kind: kind, body: fields, speculation: SpeculationResolver(hasDraft: models.usableDraft != nil))
        if parsed.plan.isPlain {
            throw APIError.invalidRequest(
                "an audit compares speculation with plain decoding: switch speculation on", param: "speculative")
        }
        let greedy = parsed.plan.sampling.isGreedy
        let samples: Int
        if greedy {
            samples = 1
        } else {
            let reader = FieldReader(["samples": samplesField ?? .integer(200)])
            samples = Int(try reader.integer("samples", in: 10...5000) ?? 200)
        }
        let tokenLimit = greedy ? 1024 : 8
        if let given = parsed.maxTokens, given > tokenLimit {
            throw APIError.invalidRequest(
                "'max_tokens' must be at most \(tokenLimit) for an audit at \(greedy ? "T = 0" : "T > 0")"
                    + (greedy ? "" : " (sequences are compared whole)"), param: "max_tokens")
        }
        let prompt = try PreparedGeneration.tokens(of: parsed.prompt, target: models.target)
        let maxTokens = parsed.maxTokens ?? (greedy ? 64 : 2)
        if prompt.count + maxTokens > context {
            throw APIError.contextLengthExceeded(promptTokens: prompt.count, maxTokens: maxTokens, context: context)
        }
        var plan = parsed.plan
        plan.stop.maxTokens = maxTokens
        if plan.shape == .auto {
            throw APIError.invalidRequest(
                "an audit takes a fixed shape, not verifier auto", param: "speculative.verifier")
        }
        let (job, stream) = try worker.submit(
            prompt: prompt, plan: plan, logprobs: nil, work: GenerationJob.Work.audit(samples: samples))
        job.continuation.onTermination = { _ in job.cancel() }
        let data = try await request.body.consumeWithInboundCloseHandler { _ in
            for try await event in stream {
                if case WorkerEvent.audit(let report) = event { return try WireJSON.data(report) }
            }
            throw CancellationError()
        } onInboundClosed: {
            job.cancel()
        }
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The prompt's tokens: a chat rendered by the target's template, text (special-token text read as such, as
    /// llama-server does), or token ids checked against the vocabulary.
    func readObject(_ request: inout Request) async throws -> [String: JSONValue] {
        let buffer = try await request.collectBody(upTo: state.options.maxBodyBytes)
        return try JSONValue.parseObject(Data(buffer.readableBytesView))
    }

    // MARK: - The other routes

    func health() throws -> Response {
        _ = try state.require()
        return json(["status": .string("ok")])
    }

    func models() throws -> Response {
        let (models, _, context) = try state.require()
        let created = Int(state.started.timeIntervalSince1970)
        return json([
            "object": .string("list"),
            "data": .array([
                .object([
                    "id": .string(models.id), "object": .string("model"), "created": .integer(Int64(created)),
                    "owned_by": .string("specula"),
                    "meta": .object([
                        "n_ctx": .integer(Int64(context)),
                        "n_vocab": .integer(Int64(models.target.transformer.vocabularySize)),
                        "draft": models.usableDraft.map { .string($0.path) } ?? .null,
                    ]),
                ])
            ]),
        ])
    }

    func metrics() -> Response {
        if let ready = state.ready { state.metrics.setQueue(depth: ready.worker.queueDepth) }
        let batch = state.ready?.worker.batcher?.statistics
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
            body: .init(byteBuffer: ByteBuffer(string: state.metrics.render(batch: batch))))
    }

    /// The defaults a request gets when it says nothing, speculation included.
    func props() throws -> Response {
        let (models, worker, context) = try state.require()
        let hasDraft = models.usableDraft != nil
        let defaultMethod = hasDraft ? "adaptive" : "ngram-adaptive"
        return json([
            "build": .string(ServerVersion.name),
            "model_path": .string(models.target.path),
            "model_alias": .string(models.id),
            "n_ctx": .integer(Int64(context)),
            "total_slots": .integer(Int64(worker.parallel)),
            "queue_limit": .integer(Int64(state.options.queueLimit)),
            "timeout_seconds": state.options.timeout.map { .number($0) } ?? .null,
            "default_generation_settings": .object([
                "temperature": .number(ServerDefaults.temperature), "top_p": .number(1), "top_k": .integer(0),
                "min_p": .number(0), "presence_penalty": .number(0), "frequency_penalty": .number(0),
                "repeat_penalty": .number(1), "max_tokens": .string("the context left after the prompt"),
                "seed": .string("random unless given"),
            ]),
            "speculative": .object([
                "default_mode": .string("auto"),
                "auto_runs": .string(defaultMethod),
                "draft_model": models.usableDraft.map { .string($0.path) } ?? .null,
                "draft_problem": models.draftProblem.map { .string($0) } ?? .null,
                "modes": .array(SpeculationResolver.modes.map { .string($0) }),
                "verifiers": .array((VerifierKind.allCases.map(\.rawValue) + ["auto"]).map { .string($0) }),
            ]),
        ])
    }

    func tokenize(_ request: Request) async throws -> Response {
        let (models, _, _) = try state.require()
        var request = request
        let fields = FieldReader(try await readObject(&request))
        guard let content = try fields.string("content") else {
            throw APIError.invalidRequest("'content' (a string) is required", param: "content")
        }
        let addSpecial = try fields.bool("add_special") ?? true
        let parseSpecial = try fields.bool("parse_special") ?? true
        let tokens = models.target.tokenizer.encode(content, addSpecial: addSpecial, parseSpecial: parseSpecial)
        return json(["tokens": .array(tokens.map { .integer(Int64($0)) })])
    }

    func detokenize(_ request: Request) async throws -> Response {
        let (models, _, _) = try state.require()
        var request = request
        let fields = FieldReader(try await readObject(&request))
        guard let items = try fields.array("tokens") else {
            throw APIError.invalidRequest("'tokens' (an array of token ids) is required", param: "tokens")
        }
        let vocabulary = models.target.transformer.vocabularySize
        let ids = try items.enumerated().map { index, item -> Int in
            guard case .integer(let id) = item, id >= 0, id < Int64(vocabulary) else {
                throw APIError.invalidRequest(
                    "'tokens[\(index)]' must be a token id in 0..<\(vocabulary)", param: "tokens")
            }
            return Int(id)
        }
        return json(["content": .string(models.target.tokenizer.decode(ids))])
    }

    func json(_ object: [String: JSONValue], status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(JSONValue.object(object))) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Builds one request's response from the worker's events: whole, or as server-sent events.
struct Reply: Sendable {
    let kind: GenerationRequest.Kind
    let plan: DecodingPlan
    let model: String
    let tokenizer: Tokenizer
    let logprobs: Int?
    let includeUsage: Bool
    let arrival: ContinuousClock.Instant
    let metrics: ServerMetrics
    let id: String
    let created: Int

    init(
        kind: GenerationRequest.Kind, plan: DecodingPlan, model: String, tokenizer: Tokenizer, logprobs: Int?,
        includeUsage: Bool, arrival: ContinuousClock.Instant, metrics: ServerMetrics
    ) {
        self.kind = kind
        self.plan = plan
        self.model = model
        self.tokenizer = tokenizer
        self.logprobs = logprobs
        self.includeUsage = includeUsage
        self.arrival = arrival
        self.metrics = metrics
        id = (kind == .chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        created = Int(Date().timeIntervalSince1970)
    }

    var fingerprint: String { ServerVersion.name + "+" + plan.spelling }

    func body(choices: [Choice], chunk: Bool) -> CompletionBody {
        CompletionBody(
            id: id, object: kind == .chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion",
            created: created, model: model, systemFingerprint: fingerprint, choices: choices)
    }

    func logprobsField(_ entries: [TokenLogprob], offset: Int) -> AnyLogprobs? {
        guard logprobs != nil else { return nil }
        switch kind {
        case .chat: return .chat(ChatLogprobs(entries, tokenizer: tokenizer))
        case .completion: return .completion(CompletionLogprobs(entries, tokenizer: tokenizer, offset: offset))
        }
    }

    /// Tracks timing for the metrics as events arrive.
    struct Clock {
        var last: ContinuousClock.Instant
        var sawToken = false
    }

    func observe(_ event: GenerationEvent, clock: inout Clock) {
        guard !event.tokens.isEmpty else { return }
        let now = ContinuousClock.now
        if !clock.sawToken {
            metrics.observeFirstToken(seconds(from: clock.last, to: now))
            clock.sawToken = true
            metrics.observeRound(tokens: event.tokens.count - 1, seconds: 0)
        } else {
            metrics.observeRound(tokens: event.tokens.count, seconds: seconds(from: clock.last, to: now))
        }
        clock.last = now
    }

    /// The whole response once the generation ends.
    func whole(_ stream: AsyncThrowingStream<WorkerEvent, any Error>) async throws -> Data {
        var text = ""
        var entries: [TokenLogprob] = []
        var queued = 0.0
        var clock = Clock(last: arrival)
        for try await event in stream {
            switch event {
            case .started(_, _, let seconds):
                queued = seconds
            case .tokens(let generation):
                observe(generation, clock: &clock)
                text += generation.text
                entries += generation.logprobs
            case .finished(let stats, let timedOut):
                var choice = Choice(finishReason: timedOut ? "length" : (stats.finishReason ?? .stop).openAI)
                switch kind {
                case .chat: choice.message = .init(content: text)
                case .completion: choice.text = text
                }
                choice.logprobs = logprobsField(entries, offset: 0)
                var response = body(choices: [choice], chunk: false)
                response.usage = Usage(stats)
                response.timings = Timings(stats)
                response.specula = SpeculaReport(plan: plan, stats: stats, queued: queued, timedOut: timedOut)
                return try WireJSON.data(response)
            case .audit:
                break
            }
        }
        throw CancellationError()
    }

    /// Server-sent events: the role first (chat), a chunk per round with text, the finish reason with `timings` and
    /// `specula`, the usage chunk when asked for, then `data: [DONE]`. An error after the head is sent as an event
    /// in OpenAI's error shape.
    func stream(_ events: AsyncThrowingStream<WorkerEvent, any Error>, to writer: inout any ResponseBodyWriter)
        async throws
    {
        var queued = 0.0
        var offset = 0
        var clock = Clock(last: arrival)
        do {
            for try await event in events {
                switch event {
                case .started(_, _, let seconds):
                    queued = seconds
                    if kind == .chat {
                        try await send(
                            body(choices: [Choice(delta: .init(role: "assistant", content: ""))], chunk: true), &writer)
                    }
                case .tokens(let generation):
                    observe(generation, clock: &clock)
                    if generation.text.isEmpty && generation.logprobs.isEmpty { continue }
                    var choice = Choice()
                    switch kind {
                    case .chat: choice.delta = .init(content: generation.text)
                    case .completion: choice.text = generation.text
                    }
                    choice.logprobs = logprobsField(generation.logprobs, offset: offset)
                    offset += generation.logprobs.reduce(0) {
                        $0 + tokenizer.bytes(of: $1.token, renderSpecial: true).count
                    }
                    try await send(body(choices: [choice], chunk: true), &writer)
                case .finished(let stats, let timedOut):
                    var choice = Choice(finishReason: timedOut ? "length" : (stats.finishReason ?? .stop).openAI)
                    switch kind {
                    case .chat: choice.delta = .init()
                    case .completion: choice.text = ""
                    }
                    var last = body(choices: [choice], chunk: true)
                    last.timings = Timings(stats)
                    last.specula = SpeculaReport(plan: plan, stats: stats, queued: queued, timedOut: timedOut)
                    try await send(last, &writer)
                    if includeUsage {
                        var usage = body(choices: [], chunk: true)
                        usage.usage = Usage(stats)
                        try await send(usage, &writer)
                    }
                case .audit:
                    break
                }
            }
        } catch is CancellationError {
            return
        } catch {
            let apiError = APIError.from(error)
            let data = try JSONEncoder().encode(
                APIError.Body(
                    error: .init(
                        message: apiError.message, type: apiError.type, param: apiError.param, code: apiError.code)))
            try await writer.write(ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n"))
        }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
    }

    func send(_ value: CompletionBody, _ writer: inout any ResponseBodyWriter) async throws {
        let data = try WireJSON.data(value)
        var buffer = ByteBuffer()
        buffer.writeString("data: ")
        buffer.writeBytes(data)
        buffer.writeString("\n\n")
        try await writer.write(buffer)
    }
}
