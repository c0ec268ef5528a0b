import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SpeculaEngine
import SpeculaModels

/// How `specula serve` runs.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Requests must send `Authorization: Bearer KEY` (all routes but `/health`).
    public var apiKey: String?
    /// Requests that may wait while one generates; more are refused with 503.
    public var queueLimit = 16
    /// Seconds a request may take from its arrival (queue and generation); nil: no limit.
    public var timeout: Double? = 600
    /// The context in tokens (prompt and generated text; nil: the model's, at most ``defaultContext``).
    public var context: Int?
    /// The largest request body accepted (413 beyond).
    public var maxBodyBytes = 8 << 20
    /// The model's name in responses (nil: the target file's name).
    public var modelID: String?
    /// The adaptive mode starts each request from the costs the last one measured (false: every request learns
    /// its costs from its own rounds alone). Costs steer the choice of rounds, never the output's law.
    public var rememberCosts = true
    /// The draft's matrices re-quantized as it loads (nil: as stored; `--draft-requantize`).
    public var draftRequantization: Requantization?
    /// Generations served at once (slots); their passes run together (continuous batching), the rest wait in the
    /// queue. Each slot keeps caches of the whole context.
    public var parallel = 4
    /// While generations run, a new prompt is fed in pieces sized so that a pass carrying them takes about this
    /// many seconds on this host (``ForwardBatcher/PromptBudget``); nil: pieces of 64 rows whatever they cost.
    public var prefillPassSeconds: Double? = 0.25

    public static let defaultContext = 4096

    public init() {}
}

/// The server's version as it appears in `system_fingerprint` and `/props`.
public enum ServerVersion {
    public static let name = "specula-0.1.0"
}

/// The models and the worker once loaded; `/health` answers 503 until then.
final class ServerState: @unchecked Sendable {
    private let lock = NSLock()
    private var _ready: (models: ServedModels, worker: GenerationWorker, context: Int)?
    private var _failure: String?
    let metrics = ServerMetrics()
    let options: ServerOptions
    let started = Date()

    init(options: ServerOptions) { self.options = options }

    var ready: (models: ServedModels, worker: GenerationWorker, context: Int)? { lock.withLock { _ready } }
    var failure: String? { lock.withLock { _failure } }

    func setReady(_ models: ServedModels) {
        let trained = models.target.transformer.config.contextLength
        let context = min(options.context ?? min(trained, ServerOptions.defaultContext), trained)
        let worker = GenerationWorker(
            models: models, context: context, queueLimit: options.queueLimit, timeout: options.timeout,
            metrics: metrics, parallel: options.parallel, prefillPassSeconds: options.prefillPassSeconds)
        worker.rememberCosts = options.rememberCosts
        worker.start()
        lock.withLock { _ready = (models, worker, context) }
    }

    func setFailure(_ message: String) { lock.withLock { _failure = message } }

    /// The loaded models, or a 503 while loading.
    func require() throws -> (models: ServedModels, worker: GenerationWorker, context: Int) {
        if let ready { return ready }
        throw APIError(
            status: .serviceUnavailable, message: failure.map { "the model failed to load: \($0)" } ?? "loading model",
            type: "unavailable_error", code: "loading", retryAfter: 1)
    }
}

/// The OpenAI-compatible HTTP server: routes, the generation worker, graceful shutdown.
public struct SpeculaHTTPServer: Sendable {
    let state: ServerState

    public init(options: ServerOptions) {
        state = ServerState(options: options)
    }

    /// Serves these models (already loaded: tests, or a caller that loads first).
    public init(options: ServerOptions, models: ServedModels) {
        state = ServerState(options: options)
        state.setReady(models)
    }

    /// Loads the models on a thread of their own while the server already answers (`/health` 503, then 200).
    public func load(target: String, draft: String?, log: @escaping @Sendable (String) -> Void) {
        let state = state
        let thread = Thread {
            do {
                let targetModel = try LoadedModel(path: target)
                let requantization = state.options.draftRequantization
                let draftModel = try draft.map {
                    try LoadedModel(path: $0, requantization: requantization, sharingTokenizerWith: targetModel)
                }
                let models = ServedModels(target: targetModel, draft: draftModel, id: state.options.modelID)
                if let problem = models.draftProblem, let draft {
                    log("warning: the draft \(draft) cannot draft for \(target) (\(problem)); serving without it")
                }
                state.setReady(models)
                let weights =
                    "weights \(targetModel.weightCacheStatus)"
                    + (draftModel.map { "; draft weights \($0.weightCacheStatus)" } ?? "")
                log("ready: \(models.id), context \(state.ready?.context ?? 0) tokens; \(weights)")
            } catch {
                state.setFailure("\(error)")
                log("error: \(error)")
            }
        }
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// The router with every route and the middleware (errors in OpenAI's shape, the API key, metrics).
    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ErrorMiddleware(metrics: state.metrics))
        if let key = state.options.apiKey { router.add(middleware: APIKeyMiddleware(key: key)) }
        Routes(state: state).register(on: router)
        return router
    }

    /// The application on the configured address.
    public func application(
        logger: Logger = Logger(label: "specula.serve"),
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(),
            configuration: .init(
                address: .hostname(state.options.host, port: state.options.port), serverName: ServerVersion.name),
            services: [],
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// Runs until SIGTERM or SIGINT: then refuses new requests, ends every generation at its next round (open streams
    /// get their last chunk and `[DONE]`), and returns once the connections have closed.
    public func run(logger: Logger = Logger(label: "specula.serve"), onServerRunning: @escaping @Sendable () -> Void)
        async throws
    {
        let app = application(logger: logger) { _ in onServerRunning() }
        // Services shut down in reverse order: the worker stops (cancelling generations) before the HTTP server
        // waits for its open requests.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app), .init(service: WorkerShutdownService(state: state))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Waits for graceful shutdown, then stops the generation worker.
struct WorkerShutdownService: Service {
    let state: ServerState

    func run() async throws {
        try? await gracefulShutdown()
        state.ready?.worker.shutdown()
    }
}

/// Turns every error into an OpenAI-shaped response and counts requests by route and status.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let route = request.uri.path
        do {
            let response = try await next(request, context)
            metrics.countRequest(route: Self.label(route), status: Int(response.status.code))
            return response
        } catch {
            var apiError = APIError.from(error)
            if apiError.status == .notFound, let allowed = Routes.methods[route] {
                apiError = APIError(
                    status: .methodNotAllowed, message: "\(route) takes \(allowed), not \(request.method.rawValue)",
                    type: "invalid_request_error", allow: allowed)
            }
            metrics.countRequest(route: Self.label(route), status: Int(apiError.status.code))
            throw apiError
        }
    }

    /// Known routes by name; anything else as `other` (a metric label per unknown path would grow without bound).
    static func label(_ path: String) -> String {
        Routes.methods[path] != nil ? path : "other"
    }
}

/// `Authorization: Bearer KEY` on every route but `/health`.
struct APIKeyMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    let key: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if request.uri.path == "/health" { return try await next(request, context) }
        let header = request.headers[.authorization] ?? ""
        let given = header.hasPrefix("Bearer ") ? String(header.dropFirst("Bearer ".count)) : nil
        guard let given, Self.equal(Array(given.utf8), Array(key.utf8)) else {
            throw APIError(
                status: .unauthorized,
                message: given == nil ? "missing API key (Authorization: Bearer KEY)" : "invalid API key",
                type: "invalid_request_error", code: "invalid_api_key")
        }
        return try await next(request, context)
    }

    /// Compares in time that depends on the lengths only.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
