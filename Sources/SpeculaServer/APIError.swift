import Foundation
import Hummingbird
import NIOCore
import SpeculaEngine

/// Every 4xx and 5xx the server sends, in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`.
public struct APIError: Error, Sendable, Equatable, HTTPResponseError {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?
    /// Seconds before a retry may succeed (`Retry-After`), for a full queue.
    public var retryAfter: Int?
    /// The method a route takes (`Allow`, with a 405).
    public var allow: String?

    public init(
        status: HTTPResponse.Status, message: String, type: String, param: String? = nil, code: String? = nil,
        retryAfter: Int? = nil, allow: String? = nil
    ) {
        self.allow = allow
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.retryAfter = retryAfter
    }

    public static func invalidRequest(_ message: String, param: String?, code: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param, code: code)
    }

    static func invalidJSON(_ detail: String) -> APIError {
        APIError(
            status: .badRequest, message: "the request body is not valid JSON: \(detail)",
            type: "invalid_request_error", code: "invalid_json")
    }

    static func contextLengthExceeded(promptTokens: Int, maxTokens: Int, context: Int) -> APIError {
        let message =
            promptTokens > context
            ? "the prompt has \(promptTokens) tokens; this server's context is \(context) tokens"
            : "the prompt's \(promptTokens) tokens and max_tokens \(maxTokens) exceed this server's context of "
                + "\(context) tokens (at most \(context - promptTokens) tokens can follow this prompt)"
        return .invalidRequest(message, param: "messages", code: "context_length_exceeded")
    }

    static func from(engine error: EngineError) -> APIError {
        switch error {
        case .badInput(let field, let reason):
            return .invalidRequest("'\(field)': \(reason)", param: field)
        case .contextLengthExceeded(let prompt, let maxTokens, let context):
            return contextLengthExceeded(promptTokens: prompt, maxTokens: maxTokens, context: context)
        case .fault(let reason):
            return APIError(status: .internalServerError, message: reason, type: "server_error")
        }
    }

    /// Any error as the server reports it: its own, the engine's, and Hummingbird's (unknown route, too large a
    /// body) each with their status; anything else a 500.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let error as APIError:
            return error
        case let error as EngineError:
            return from(engine: error)
        case is NIOTooManyBytesError:
            return APIError(
                status: .contentTooLarge, message: "the request body is larger than this server accepts",
                type: "invalid_request_error", code: "request_too_large")
        case let error as HTTPError:
            let message: String
            switch error.status {
            case .notFound: message = "no such route (see GET /openapi.yaml for this server's API)"
            case .methodNotAllowed: message = "this route does not take that method"
            default: message = error.body ?? error.status.reasonPhrase
            }
            let type = error.status.code >= 500 ? "server_error" : "invalid_request_error"
            return APIError(status: error.status, message: message, type: type)
        default:
            return APIError(status: .internalServerError, message: "\(error)", type: "server_error")
        }
    }

    struct Body: Encodable {
        struct Detail: Encodable {
            let message: String
            let type: String
            let param: String?
            let code: String?

            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(message, forKey: .message)
                try container.encode(type, forKey: .type)
                try container.encode(param, forKey: .param)
                try container.encode(code, forKey: .code)
            }

            enum CodingKeys: String, CodingKey { case message, type, param, code }
        }
        let error: Detail
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let retryAfter { headers[.retryAfter] = "\(retryAfter)" }
        if let allow { headers[.allow] = allow }
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        let data = try JSONEncoder().encode(Body(error: .init(message: message, type: type, param: param, code: code)))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
